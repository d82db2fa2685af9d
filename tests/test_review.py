"""kb review: the year's post checked structurally (groups, ★ first, links, 前編/後編); code links from
paper.yaml and notes, as the catalog holds them."""

import re
from datetime import datetime, timezone

from tests.conftest import write_paper


def catalog(kb_env, kb):
    """Four 2016 papers (arXiv v1 or venue), one from 2015; ★ from a note's front matter."""
    papers = kb_env.papers
    write_paper(papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection",
                extra="version: 5\npublished: 2015-06-08\nvenue: CVPR 2016\ntags: [detection]\nadded: 2019-06-29\n"
                      "code:\n  - {url: 'https://github.com/pjreddie/darknet', kind: official, framework: Darknet}\n",
                notes={"ja": "## 概要\n\nバウンディングボックス予測とクラス認識を同時に行う。\n\n## 実装\n\n"
                             "- PyTorch 実装: https://github.com/someone/yolo-pytorch"})
    write_paper(papers, "ssd", "1512.02325", "SSD: Single Shot MultiBox Detector",
                extra="published: 2015-12-08\nvenue: ECCV 2016\ntags: [detection]\nadded: 2019-07-01\n",
                notes={"ja": "## 概要\n\nデフォルトボックスで1段で検出する。"})
    write_paper(papers, "densenet", "1608.06993", "Densely Connected Convolutional Networks",
                extra="published: 2016-08-25\ntags: [classification]\nadded: 2019-08-02\n",
                notes={"ja": "全ての層を密に接続する。", "en": "Every layer connected to every other."})
    write_paper(papers, "fcn", "1411.4038", "Fully Convolutional Networks for Semantic Segmentation",
                extra="published: 2014-11-14\ntags: [segmentation]\nadded: 2019-08-10\n")
    write_paper(papers, "resnet", "1512.03385", "Deep Residual Learning for Image Recognition",
                extra="published: 2015-12-10\nvenue: CVPR 2016\ntags: [classification]\nadded: 2019-06-01\n",
                notes={"ja": "残差学習。"})
    for slug in ("ssd", "resnet"):             # a ★ in the note's front matter
        note = papers / slug / "notes.ja.md"
        note.write_text(note.read_text(encoding="utf-8").replace("lang: ja\n", "lang: ja\nimportant: true\n"), encoding="utf-8")
    assert kb("sync").code == 0, kb("sync").err


