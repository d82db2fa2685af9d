"""The CLI as a whole: help, fast start without heavy imports, notes, error lines."""

import json
import subprocess
import sys

from tests.conftest import write_paper

HEAVY = {"torch", "mkdocs", "matplotlib", "sqlmodel", "sqlalchemy", "arxiv"}


def _imported_modules(code: str) -> set[str]:
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True)
    names = set()
    for line in result.stderr.splitlines():
        if "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def test_help_starts_without_heavy_imports():
    loaded = _imported_modules("import sys; sys.argv=['kb','--help']\nfrom kb.cli.main import main\ntry: main()\nexcept SystemExit: pass")
    assert not loaded & HEAVY, loaded & HEAVY


def test_search_and_list_do_not_import_torch_mkdocs_or_matplotlib(kb_env, tmp_path):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"ja": "## 概要\n検出"})
    code = ("import sys\nfrom kb.cli.main import main\nfor a in (['sync'], ['list'], ['search','検出']):\n"
            "    sys.argv=['kb',*a]\n    try: main(a)\n    except SystemExit: pass")
    loaded = _imported_modules(code)
    assert not loaded & {"torch", "mkdocs", "matplotlib"}


def test_kb_help_lists_every_command(kb):
    result = kb("--help")
    assert result.code == 0
    for command in ("add", "import", "sync", "list", "show", "search", "tag", "remove", "note", "export",
                    "runners", "reproduce", "runs", "run"):
        assert command in result.out


def test_note_prints_and_edits(kb_env, kb, monkeypatch, tmp_path):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"ja": "## 概要\n検出の論文", "en": "## Summary\nA detector"})
    kb("sync")
    shown = kb("note", "yolo", "--lang", "ja")
    assert shown.code == 0 and "検出の論文" in shown.out and "A detector" not in shown.out
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "\\n## 結果\\n精度が高い\\n" >> "$1"\n', encoding="utf-8")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    assert kb("note", "yolo", "--lang", "ja", "--edit").code == 0
    assert "精度が高い" in (kb_env.papers / "yolo" / "notes.ja.md").read_text(encoding="utf-8")
    assert [h["slug"] for h in json.loads(kb("search", "精度", "--json").out)] == ["yolo"]
    assert kb("note", "yolo", "--lang", "fr").code == 1


def test_bad_usage_is_exit_code_two(kb_env, kb):
    assert kb("list", "--sort", "nonsense").code == 2
    assert kb("frobnicate").code == 2
    assert kb("add").code == 2


def test_every_listing_command_takes_json(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO")
    kb("sync")
    for args in (["list"], ["search", "yolo"], ["show", "yolo"], ["runs"], ["runners"]):
        result = kb(*args, "--json")
        assert result.code == 0, (args, result.err)
        json.loads(result.out)


def test_concurrent_writers_all_succeed(kb_env):
    """Several kb processes writing one catalog wait for each other instead of failing."""
    import os

    for n in range(8):
        write_paper(kb_env.papers, f"p{n}", f"1901.0000{n}", f"Paper {n}", notes={"ja": f"## 概要\n検出 {n}"})
    processes = [subprocess.Popen([sys.executable, "-m", "kb.cli.main", *args], env=dict(os.environ),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for args in (["sync"], ["sync"], ["tag", "p1", "+x"], ["sync"])]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
    assert [code for code, _ in results[:2]] == [0, 0] and results[3][0] == 0, results
    assert results[2][0] in (0, 1) and "Traceback" not in results[2][1]   # tag may run before the first sync
    listed = subprocess.run([sys.executable, "-m", "kb.cli.main", "list", "--json"], capture_output=True, text=True)
    assert len(json.loads(listed.stdout)) == 8
