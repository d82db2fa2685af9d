"""kb import of the posts people write (issue 19): year reviews, Advent Calendar round-ups, monthly
best-paper lists, reading lists, Hatena exports, copied pages; one note per paper, precision first.

The fixture posts (tests/fixtures/posts/) were written for these tests in each shape, with traps: an
introduction listing the titles again, papers with similar titles (GNMT and multilingual GNMT), a
section linking a baseline paper as well as its own, posts with no ids at all, a Shift_JIS copy.
"""

import json
import shutil
from pathlib import Path

import pytest

from kb.db import session_scope
from kb.ingest.notes import import_notes
from kb.ingest.sync import sync
from kb.models import Note, Paper
from kb.notes import parse_file, parse_text
from kb.settings import load_settings

POSTS = Path(__file__).parent / "fixtures" / "posts"
# What a reader of each post would say it links to (None: a paper not in the shipped catalog).
EXPECTED = {
    "advent-calendar.md": ["pix2pix", "stackgan", "gnmt", "multilingual-nmt", "bytenet", "wavenet", None],
    "hatena-export.txt": ["yolo", "pixor"],
    "monthly-best.md": ["upn", "sims", "pml-vos", "codistillation", None],
    "plain-page-sjis.txt": ["fcn", "unet", "stochastic-depth"],
    "qiita-year-review.md": ["densenet", "resnext", "xnor-net", "squeezenet", None],
    "reading-list.md": ["fcn", "unet", "deeplabv3plus", "lvs", "uncertainty-mtl"],
    "zenn-paragraphs.md": ["skd", "bnn", "am-lfs"],
    "ranking-post.md": [None, "wavenet", "pix2pix"],
    "awesome-list.md": ["fcn", "unet", "deeplabv3plus"],
    "category-lists.md": ["densenet", "resnext", "wavenet", "soundnet"],
    "quoted-paragraphs.md": ["stochastic-depth", "fractalnet"],
    "bold-titles.md": ["stochastic-depth", "fractalnet"],
    "qiita-export-headings.md": ["densenet", "stochastic-depth"],
    # Plain numbered items after bold ones: each item is its own paper; the last opens with a title's
    # name before its colon and mentions a related paper later in the line.
    "numbered-plain-list.txt": ["wavenet", "pixelrnn", "learning-to-learn", "bnn"],
    # Papers under headings, then a table of papers under a heading that names none; the reference
    # list under 参考文献 stays the post's.
    "zenn-headings-then-table.md": ["resnext", "densenet", "fcn", "unet"],
}


@pytest.fixture(scope="module")
def shipped_template(tmp_path_factory):
    """The shipped papers/ and the catalog kb sync builds of them, made once for this module."""
    from kb.db import _ready_engine

    root = tmp_path_factory.mktemp("shipped")
    shutil.copytree(Path(__file__).parent.parent / "papers", root / "papers")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KB_HOME", str(root / "home"))
        patch.setenv("KB_PAPERS", str(root / "papers"))
        patch.setenv("KB_ARXIV_API", "http://127.0.0.1:9/api/query")
        for key in ("KB_DATABASE_URL", "KB_RUNNERS", "KB_DATA"):
            patch.delenv(key, raising=False)
        _ready_engine.cache_clear()
        sync(load_settings())
        _ready_engine.cache_clear()
    return root


@pytest.fixture
def shipped(kb_env, monkeypatch, tmp_path, shipped_template):
    """A throwaway copy of the shipped papers/ and its catalog."""
    shutil.copytree(shipped_template / "papers", tmp_path / "shipped")
    kb_env.home.mkdir(parents=True, exist_ok=True)
    for part in (shipped_template / "home").glob("catalog.db*"):      # with any -wal / -shm beside it
        shutil.copy2(part, kb_env.home / part.name)
    monkeypatch.setenv("KB_PAPERS", str(tmp_path / "shipped"))
    return load_settings()


def test_every_post_shape_links_one_note_per_paper_and_none_wrongly(shipped):
    report = import_notes(shipped, [POSTS], offline=True)
    linked = {item.origin: item.paper for item in report.imported}
    unlinked = {item.origin for item in report.unlinked}
    for name, papers in EXPECTED.items():
        for number, slug in enumerate(papers, 1):
            origin = f"{name}#{number}"
            if slug is None:
                assert origin in unlinked, origin
            else:
                assert linked.get(origin) == slug, origin
    assert len(linked) + len(unlinked) == sum(map(len, EXPECTED.values()))
    assert report.skipped == ["hatena-export.txt#2: 夏休みの日記 (not a paper post)"]
    assert report.problems == []


