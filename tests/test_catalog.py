"""Catalog: sync from papers/, kb add against a local arXiv, listing, tags, removal, BibTeX."""

import json
import re
import shutil

import pytest
import yaml
from sqlmodel import select

from kb.bibtex import export_bibtex
from kb.ingest.add import add_papers
from kb.ingest.edits import retag
from kb.ingest.sync import sync
from kb.queries import list_papers
from kb.db import _ready_engine, session_scope
from kb.errors import BadInput, NetworkError
from kb.models import Paper
from kb.paperfile import slugify
from kb.queries import find_paper
from tests.conftest import write_paper


def test_sync_loads_papers_and_notes_and_is_idempotent(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once", notes={"ja": "## 概要\n物体検出", "en": "## Summary\ndetector"})
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net")
    first = sync(kb_env)
    assert (first.papers, first.notes, first.added, first.problems) == (2, 2, 2, [])
    again = sync(kb_env)
    assert (again.papers, again.notes, again.added, again.updated, again.removed) == (2, 2, 0, 0, 0)
    with session_scope(kb_env) as session:
        assert find_paper("arXiv:1506.02640v3", session=session).slug == "yolo"


def test_sync_names_a_broken_paper_yaml_and_loads_the_rest(kb_env, kb):
    write_paper(kb_env.papers, "good", "1506.02640", "Good")
    (kb_env.papers / "bad").mkdir()
    (kb_env.papers / "bad" / "paper.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    (kb_env.papers / "noid").mkdir()
    (kb_env.papers / "noid" / "paper.yaml").write_text("title: x\n", encoding="utf-8")
    report = sync(kb_env)
    assert report.papers == 1
    assert any("bad/paper.yaml" in p and "YAML" in p for p in report.problems)
    assert any("noid/paper.yaml" in p and "id" in p for p in report.problems)
    result = kb("sync")
    assert result.code == 1 and "bad/paper.yaml" in result.err and "Traceback" not in result.err


def test_sync_removes_papers_whose_folder_is_gone(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO")
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net")
    sync(kb_env)
    import shutil

    shutil.rmtree(kb_env.papers / "unet")
    assert sync(kb_env).removed == 1


def test_claims_are_validated(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO",
                extra="claims:\n  - {metric: map, dataset: voc2007-test, value: 63.4, direction: up, source: Table 1}\n")
    report = sync(kb_env)
    assert report.papers == 0 and "direction" in report.problems[0]


def test_add_fetches_writes_paper_yaml_and_dedupes_every_id_form(arxiv_server, kb_env, kb):
    forms = ["1506.02640", "1506.02640v5", "arXiv:1506.02640", "https://arxiv.org/abs/1506.02640",
             "https://arxiv.org/pdf/1506.02640.pdf", "https://arxiv.org/pdf/1506.02640v5", "10.48550/arXiv.1506.02640",
             "http://arxiv.org/abs/1506.02640v2", "arxiv.org/pdf/1506.02640v1.pdf", "ARXIV:1506.02640",
             "https://export.arxiv.org/abs/1506.02640", "https://doi.org/10.48550/arXiv.1506.02640"]
    result = kb("add", *forms, "--tag", "detection")
    assert result.code == 0, result.err
    again = kb("add", "1506.02640", "--tag", "real-time")
    assert again.code == 0 and "updated" in again.out
    with session_scope(kb_env) as session:
        papers = list_papers(session=session)
    assert len(papers) == 1
    paper = papers[0]
    assert (paper.key, paper.version, paper.slug) == ("1506.02640", 5, "you-only-look-once")
    assert paper.authors == ["Joseph Redmon", "Santosh Divvala", "Ross Girshick", "Ali Farhadi"]
    assert paper.tags == ["detection", "real-time"]
    on_disk = yaml.safe_load((kb_env.papers / "you-only-look-once" / "paper.yaml").read_text(encoding="utf-8"))
    assert on_disk["id"] == "1506.02640" and on_disk["tags"] == ["detection", "real-time"]
    # One batched request for the first add, one for the second.
    assert len(arxiv_server.requests) == 2


def test_add_old_style_id_with_slug_and_collision(arxiv_server, kb_env):
    write_paper(kb_env.papers, "you-only-look-once", "1409.4842", "Another paper squatting on the slug")
    sync(kb_env)
    result = add_papers(kb_env, ["hep-th/9711200v2", "1506.02640"])
    slugs = sorted(p.slug for p in result.added)
    assert slugs == ["large-n-limit-superconformal", "you-only-look-once-2"]
    with pytest.raises(BadInput, match="taken"):
        add_papers(kb_env, ["1505.04597"], slug="you-only-look-once")
    assert add_papers(kb_env, ["1505.04597"], slug="unet").added[0].slug == "unet"


def test_malformed_id_is_refused_before_any_request(arxiv_server, kb_env, kb):
    result = kb("add", "1506.02640", "15o6.02640")
    assert result.code == 2 and "'15o6.02640'" in result.err and "nothing was added" in result.err
    assert arxiv_server.requests == []
    assert not any(kb_env.papers.iterdir())


def test_unknown_id_reports_not_found_and_writes_nothing(arxiv_server, kb_env, kb):
    result = kb("add", "1701.99999")
    assert result.code == 1 and "not found on arXiv: 1701.99999" in result.err
    assert not any(kb_env.papers.iterdir())


def test_offline_without_cache_is_one_clear_line_and_changes_nothing(kb_env, kb):
    result = kb("add", "1506.02640")          # KB_ARXIV_API points at a closed port
    assert result.code == 1
    assert result.err.count("\n") == 1 and "cannot connect" in result.err and "Traceback" not in result.err
    assert kb("add", "--offline", "1506.02640").code == 1
    assert not any(kb_env.papers.iterdir())


def test_offline_answers_from_the_cache_after_one_online_add(arxiv_server, kb_env, monkeypatch):
    add_papers(kb_env, ["1506.02640", "1505.04597"])
    arxiv_server.requests.clear()
    result = add_papers(kb_env, ["1505.04597v1"], offline=True)
    assert [p.slug for p in result.updated] == ["u-net"] and result.from_cache
    assert arxiv_server.requests == []
    # The network going away falls back to the cache too.
    monkeypatch.setenv("KB_ARXIV_API", "http://127.0.0.1:9/api/query")
    from kb.settings import load_settings

    assert add_papers(load_settings(), ["1506.02640"]).from_cache


def test_busy_arxiv_is_retried_with_backoff(arxiv_server, kb_env):
    from kb.arxiv_api import Policy

    arxiv_server.fail_next.extend([503, 429])
    result = add_papers(kb_env, ["1506.02640"], policy=Policy(min_interval=0, backoff=0.01, retries=3))
    assert len(result.added) == 1 and len(arxiv_server.requests) == 3
    arxiv_server.fail_next.extend([503, 503])
    with pytest.raises(NetworkError, match="HTTP 503"):
        add_papers(kb_env, ["1505.04597"], policy=Policy(min_interval=0, backoff=0.01, retries=1))


def test_requests_are_spaced_across_processes(arxiv_server, kb_env):
    import time

    from kb.arxiv_api import Policy

    start = time.monotonic()
    add_papers(kb_env, ["1506.02640"], policy=Policy(min_interval=0.4))
    add_papers(kb_env, ["1505.04597"], policy=Policy(min_interval=0.4))
    assert time.monotonic() - start >= 0.4       # the second waited for the shared timestamp
    assert (kb_env.cache_dir / "arxiv" / "requests.lock").exists()


def test_more_than_one_hundred_ids_are_batched(arxiv_server, kb_env):
    ids = [f"1506.{n:05d}" for n in range(150)] + ["1506.02640"]
    result = add_papers(kb_env, ids)
    assert len(result.added) == 1 and len(result.not_found) == 150
    assert len(arxiv_server.requests) == 2


def test_unsafe_slugs_are_refused(arxiv_server, kb_env, kb):
    for slug in ("../x", "/etc", "a/b", "UPPER"):
        result = kb("add", "1506.02640", "--slug", slug)
        assert result.code == 2, slug
    assert not any(kb_env.papers.iterdir())


def test_failed_command_leaves_files_and_catalog_as_they_were(arxiv_server, kb_env, monkeypatch):
    import kb.ingest.add as catalog

    def explode(*_a, **_k):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(catalog, "index_paper", explode)
    with pytest.raises(RuntimeError):
        add_papers(kb_env, ["1506.02640"])
    assert not any(kb_env.papers.iterdir())
    with session_scope(kb_env) as session:
        assert session.exec(select(Paper)).all() == []


def test_list_show_tag_remove_through_the_cli(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once", notes={"ja": "## 概要\n検出"}, extra="tags: [detection]\n")
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net", extra="year: 2015\n".replace("year", "venue"))
    assert kb("sync").code == 0
    listed = json.loads(kb("list", "--json").out)
    assert {p["slug"] for p in listed} == {"yolo", "unet"}
    assert [p["slug"] for p in json.loads(kb("list", "--tag", "detection", "--json").out)] == ["yolo"]
    assert [p["slug"] for p in json.loads(kb("list", "--lang", "ja", "--json").out)] == ["yolo"]
    shown = json.loads(kb("show", "arXiv:1506.02640v2", "--json").out)
    assert shown["links"]["pdf"] == "https://arxiv.org/pdf/1506.02640" and shown["notes"][0]["lang"] == "ja"
    assert "U-Net" in kb("show", "unet").out
    assert kb("tag", "yolo", "+real-time", "-detection").code == 0
    assert json.loads(kb("show", "yolo", "--json").out)["tags"] == ["real-time"]
    assert "real-time" in (kb_env.papers / "yolo" / "paper.yaml").read_text(encoding="utf-8")
    missing = kb("show", "nope")
    assert missing.code == 1 and "no paper 'nope'" in missing.err
    assert kb("remove", "yolo", input="n\n").code == 1 and (kb_env.papers / "yolo").exists()
    assert kb("remove", "yolo", "--yes").code == 0 and not (kb_env.papers / "yolo").exists()
    assert [p["slug"] for p in json.loads(kb("list", "--json").out)] == ["unet"]


def test_retag_refuses_odd_tags(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO")
    sync(kb_env)
    with pytest.raises(BadInput):
        retag(kb_env, "yolo", ["+../x"])


def test_bibtex_is_valid_with_arxiv_fields_and_stable_keys(arxiv_server, kb_env, kb):
    add_papers(kb_env, ["1506.02640", "hep-th/9711200"])
    write_paper(kb_env.papers, "alphago", "doi:10.1038/nature16961", "Mastering the game of Go & more_{x}", extra="venue: Nature\n")
    sync(kb_env)
    with session_scope(kb_env) as session:
        text = export_bibtex([], session=session)
    assert "@misc{redmon2015you," in text and "eprint = {1506.02640}" in text
    assert "archivePrefix = {arXiv}" in text and "primaryClass = {cs.CV}" in text
    assert "@misc{maldacena1997large," in text and "eprint = {hep-th/9711200}" in text
    assert "@article{lovelace2016mastering," in text and r"\& more\_\{x\}" in text
    assert text.count("{") == text.count("}") - text.count(r"\}") + text.count(r"\{")
    assert kb("export", "bibtex", "yolo").code == 1      # slug of a paper that is not there
    assert kb("export", "bibtex", "you-only-look-once").out == export_bibtex_one(kb_env, "you-only-look-once")


def export_bibtex_one(settings, slug):
    with session_scope(settings) as session:
        return export_bibtex([slug], session=session)


def test_slugify():
    assert slugify("You Only Look Once: Unified, Real-Time Object Detection") == "you-only-look-once"
    assert slugify("U-Net: Convolutional Networks") == "u-net"
    assert re.fullmatch(r"[a-z0-9-]+", slugify("Schrödinger’s «cat» & the ∞"))


def test_corrupt_or_foreign_database_gives_a_clear_message(kb_env, kb, tmp_path, monkeypatch):
    from kb.db import _ready_engine

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{junk}")
    _ready_engine.cache_clear()
    result = kb("list")
    # Not a database: moved aside (kept, not deleted) and a new catalog started (tests/test_rebuild.py).
    assert result.code == 0 and "Traceback" not in result.err
    assert [p.read_bytes()[:18] for p in tmp_path.glob("junk.db.corrupt-*")] == [b"this is not sqlite"]
    import sqlite3

    foreign = tmp_path / "foreign.db"
    sqlite3.connect(foreign).execute("create table users(id int)")
    monkeypatch.setenv("KB_DATABASE_URL", f"sqlite:///{foreign}")
    _ready_engine.cache_clear()
    result = kb("list")
    assert result.code == 1 and "not a kb catalog" in result.err


def test_two_folders_with_one_id_keep_the_catalogs_paper_and_name_both(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"ja": "## 概要\n検出"}, extra="tags: [detection]\n")
    assert sync(kb_env).problems == []
    # A copy whose folder sorts first, as after `cp -r papers/yolo papers/a-yolo-copy`.
    write_paper(kb_env.papers, "a-yolo-copy", "arXiv:1506.02640v2", "YOLO (copy)", extra="tags: [copied]\n")
    result = kb("sync")
    assert result.code == 1 and "Traceback" not in result.err
    problem = next(line for line in result.err.splitlines() if "1506.02640" in line)
    assert "a-yolo-copy/paper.yaml" in problem and "yolo/paper.yaml" in problem
    (paper,) = json.loads(kb("list", "--json").out)
    assert (paper["slug"], paper["title"], paper["tags"], paper["notes"]) == ("yolo", "YOLO", ["detection"], ["ja"])
    # A new catalog has no paper to keep: the first slug in order wins, and both are still named.
    shutil.rmtree(kb_env.home)
    _ready_engine.cache_clear()
    report = sync(kb_env)
    assert [p.slug for p in list_papers_of(kb_env)] == ["a-yolo-copy"]
    assert len(report.problems) == 1 and "yolo/paper.yaml" in report.problems[0]


def list_papers_of(settings):
    with session_scope(settings) as session:
        return list_papers(session=session)


def test_a_broken_paper_yaml_keeps_its_paper_and_notes_in_the_catalog(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"en": "## Summary\ndetector"})
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net")
    sync(kb_env)
    path = kb_env.papers / "yolo" / "paper.yaml"
    path.write_text("<<<<<<< HEAD\n" + path.read_text(encoding="utf-8") + "=======\n>>>>>>> branch\n", encoding="utf-8")
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net: Convolutional Networks")
    result = kb("sync")
    assert result.code == 1 and "papers/yolo/paper.yaml" in result.err and "Traceback" not in result.err
    papers = {p["slug"]: p for p in json.loads(kb("list", "--json").out)}
    assert papers["yolo"]["notes"] == ["en"] and papers["unet"]["title"] == "U-Net: Convolutional Networks"


def test_a_broken_note_is_named_and_the_rest_loads(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", notes={"en": "## Summary\ndetector", "ja": "## 概要\n検出"})
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net", notes={"ja": "## 概要\n分割"})
    sync(kb_env)
    (kb_env.papers / "yolo" / "notes.ja.md").write_text("---\npaper: [unclosed\n---\n本文\n", encoding="utf-8")
    (kb_env.papers / "unet" / "notes.en.md").write_text('---\npaper: "1505.04597"\nlang: en\n---\nsegmentation\n')
    result = kb("sync")
    assert result.code == 1 and "papers/yolo/notes.ja.md: " in result.err and "Traceback" not in result.err
    papers = {p["slug"]: p["notes"] for p in json.loads(kb("list", "--json").out)}
    assert papers == {"yolo": ["en", "ja"], "unet": ["en", "ja"]}      # the broken one kept as it was
    assert "検出" in kb("note", "yolo", "--lang", "ja").out


def test_an_unquoted_id_read_as_a_number_is_named_with_its_fix(kb_env):
    (kb_env.papers / "yolo").mkdir()
    (kb_env.papers / "yolo" / "paper.yaml").write_text("id: 1506.02640\ntitle: YOLO\n", encoding="utf-8")
    (kb_env.papers / "resnet").mkdir()
    (kb_env.papers / "resnet" / "paper.yaml").write_text("id: 1512.03385  # ResNet\ntitle: ResNet\n", encoding="utf-8")
    assert sync(kb_env).problems == [
        'papers/resnet/paper.yaml: id 1512.03385 was read as a number; quote it: id: "1512.03385"',
        'papers/yolo/paper.yaml: id 1506.0264 was read as a number; quote it: id: "1506.02640"',
    ]


def test_remove_keeps_committed_run_exports_unless_asked(kb_env, kb):
    for slug, key in (("yolo", "1506.02640"), ("unet", "1505.04597")):
        write_paper(kb_env.papers, slug, key, slug.upper(), notes={"en": "## Summary\nx"})
    sync(kb_env)
    for slug in ("yolo", "unet"):
        (kb_env.papers / slug / "runs").mkdir()
        (kb_env.papers / slug / "runs" / "run-1.json").write_text("{}", encoding="utf-8")
    asked = kb("remove", "yolo", input="n\n")
    assert asked.code == 1 and "except its 1 committed run export(s) (papers/yolo/runs/*.json" in asked.out
    assert (kb_env.papers / "yolo" / "paper.yaml").exists()
    kept = kb("remove", "yolo", "--yes")
    assert kept.code == 0 and "kept its 1 run export(s) in papers/yolo/runs/" in kept.out
    assert sorted(p.relative_to(kb_env.papers).as_posix() for p in (kb_env.papers / "yolo").rglob("*")) == [
        "yolo/runs", "yolo/runs/run-1.json"]
    gone = kb("remove", "unet", "--yes", "--with-runs")
    assert gone.code == 0 and "and its 1 run export(s)" in gone.out and not (kb_env.papers / "unet").exists()
    assert json.loads(kb("list", "--json").out) == []


def test_a_sync_after_kb_add_changes_nothing(arxiv_server, kb_env):
    add_papers(kb_env, ["1506.02640", "hep-th/9711200"])
    report = sync(kb_env)
    assert (report.added, report.updated, report.removed, report.problems) == (0, 0, 0, [])
