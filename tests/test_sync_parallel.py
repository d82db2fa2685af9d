"""kb sync reads many changed folders in worker processes (issue 21: a rebuild >= 1,000 papers/s).

The catalog a parallel sync writes is compared with the one the same files give read in this
process (the reference), row by row and table by table, search index included; and its index
with one built from the catalog's rows alone (``rebuild_sqlite_index``), which tokenizes in the
writing process and so does not use what the workers worked out.
"""

import os
import sqlite3

from sqlalchemy import create_engine

import kb.ingest.sync as sync_module
from kb.ingest.sync import sync
from kb.search import rebuild_sqlite_index
from tests.conftest import write_paper
from tests.test_rebuild import forget_catalog

_TABLES = ("paper", "note", "source_file", "search_posting", "search_tokens", "search_stats")
_VOLATILE = {"paper": {"added", "created", "updated"}, "note": {"created", "updated"}}


def _lab(papers):
    for i in range(40):
        notes = {"ja": f"## 概要\n物体検出{i}の手法。点群と検出。", "en": f"## Summary\nDetectors number {i} detect."}
        if i % 3 == 0:
            notes.pop("en")
        folder = write_paper(papers, f"p{i:02d}", f"1506.{i:05d}", f"Paper {i} on detection",
                             notes=notes, extra=f"tags: [t{i % 4}]\nabstract: point clouds {i}\n")
        if i % 7 == 0:
            (folder / "notes").mkdir()
            (folder / "notes" / "extra.md").write_text(f"---\npaper: \"1506.{i:05d}\"\n---\n追記 {i}\n", encoding="utf-8")
    (papers / "p05" / "paper.yaml").write_text("id: [broken\n", encoding="utf-8")             # unreadable paper.yaml
    (papers / "p06" / "notes.en.md").write_bytes(b"not text\x00\xe9")                          # unreadable note
    write_paper(papers, "twin", "1506.00003", "Same id as p03")                                 # two folders, one id
    for path in [papers, *papers.rglob("*")]:
        os.utime(path, (1e9, 1e9))


def _rows(settings) -> dict[str, list]:
    connection = sqlite3.connect(settings.home / "catalog.db")
    found = {}
    for table in _TABLES:
        columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")
                   if row[1] not in _VOLATILE.get(table, set())]
        found[table] = sorted(connection.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
    connection.close()
    return found


def test_a_parallel_sync_writes_the_catalog_a_serial_one_does(kb_env, monkeypatch):
    _lab(kb_env.papers)
    serial = sync(kb_env)
    expected = _rows(kb_env)
    forget_catalog(kb_env)

    pids = kb_env.home / "reader-pids"
    read = sync_module._read_folder

    def noted(*args):                   # runs in the workers (fork copies the patch): notes who read
        with open(pids, "a") as out:
            out.write(f"{os.getpid()}\n")
        return read(*args)

    monkeypatch.setattr(sync_module, "_PARALLEL_FROM", 10)
    monkeypatch.setattr(sync_module, "_READ_BATCH", 4)
    monkeypatch.setattr(sync_module.parallel, "cores", lambda: 2)
    monkeypatch.setattr(sync_module, "_read_folder", noted)
    parallel = sync(kb_env)
    readers = pids.read_text().split()
    # 41 folders: 10 batches of 4 read in workers, the last one here.
    assert len(readers) == 41 and readers.count(str(os.getpid())) == 1
    assert _rows(kb_env) == expected
    assert (parallel.papers, parallel.notes, parallel.added, sorted(parallel.problems)) == \
        (serial.papers, serial.notes, serial.added, sorted(serial.problems))
    assert any("p05/paper.yaml" in p for p in serial.problems) and any("p06/notes.en.md" in p for p in serial.problems)
    assert serial.papers == 39 and len(expected["search_tokens"]) == 39

    engine = create_engine(f"sqlite:///{kb_env.home / 'catalog.db'}")
    with engine.begin() as connection:
        rebuild_sqlite_index(connection)
    engine.dispose()
    assert _rows(kb_env) == expected


def test_progress_counts_every_folder_once_whether_read_here_or_in_workers(kb_env, monkeypatch):
    _lab(kb_env.papers)
    for parallel_from in (10**9, 10):
        forget_catalog(kb_env)
        monkeypatch.setattr(sync_module, "_PARALLEL_FROM", parallel_from)
        monkeypatch.setattr(sync_module, "_READ_BATCH", 4)
        monkeypatch.setattr(sync_module.parallel, "cores", lambda: 2)
        calls = []
        sync(kb_env, progress=lambda done, total: calls.append((done, total)))
        folders = len(os.listdir(kb_env.papers))
        assert calls[-1] == (folders, folders) and {total for _, total in calls} == {folders}
        assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
