"""kb import: linking notes to papers, idempotence, updates in place, reporting."""

import json

from kb.ingest.sync import sync
from kb.db import session_scope
from kb.ingest.notes import import_notes, match_title
from kb.models import Note
from tests.conftest import SHARED, write_paper

BLOG = """takuroooのブログ

You Only Look Once: Unified, Real-Time Object Detection(CVPR2016)

目次

概要

一段で物体検出を行う手法のメモ。

論文リンク

https://arxiv.org/pdf/1506.02640.pdf

結果

リアルタイムに動く。

GWでやったこと

目次

今年のゴールデンウィークは旅行に行った。
"""


def _catalog(settings):
    write_paper(settings.papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection")
    write_paper(settings.papers, "bn", "1805.11604", "How Does Batch Normalization Help Optimization?")
    sync(settings)


def test_import_links_by_arxiv_link_skips_non_paper_posts_and_is_idempotent(kb_env, tmp_path, kb):
    _catalog(kb_env)
    source = tmp_path / "blog.txt"
    source.write_text(BLOG, encoding="utf-8")
    report = import_notes(kb_env, [source], offline=True)
    assert [(i.paper, i.action, i.linked_by) for i in report.imported] == [("yolo", "added", "arXiv link")]
    assert len(report.skipped) == 1 and "GW" in report.skipped[0]
    written = kb_env.papers / "yolo" / "notes" / "blog.ja.md"
    assert "物体検出" in written.read_text(encoding="utf-8")
    assert [i.action for i in import_notes(kb_env, [source], offline=True).imported] == ["unchanged"]
    source.write_text(BLOG.replace("リアルタイムに動く。", "45 fps でリアルタイムに動く。"), encoding="utf-8")
    assert [i.action for i in import_notes(kb_env, [source], offline=True).imported] == ["updated"]
    with session_scope(kb_env) as session:
        notes = list(session.exec(Note.__table__.select()))
    assert len(notes) == 1
    # The imported note is now part of papers/: a fresh catalog rebuilds it.
    assert sync(kb_env).notes == 1
    search = json.loads(kb("search", "45", "fps", "--json").out)
    assert [h["slug"] for h in search] == ["yolo"]


def test_dry_run_changes_nothing(kb_env, tmp_path, kb):
    _catalog(kb_env)
    source = tmp_path / "blog.txt"
    source.write_text(BLOG, encoding="utf-8")
    result = kb("import", str(source), "--dry-run", "--offline")
    assert result.code == 0 and "would be added" in result.out and "1 added" in result.out
    assert not (kb_env.papers / "yolo" / "notes").exists()
    assert kb("note", "yolo").code == 1


def test_front_matter_note_and_title_resolution_offline(kb_env, tmp_path):
    _catalog(kb_env)
    tmp_path = tmp_path / "inbox"
    tmp_path.mkdir()
    (tmp_path / "a.md").write_text("---\npaper: yolo\nsource: https://example.com/post\n---\n## Summary\nGrid cells.\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("How Does Batch Normalization Help Optimization? (No, It Is Not About ICS)\n\n## 概要\n損失の滑らかさ。\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("An Unknown Paper Title About Things\n\n## 概要\n知らない論文。\n", encoding="utf-8")
    report = import_notes(kb_env, [tmp_path], offline=True)
    linked = {i.paper: (i.linked_by, i.origin) for i in report.imported}
    assert linked["yolo"][0] == "front matter" and linked["bn"][0] == "title (catalog)"
    assert len(report.unlinked) == 1 and "not found in the catalog" in report.unlinked[0].reason
    with session_scope(kb_env) as session:
        sources = {n.source for n in session.exec(Note.__table__.select())}
    assert "https://example.com/post" in sources


def test_title_resolution_online_adds_the_paper(arxiv_server, kb_env, tmp_path):
    (tmp_path / "memo.md").write_text("U-Net: Convolutional Networks for Biomedical Image Segmentation\n\n## 概要\nskip connection で精度が上がる。\n", encoding="utf-8")
    report = import_notes(kb_env, [tmp_path / "memo.md"], add_missing=True)
    assert report.papers_added == ["u-net"] and report.imported[0].linked_by == "title (arXiv)"


def test_broken_files_are_reported_not_fatal(kb_env, tmp_path, kb):
    _catalog(kb_env)
    tmp_path = tmp_path / "inbox"
    tmp_path.mkdir()
    (tmp_path / "bad.md").write_text("---\npaper: [unclosed\n---\nbody\n", encoding="utf-8")
    (tmp_path / "bin.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "ok.md").write_text("---\npaper: 1506.02640\nlang: en\n---\n## Summary\nfine\n", encoding="utf-8")
    result = kb("import", str(tmp_path), "--offline")
    # Scripts see the skipped files in the exit code; the good file is imported all the same.
    assert result.code == 1 and "bad.md" in result.err and "bin.txt" in result.err
    assert "1 added" in result.out and result.err.endswith("kb: error: 2 problem(s), listed above; everything else was imported\n")
    missing = kb("import", str(tmp_path / "nope.md"))
    assert missing.code == 2 and "no such file" in missing.err


def test_match_title_tolerates_typos_and_subtitles():
    titles = {"igcv2": ["IGCV2: Interleaved Structured Sparse Convolutional Neural Networks"],
              "sqz": ["SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size",
                      "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <1MB model size"]}
    assert match_title("IGCV2: Interleaved Strucrured Sparse Convolutional Neural Networks", titles) == "igcv2"
    assert match_title("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <1MB model size", titles) == "sqz"
    assert match_title("Deep Residual Learning", titles) is None


def test_the_example_exports_link_every_paper_post_to_the_shipped_catalog(kb_env, monkeypatch, tmp_path):
    """Issue acceptance: importing the example note files links every paper post."""
    import shutil

    from kb.settings import load_settings

    shutil.copytree(kb_env.project / "papers", tmp_path / "shipped")
    monkeypatch.setenv("KB_PAPERS", str(tmp_path / "shipped"))
    settings = load_settings()
    sync(settings)
    report = import_notes(settings, [SHARED / "examples" / "notes"], offline=True)
    assert report.unlinked == []
    assert len(report.imported) == 19 and len(report.skipped) == 5
    assert {i.paper for i in report.imported} >= {"yolo", "spp-net", "deeplabv3plus", "bn-optimization", "igcv2", "ipman"}