def test_the_introduction_list_and_closing_words_belong_to_no_paper():
    notes, _ = parse_file(POSTS / "qiita-year-review.md")
    assert notes[0].title == "Densely Connected Convolutional Networks"
    assert not any("はじめに" in n.body or "来年も頑張ります" in n.body for n in notes)
    # The flattened one-line block keeps its sub-headings; the next paper's block is not part of it.
    assert "### 結果 CIFAR" in notes[0].body and "Aggregated" not in notes[0].body
    assert [n.venue for n in notes[:3]] == ["CVPR 2017", "CVPR 2017", "ECCV 2016"]
    assert notes[0].authors[:2] == ["Gao Huang", "Zhuang Liu"]


def test_a_section_that_links_a_baseline_goes_to_its_own_paper_and_records_the_mention(shipped):
    report = import_notes(shipped, [POSTS / "advent-calendar.md", POSTS / "hatena-export.txt"], offline=True)
    by_origin = {item.origin: item for item in report.imported}
    # pix2pix's section links U-Net's PDF as its generator; PIXOR's compares itself with YOLO.
    assert by_origin["advent-calendar.md#1"].paper == "pix2pix" and by_origin["advent-calendar.md#1"].mentions == ["unet"]
    assert by_origin["hatena-export.txt#2"].paper == "pixor" and by_origin["hatena-export.txt#2"].mentions == ["yolo"]
    assert by_origin["advent-calendar.md#4"].mentions == ["gnmt"]
    with session_scope(shipped) as session:
        pixor = session.exec(Paper.__table__.select().where(Paper.slug == "pixor")).first()
        rows = list(session.exec(Note.__table__.select().where(Note.paper_id == pixor.id)))
    assert [row.mentions for row in rows if row.path.startswith("pixor/notes/")] == [["1506.02640"]]


def test_a_baseline_link_alone_never_claims_a_section_whose_title_is_unknown(kb_env):
    from tests.conftest import write_paper

    write_paper(kb_env.papers, "resnet", "1512.03385", "Deep Residual Learning for Image Recognition")
    sync(kb_env)
    text = ("## Squeeze-and-Excitation Networks\n\nベースラインの Deep Residual Learning "
            "(https://arxiv.org/abs/1512.03385) にチャネル注意を足す。\n\n## Wide Residual Networks\n\n幅を広げる。\n")
    post = Path(kb_env.home.parent) / "se.md"
    post.write_text(text, encoding="utf-8")
    report = import_notes(kb_env, [post], offline=True)
    assert report.imported == []
    first = report.unlinked[0]
    assert first.title == "Squeeze-and-Excitation Networks" and first.candidates == [
        "resnet: Deep Residual Learning for Image Recognition"]


def test_similar_titles_are_told_apart_or_left_unlinked(shipped):
    notes, _ = parse_text("## Google's Neural Machine Translation System\n\nGNMT.\n\n"
                          "## Google's Multilingual Neural Machine Translation System: Enabling Zero-Shot Translation\n\n多言語。\n",
                          origin="nmt.md")
    post = Path(shipped.home) / "nmt.md"
    post.parent.mkdir(parents=True, exist_ok=True)
    post.write_text("## Google's Neural Machine Translation System\n\nGNMT.\n\n"
                    "## Google's Multilingual Neural Machine Translation System: Enabling Zero-Shot Translation\n\n多言語。\n",
                    encoding="utf-8")
    report = import_notes(shipped, [post], offline=True)
    assert [(i.origin, i.paper) for i in report.imported] == [("nmt.md#2", "multilingual-nmt")]
    assert report.unlinked[0].origin == "nmt.md#1" and len(notes) == 2


def test_marks_dates_and_sources_are_kept_in_the_note_files(shipped):
    report = import_notes(shipped, [POSTS / "qiita-year-review.md", POSTS / "advent-calendar.md",
                                    POSTS / "zenn-paragraphs.md"], offline=True)
    by_origin = {item.origin: item for item in report.imported}

    def filed(origin):
        (note,), _ = parse_file(shipped.papers / by_origin[origin].path)
        return note

    densenet = filed("qiita-year-review.md#1")
    assert (densenet.date, densenet.stars, densenet.venue) == ("2016-12-24", 2, "CVPR 2017")
    assert densenet.heading.startswith("### タイトル Gao Huang") and densenet.origin == "qiita-year-review.md#1"
    assert filed("qiita-year-review.md#3").addenda == ["2017-01-10"]
    assert filed("qiita-year-review.md#4").unfinished
    stackgan = filed("advent-calendar.md#2")
    assert stackgan.important and stackgan.date == "2016-12" and stackgan.title == "StackGAN"
    with session_scope(shipped) as session:
        stars = {p.slug: p.star for p in session.exec(Paper.__table__.select())}
    assert stars["densenet"] == 2 and stars["stackgan"] == 1 and stars["bnn"] == 1 and stars["yolo"] == 0
    # The files are the truth: a rebuilt catalog has the same ★.
    (shipped.home / "catalog.db").unlink()
    sync(shipped)
    with session_scope(shipped) as session:
        assert {p.slug: p.star for p in session.exec(Paper.__table__.select())} == stars


