"""Twelve kb commands at once (add, import, sync, tag, remove) never lose a write.

Each command is a process of its own (forked from this one, so kb is already imported), released
together by a barrier on one catalog (SQLite, then a real
PostgreSQL server). Afterwards every acknowledged change is in the files and in the catalog, and
the catalog equals what a fresh ``kb sync`` of the files into an empty catalog gives.
"""

import json
import multiprocessing
import os
from pathlib import Path

import pytest
import yaml

from kb.db import _ready_engine
from kb.paperfile import note_files
from kb.settings import load_settings
from tests.conftest import write_paper
from tests.jobs_fixtures import new_database

HAND_WRITTEN = {"p-a": "2401.00011", "p-b": "2401.00012", "p-c": "2401.00013", "p-d": "2401.00014"}
COMMANDS = [
    ("add", "1506.02640"), ("add", "1505.04597", "--tag", "seg"), ("add", "hep-th/9711200"),
    ("import", "{notes}/a", "--offline"), ("import", "{notes}/b", "--offline"),
    ("sync",), ("sync",), ("sync",),
    ("tag", "p-a", "+hot"), ("tag", "p-b", "+cold"),
    ("remove", "p-c", "--yes"), ("remove", "p-d", "--yes"),
]


def run_cli(start, command: list[str]) -> None:
    """``kb COMMAND`` in a forked process (kb already imported: no start-up cost), all released at once."""
    from kb.cli.main import main

    start.wait()
    try:
        main(command)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    os._exit(0)


def catalog(kb) -> dict[str, dict]:
    """``kb list --json`` by slug, with each paper's note paths; ``added`` left out (a paper.yaml
    without ``added`` cannot give back the moment the catalog first saw it)."""
    listed = kb("list", "--json")
    assert listed.code == 0, listed.err
    papers = {}
    for paper in json.loads(listed.out):
        paper.pop("added")
        paper["notes"] = sorted(n["path"] for n in json.loads(kb("show", paper["slug"], "--json").out)["notes"])
        papers[paper["slug"]] = paper
    return papers


def rebuilt(kb, monkeypatch, tmp_path: Path, database_url: str | None) -> dict[str, dict]:
    """The catalog a fresh ``kb sync`` of the same papers/ gives, in a new KB_HOME."""
    monkeypatch.setenv("KB_HOME", str(tmp_path / "fresh-home"))
    if database_url:
        monkeypatch.setenv("KB_DATABASE_URL", database_url)
    _ready_engine.cache_clear()
    synced = kb("sync")
    assert synced.code == 0, synced.err
    return catalog(kb)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """None for the default SQLite catalog, else a function making fresh PostgreSQL databases."""
    if request.param == "sqlite":
        return None
    server = request.getfixturevalue("postgres_server")
    return lambda name: new_database(server, f"kb_conc_{name}_{os.getpid()}")


def test_twelve_concurrent_commands_lose_no_write(arxiv_server, kb_env, kb, tmp_path, monkeypatch, database):
    if database:
        monkeypatch.setenv("KB_DATABASE_URL", database("main"))
        _ready_engine.cache_clear()
    for slug, key in HAND_WRITTEN.items():
        write_paper(kb_env.papers, slug, key, f"Paper {slug}")
    notes = tmp_path / "notes"
    for name, key in (("a", HAND_WRITTEN["p-a"]), ("b", HAND_WRITTEN["p-b"])):
        (notes / name).mkdir(parents=True)
        (notes / name / f"note-{name}.md").write_text(f'---\npaper: "{key}"\nlang: ja\n---\n## 概要\n{name}\n', encoding="utf-8")
    assert kb("sync").code == 0

    commands = [[part.format(notes=notes) for part in command] for command in COMMANDS]
    _ready_engine(load_settings().database_url).dispose()   # no connection of this process crosses the fork
    _ready_engine.cache_clear()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(len(commands))
    processes = [context.Process(target=run_cli, args=(start, command)) for command in commands]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [(command, p.exitcode) for command, p in zip(commands, processes) if p.exitcode != 0] == []

    _ready_engine.cache_clear()
    after = catalog(kb)
    # Every acknowledged change, in the catalog and in the files.
    added = {"1506.02640": "you-only-look-once", "1505.04597": "u-net",
             "hep-th/9711200": "large-n-limit-superconformal"}
    assert {p["key"]: slug for slug, p in after.items()} == {
        **added, HAND_WRITTEN["p-a"]: "p-a", HAND_WRITTEN["p-b"]: "p-b"}
    on_disk = {folder.name: yaml.safe_load((folder / "paper.yaml").read_text(encoding="utf-8"))
               for folder in kb_env.papers.iterdir()}
    assert {slug: str(data["id"]) for slug, data in on_disk.items()} == {slug: p["key"] for slug, p in after.items()}
    assert "hot" in after["p-a"]["tags"] and "hot" in on_disk["p-a"]["tags"]
    assert "cold" in after["p-b"]["tags"] and "cold" in on_disk["p-b"]["tags"]
    assert after["u-net"]["tags"] == ["seg"]
    for slug, paper in after.items():
        files = [p.relative_to(kb_env.papers).as_posix() for p in note_files(kb_env.papers / slug)]
        assert paper["notes"] == sorted(files), slug
    assert "p-a/notes/note-a.ja.md" in after["p-a"]["notes"] and "p-b/notes/note-b.ja.md" in after["p-b"]["notes"]
    # Nothing in the catalog that the files would not give back.
    assert rebuilt(kb, monkeypatch, tmp_path, database("fresh") if database else None) == after
