"""``kb runners`` reads the runner specs from KB_HOME/cache while no runner file changed (issue 21).

Each listing runs in a fresh process, as a user runs it, so a module imported by one is not still
loaded in the next. What each must list is what the test wrote into the runner's files.
"""

import json
import subprocess
import sys

from tests.conftest import ROOT

SPEC = ("from kb.runs.registry import RunnerSpec\n"
        "RUNNER = RunnerSpec(name='cachedrunner', paper='1', summary='s', datasets=('generated',),"
        " entrypoint='cachedrunner.train:main', config='cachedrunner.config')\n")
CONFIG = ("from dataclasses import dataclass\n@dataclass(frozen=True)\nclass Config:\n    steps: int = 1\n"
          "PRESETS = {{{}}}\n")
LIST = ("import json, sys\nfrom kb.cli.main import main\n"
        "try:\n    main(['runners', '--json'])\nexcept SystemExit as exc:\n    code = exc.code or 0\nelse:\n    code = 0\n"
        "print(json.dumps({'code': code, 'imported': 'cachedrunner.config' in sys.modules}), file=sys.stderr)\n")


def _presets(*names: str) -> str:
    return CONFIG.format(", ".join(f"{name!r}: Config(steps={i})" for i, name in enumerate(names, 1)))


def _list() -> tuple[dict, dict[str, list[str]], list[str]]:
    """One ``kb runners --json`` in a new process: its exit and whether it imported the runner's
    config, the presets of each runner listed, and its problem lines."""
    done = subprocess.run([sys.executable, "-c", LIST], cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("{"), done.stderr[-2000:]
    return (json.loads(lines[-1]), {row["name"]: row["presets"] for row in json.loads(done.stdout)},
            [line for line in lines if line.startswith("problem: ")])


def test_the_specs_come_from_the_cache_until_a_runner_file_changes(kb_env, tmp_path, monkeypatch):
    package = tmp_path / "extra" / "cachedrunner"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(SPEC, encoding="utf-8")
    (package / "config.py").write_text(_presets("smoke", "paper"), encoding="utf-8")
    monkeypatch.setenv("KB_RUNNERS", str(tmp_path / "extra"))

    first, listed, problems = _list()
    assert first == {"code": 0, "imported": True} and problems == []
    assert listed["cachedrunner"] == ["smoke", "paper"] and "yolo" in listed
    assert (kb_env.cache_dir / "runners.marshal").is_file()

    again, listed_again, _ = _list()
    assert again == {"code": 0, "imported": False}      # read from the cache, nothing imported
    assert listed_again == listed

    (package / "config.py").write_text(_presets("smoke", "paper", "wide"), encoding="utf-8")
    edited, listed, _ = _list()
    assert edited == {"code": 0, "imported": True} and listed["cachedrunner"] == ["smoke", "paper", "wide"]

    # A broken runner is named on every listing (a registry with problems is never kept), and hides no other.
    (package / "config.py").write_text("PRESETS = {\n", encoding="utf-8")
    for _ in range(2):
        broken, listed, problems = _list()
        assert broken["code"] == 1 and "cachedrunner" not in listed and "yolo" in listed
        assert len(problems) == 1 and problems[0].startswith("problem: runner cachedrunner (")
        assert "SyntaxError" in problems[0]

    # The same for a config that imports what is not installed (an ImportError, not a SyntaxError).
    (package / "config.py").write_text("import no_such_module_kb_cache_test\n", encoding="utf-8")
    for _ in range(2):
        broken, listed, problems = _list()
        assert broken["code"] == 1 and "cachedrunner" not in listed and "yolo" in listed
        assert len(problems) == 1 and problems[0].startswith("problem: runner cachedrunner (")
        assert "no_such_module_kb_cache_test" in problems[0]

    (package / "config.py").write_text(_presets("smoke"), encoding="utf-8")
    fixed, listed, problems = _list()
    assert fixed == {"code": 0, "imported": True} and listed["cachedrunner"] == ["smoke"] and problems == []


def test_a_damaged_cache_is_read_as_none(kb_env):
    done = subprocess.run([sys.executable, "-c", LIST], cwd=ROOT, capture_output=True, text=True, check=False)
    assert json.loads(done.stderr.strip().splitlines()[-1])["code"] == 0
    expected = {row["name"]: row["presets"] for row in json.loads(done.stdout)}
    (kb_env.cache_dir / "runners.marshal").write_bytes(b"\x00not marshal")
    result, listed, problems = _list()
    assert result["code"] == 0 and listed == expected and problems == []