def sections(post: str) -> dict[str, list[str]]:
    """## group -> the ### entry headings under it, in order."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in post.splitlines():
        if line.startswith("## "):
            current = line[3:]
            groups[current] = []
        elif line.startswith("### "):
            groups[current].append(line[4:])
    return groups


def test_the_2016_review_by_tag_in_japanese_has_star_first_in_each_group(kb_env, kb):
    catalog(kb_env, kb)
    result = kb("review", "2016", "--published", "--by", "tag", "--lang", "ja")
    assert result.code == 0, result.err
    post = result.out
    assert post.startswith("# 2016年の論文まとめ\n")
    groups = sections(post)
    # fcn (2014) is not a 2016 paper; yolo and resnet are by their CVPR 2016 venue.
    assert list(groups) == ["classification", "detection"]
    assert groups["detection"] == ["★ SSD: Single Shot MultiBox Detector (2019/7)",
                                   "You Only Look Once: Unified, Real-Time Object Detection (2019/6)"]
    assert groups["classification"] == ["★ Deep Residual Learning for Image Recognition (2019/6)",
                                        "Densely Connected Convolutional Networks (2019/8)"]
    yolo = post[post.index("### You Only Look"):]
    assert "- arXiv: https://arxiv.org/abs/1506.02640" in yolo and "- 会議: CVPR 2016" in yolo
    assert "- 実装: https://github.com/pjreddie/darknet (公式, Darknet)" in yolo
    assert "- 実装: https://github.com/someone/yolo-pytorch (非公式, PyTorch)" in yolo
    assert "- 著者: Ada Lovelace, Alan Turing" in yolo
    assert "バウンディングボックス予測とクラス認識を同時に行う。" in yolo


def test_by_month_read_in_english_and_starred_only(kb_env, kb):
    catalog(kb_env, kb)
    post = kb("review", "2019", "--lang", "en").out
    assert post.startswith("# Papers I read in 2019\n")
    assert list(sections(post)) == ["2019/6", "2019/7", "2019/8"]
    assert sections(post)["2019/6"][0].startswith("★ Deep Residual")
    assert "Every layer connected to every other." in post and "全ての層" not in post
    starred = kb("review", "2019", "--starred").out
    assert [h for hs in sections(starred).values() for h in hs] == [
        "★ Deep Residual Learning for Image Recognition (2019/6)", "★ SSD: Single Shot MultiBox Detector (2019/7)"]


def test_two_parts_link_to_each_other(kb_env, kb, tmp_path):
    catalog(kb_env, kb)
    out = tmp_path / "review.md"
    result = kb("review", "2019", "--parts", "2", "--out", str(out))
    assert result.code == 0, result.err
    first, second = (tmp_path / "review-1.md").read_text(), (tmp_path / "review-2.md").read_text()
    assert first.startswith("# 2019年に読んだ論文まとめ（前編）\n\n[後編](review-2.md)")
    assert second.startswith("# 2019年に読んだ論文まとめ（後編）\n\n[前編](review-1.md)")
    # Whole months, all five papers, none twice.
    titles = re.findall(r"^### (.+)$", first + second, re.M)
    assert len(titles) == len(set(titles)) == 5 and set(sections(first)).isdisjoint(sections(second))


def test_bad_options_are_one_line_and_exit_2(kb_env, kb):
    for args in (["--by", "venue"], ["--lang", "fr"], ["--parts", "3"]):
        result = kb("review", "2016", *args)
        assert result.code == 2 and result.err.count("\n") == 1


def test_a_malformed_code_entry_is_named(kb_env, kb):
    write_paper(kb_env.papers, "bad", "1512.03385", "Deep Residual Learning", extra="code:\n  - {kind: official}\n")
    result = kb("sync")
    assert result.code == 1 and "bad/paper.yaml: code entry 1 needs a url" in result.out + result.err


def test_code_links_from_note_lines_and_sections():
    from kb.codelinks import extract_code_links

    body = ("## 実装\n\n- 著者実装 (TensorFlow): https://github.com/tensorflow/models.\n"
            "- https://github.com/other/port\n## 公式実装\nhttps://gitlab.com/group/project\n"
            "PyTorchで実装してみた github.com/me/mine.git, not karpathy.github.io/post or github.com alone\n")
    assert extract_code_links(body) == [
        {"url": "https://github.com/tensorflow/models", "kind": "official", "framework": "TensorFlow"},
        {"url": "https://github.com/other/port", "kind": "third-party"},
        {"url": "https://gitlab.com/group/project", "kind": "official"},
        {"url": "https://github.com/me/mine", "kind": "official", "framework": "PyTorch"},
    ]


def test_site_pages_review_per_year_reading_log_and_code_links(kb_env, kb):
    catalog(kb_env, kb)
    from kb.db import session_scope
    from kb.feed.decisions import decide, mark_seen
    from kb.feed.versions import write_versions
    from kb.site.feed_pages import add_feed_pages

    pages = {"index.md": "# kb\n", "paper/yolo.md": "# YOLO\n", "paper/ssd.md": "# SSD\n"}
    # The site reads the catalog only (design.md): with papers/ gone it shows the same code links and ★.
    kb_env.papers.rename(kb_env.papers.with_name("papers-elsewhere"))
    with session_scope(kb_env, write=True) as session:
        mark_seen(kb_env, ["2512.00001", "2512.00002", "2512.00003"], session=session)
        decide(kb_env, ["2512.00002"], "starred", session=session)
        write_versions(kb_env, {"1506.02640": 2}, session=session)
        add_feed_pages(pages, session=session)
    assert "## Code\n\n- [https://github.com/pjreddie/darknet](https://github.com/pjreddie/darknet) · official · Darknet" in pages["paper/yolo.md"]
    assert '!!! warning "New arXiv version"\n    notes written for v2, arXiv has v5.' in pages["paper/yolo.md"]
    assert pages["paper/ssd.md"] == "# SSD\n"
    assert "[Year reviews](reviews/index.md) · [Reading log](reading-log.md)" in pages["index.md"]
    assert "[2019](../review/2019.md)" in pages["reviews/index.md"]
    assert "### ★ Deep Residual Learning for Image Recognition (2019/6)" in pages["review/2019.md"]
    day = re.search(r"^\| (\d{4}-\d\d-\d\d) \| 3 \| 1 \| 1 \|$", pages["reading-log.md"], re.M)
    assert day is not None


def test_an_entry_with_a_runner_gives_the_newest_finished_runs_verdict(kb_env, kb):
    catalog(kb_env, kb)
    from kb.db import session_scope
    from sqlmodel import select

    from kb.models import Paper, RunRecord

    with session_scope(kb_env, write=True) as session:
        paper = session.exec(select(Paper).where(Paper.key == "1608.06993")).one()
        paper.runners = ["densenet"]
        judged = {"verdict": "reproduced", "metric": "test_error"}
        failed = {"verdict": "not reproduced", "metric": "test_error"}
        for number, (status, verdicts) in enumerate([("succeeded", [failed]), ("succeeded", [judged, failed]),
                                                     ("failed", [])]):
            session.add(RunRecord(id=f"run-{number}", runner="densenet", paper_key="1608.06993", preset="bc-100-12",
                                  status=status, verdicts=verdicts, run_dir=f"/tmp/run-{number}",
                                  created=datetime(2026, 1, 1 + number, tzinfo=timezone.utc)))
    post = kb("review", "2019", "--lang", "en").out
    densenet = post[post.index("### Densely"):]
    assert "- Reproduction: partly reproduced (1 of 2) (kb reproduce densenet)" in densenet.split("###")[1]
    assert "Reproduction" not in post[: post.index("### Densely")]


def test_kb_show_lists_the_code_links_of_paper_yaml_and_of_an_imported_note(kb_env, kb, tmp_path):
    catalog(kb_env, kb)
    post = tmp_path / "ssd-memo.md"
    post.write_text('---\npaper: "1512.02325"\nlang: ja\n---\n## 公式実装\n\nCaffe 版: https://github.com/weiliu89/caffe\n',
                    encoding="utf-8")
    assert kb("import", str(post), "--offline").code == 0
    shown = kb("show", "ssd").out
    assert "code: https://github.com/weiliu89/caffe (official, Caffe)" in shown
    yolo = kb("show", "yolo").out.splitlines()
    assert [line for line in yolo if line.startswith("code: ")] == [
        "code: https://github.com/pjreddie/darknet (official, Darknet)",
        "code: https://github.com/someone/yolo-pytorch (third-party, PyTorch)"]