def test_dry_run_shows_the_split_and_why(shipped, kb):
    result = kb("import", str(POSTS / "monthly-best.md"), "--offline", "--dry-run", "--json")
    report = json.loads(result.out)
    assert [(i["origin"], i["paper"], i["linked_by"]) for i in report["imported"]][:2] == [
        ("monthly-best.md#1", "upn", "title (catalog)"), ("monthly-best.md#2", "sims", "title (catalog)")]
    assert report["unlinked"][0]["title"] == "Learning to Segment Every Thing Quickly"
    shown = kb("import", str(POSTS / "reading-list.md"), "--offline", "--dry-run")
    assert "would be added" in shown.out and "lvs" in shown.out and "(CVF link)" in shown.out
    assert not list(shipped.papers.glob("*/notes/monthly-best*"))


def test_add_missing_adds_what_arxivs_title_search_resolves(arxiv_server, kb_env, tmp_path):
    post = tmp_path / "post.md"
    post.write_text("## U-Net: Convolutional Networks for Biomedical Image Segmentation\n\nskip connection。\n\n"
                    "## An Entirely Unknown Paper About Nothing\n\n不明。\n", encoding="utf-8")
    without = import_notes(kb_env, [post])
    assert without.imported == [] and without.addable == 1 and "--add-missing" in without.unlinked[0].reason
    report = import_notes(kb_env, [post], add_missing=True)
    assert report.papers_added == ["u-net"] and [i.linked_by for i in report.imported] == ["title (arXiv)"]
    assert len(report.unlinked) == 1


def test_encodings_and_page_chrome():
    notes, _ = parse_file(POSTS / "plain-page-sjis.txt")
    assert [n.date for n in notes] == ["2018-05-20"] * 3
    assert not any("LGTM" in n.body or "fig1.png" in n.body or "Delete article" in n.body for n in notes)
    assert "次は DeepLab" not in notes[-1].body
    bom = parse_text("\ufeff" + (POSTS / "monthly-best.md").read_text(encoding="utf-8"), origin="m.md")[0]
    assert [n.title for n in bom][:1] == ["Universal Planning Networks"]


def test_star_is_listed_filtered_and_shown(shipped, kb):
    import_notes(shipped, [POSTS / "qiita-year-review.md"], offline=True)
    starred = json.loads(kb("list", "--star", "--json").out)
    assert [(p["slug"], p["star"]) for p in starred] == [("densenet", 2)]
    assert "★★" in kb("list", "--star").out and "★★ (from your notes)" in kb("show", "densenet").out


def test_the_site_shows_the_star_on_the_paper_page_and_in_the_list():
    from kb.site.pages import generate
    from kb.site.snapshot import Snapshot
    from tests.test_site_pages import yolo

    pages = generate(Snapshot(papers=(yolo(star=2), yolo(key="1902.06326", slug="pixor", title="PIXOR"))))
    assert "★★ in your notes" in pages["paper/yolo.md"] and "★" not in pages["paper/pixor.md"]
    listed = next(line for line in pages["papers/index.md"].splitlines() if "paper/yolo" in line)
    assert "★★" in listed


def test_a_note_on_one_paper_keeps_its_reference_list():
    text = ("# 論文メモ\n\n## 概要\n一段で検出する。\n\n## 提案手法\nグリッドで予測。\n\n## 参考\n"
            "- [Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks](https://arxiv.org/abs/1506.01497)\n"
            "- [SSD: Single Shot MultiBox Detector](https://arxiv.org/abs/1512.02325)\n")
    (note,), _ = parse_text(text, origin="memo.md")
    assert "SSD" in note.body and note.own_ids == []


def test_an_untitled_note_linking_several_papers_is_not_guessed(kb_env, tmp_path):
    from tests.conftest import write_paper

    write_paper(kb_env.papers, "frcnn", "1506.01497", "Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks")
    sync(kb_env)
    note = tmp_path / "memo.md"
    note.write_text("## Summary\nOne stage.\n\n## Method\nGrid.\n\n## Related\n"
                    "- [Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks](https://arxiv.org/abs/1506.01497)\n"
                    "- [SSD: Single Shot MultiBox Detector](https://arxiv.org/abs/1512.02325)\n", encoding="utf-8")
    report = import_notes(kb_env, [note], offline=True)
    assert report.imported == [] and "links 2 papers" in report.unlinked[0].reason
    assert report.unlinked[0].candidates == ["frcnn: Faster R-CNN: Towards Real-Time Object Detection with Region Proposal Networks"]
