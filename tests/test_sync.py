"""kb sync skips folders whose files did not change, and never misses a change that a stat can hide."""

import os
import shutil
import time
from types import SimpleNamespace

import pytest

import kb.ingest.sync as sync_module
from kb.db import session_scope
from kb.ingest.sync import sync
from kb.search import search
from tests.conftest import write_paper

HOUR_AGO = time.time() - 3600


def _backdate(root):
    """Date every file and folder an hour back, as in a checkout made before the sync."""
    for path in [root, *root.rglob("*")]:
        os.utime(path, (HOUR_AGO, HOUR_AGO))


def _lab(settings):
    write_paper(settings.papers, "yolo", "1506.02640", "You Only Look Once",
                notes={"ja": "## 概要\n物体検出を一段で行う。", "en": "## Summary\nA single-stage detector."})
    write_paper(settings.papers, "unet", "1505.04597", "U-Net", notes={"ja": "## 概要\n医用画像の分割。"})
    _backdate(settings.papers)


@pytest.fixture
def reads(monkeypatch):
    """The folders whose paper.yaml or notes sync parses, by name."""
    seen = []
    parse, notes = sync_module.parse_paper_yaml, sync_module.read_notes
    monkeypatch.setattr(sync_module, "parse_paper_yaml", lambda text, **kw: seen.append(kw["folder_slug"]) or parse(text, **kw))
    monkeypatch.setattr(sync_module, "read_notes",
                        lambda papers, paths, *args: seen.extend(p.split("/")[0] for p in paths) or notes(papers, paths, *args))
    return seen


def _slugs(settings, query):
    with session_scope(settings) as session:
        return [hit.paper.slug for hit in search(query, session=session)]


def test_a_sync_with_nothing_changed_parses_nothing_and_reports_the_same(kb_env, reads):
    _lab(kb_env)
    first = sync(kb_env)
    assert sorted(set(reads)) == ["unet", "yolo"]
    reads.clear()
    again = sync(kb_env)
    assert reads == []
    assert (again.papers, again.notes, again.added, again.updated, again.removed, again.problems) == (2, 3, 0, 0, 0, [])
    assert (first.papers, first.notes) == (again.papers, again.notes)


def test_touched_files_are_compared_by_content_and_not_parsed_again(kb_env, reads):
    _lab(kb_env)
    sync(kb_env)
    reads.clear()
    for path in kb_env.papers.rglob("*"):
        os.utime(path)                     # a fresh clone or checkout: new times, same bytes
    assert sync(kb_env).updated == 0 and reads == []


def test_an_edit_of_the_same_size_with_the_old_time_stamp_put_back_is_seen(kb_env, reads):
    _lab(kb_env)
    sync(kb_env)
    note = kb_env.papers / "yolo" / "notes.en.md"
    before = note.stat()
    text = note.read_text(encoding="utf-8")
    note.write_text(text.replace("detector", "detektor"), encoding="utf-8")   # same size
    os.utime(note, ns=(before.st_atime_ns, before.st_mtime_ns))               # mtime as it was: ctime moved
    assert note.stat().st_size == before.st_size and note.stat().st_mtime_ns == before.st_mtime_ns
    reads.clear()
    sync(kb_env)
    assert set(reads) == {"yolo"}
    assert _slugs(kb_env, "detektor") == ["yolo"] and _slugs(kb_env, "detector") == []


def test_on_a_file_system_whose_times_do_not_move_an_edit_right_after_a_sync_is_still_seen(kb_env, monkeypatch):
    # Coarse time stamps at their worst: every stat gives one time, so an edit of the same size
    # made in the same tick as the sync's read leaves the stat as it was. Files modified shortly
    # before a sync are recorded without a time, and compared by their bytes the next time.
    _lab(kb_env)
    now = time.time_ns()
    real = sync_module._stat

    def frozen(path):
        stat = real(path)
        return None if stat is None else SimpleNamespace(st_size=stat.st_size, st_ino=stat.st_ino,
                                                        st_mtime_ns=now, st_ctime_ns=now)

    monkeypatch.setattr(sync_module, "_stat", frozen)
    sync(kb_env)
    note = kb_env.papers / "unet" / "notes.ja.md"
    note.write_text(note.read_text(encoding="utf-8").replace("分割", "検出"), encoding="utf-8")
    sync(kb_env)
    assert set(_slugs(kb_env, "検出")) == {"unet", "yolo"}
    assert _slugs(kb_env, "分割") == []


def test_added_and_removed_note_files_and_folders_are_seen(kb_env, reads):
    _lab(kb_env)
    sync(kb_env)
    (kb_env.papers / "yolo" / "notes.en.md").unlink()
    (kb_env.papers / "unet" / "notes").mkdir()
    (kb_env.papers / "unet" / "notes" / "post.ja.md").write_text('---\npaper: "1505.04597"\nlang: ja\n---\n点群\n',
                                                                 encoding="utf-8")
    write_paper(kb_env.papers, "resnet", "1512.03385", "Deep Residual Learning")
    report = sync(kb_env)
    assert (report.papers, report.notes, report.added) == (3, 3, 1)
    assert _slugs(kb_env, "点群") == ["unet"] and _slugs(kb_env, "single") == []
    shutil.rmtree(kb_env.papers / "resnet")
    assert sync(kb_env).removed == 1


def test_a_broken_note_is_named_on_every_sync_until_it_is_fixed(kb_env):
    _lab(kb_env)
    sync(kb_env)
    note = kb_env.papers / "unet" / "notes.ja.md"
    good = note.read_text(encoding="utf-8")
    note.write_text("---\npaper: [unclosed\n---\n本文\n", encoding="utf-8")
    for _ in range(2):
        assert [p.split(":")[0] for p in sync(kb_env).problems] == ["papers/unet/notes.ja.md"]
    note.write_text(good, encoding="utf-8")
    assert sync(kb_env).problems == []


def test_a_catalog_rebuilt_from_files_searches_as_the_one_kept_up_to_date(kb_env):
    _lab(kb_env)
    sync(kb_env)
    (kb_env.papers / "yolo" / "notes.ja.md").write_text('---\npaper: "1506.02640"\nlang: ja\n---\n点群と検出\n',
                                                        encoding="utf-8")
    sync(kb_env)
    queries = ["検出", "点群", "detector", "u-net", "画像"]
    with session_scope(kb_env) as session:
        kept = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    from kb.db import _ready_engine

    _ready_engine.cache_clear()
    (kb_env.home / "catalog.db").unlink()
    for suffix in ("-wal", "-shm"):
        (kb_env.home / f"catalog.db{suffix}").unlink(missing_ok=True)
    sync(kb_env)
    with session_scope(kb_env) as session:
        rebuilt = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    assert rebuilt == kept and kept[1] == [("yolo", kept[1][0][1])]
