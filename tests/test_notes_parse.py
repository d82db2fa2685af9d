"""kb.notes: every note form users have, checked against hand-written expectations."""

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from kb.errors import BadInput
from kb.notes import content_hash, detect_language, parse_file, parse_text

EXAMPLES = Path(__file__).resolve().parents[1] / ".." / "shared" / "examples" / "notes"


def example(name: str) -> Path:
    path = EXAMPLES / name
    # ../shared sits beside every checkout CI tests (README, Development): a missing file is a failure.
    assert path.is_file(), f"example file {path} not present: clone with ../shared beside the checkout"
    return path


# --- the real example files ----------------------------------------------------------------------


def test_blog_export_yields_the_three_paper_posts_and_skips_the_rest():
    notes, skipped = parse_file(example("blog-paper-notes.txt"))

    assert [note.title for note in notes] == [
        "You Only Look Once: Unified, Real-Time Object Detection",
        "Spatial Pyramid Pooling in Deep Convolutional Networks for Visual Recognition",
        "Encoder-Decoder with Atrous Separable Convolution for Semantic Image Segmentation",
    ]
    assert [note.venue for note in notes] == ["CVPR2016", None, "ECCV2018"]
    assert [note.arxiv_ids for note in notes] == [["1506.02640"], ["1406.4729"], ["1802.02611"]]
    assert [note.origin for note in notes] == [f"blog-paper-notes.txt#{n}" for n in (1, 2, 3)]
    # Posts 3 to 6 are event reports and a holiday diary.
    assert [entry.split(":")[0] for entry in skipped] == [f"blog-paper-notes.txt#{n}" for n in (3, 4, 5, 6)]
    assert all(entry.endswith("(not a paper post)") for entry in skipped)
    assert all(note.lang == "ja" and not note.important and note.date is None for note in notes)


def test_blog_export_authors_drop_affiliations():
    yolo, spp, deeplab = parse_file(example("blog-paper-notes.txt"))[0]

    assert yolo.authors == ["Joseph Redmon", "Santosh Divvala", "Ali Farhadi", "Ross Girshick"]
    assert spp.authors == ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"]
    assert deeplab.authors == ["Liang-Chieh Chen", "Yukun Zhu", "George Papandreou", "Florian Schroff", "Hartwig Adam"]


def test_blog_export_bodies_are_clean_markdown_of_their_own_post():
    notes, _ = parse_file(example("blog-paper-notes.txt"))

    for note in notes:
        assert "\n## 概要\n" in note.body and "\n## 論文リンク\n" in note.body
        assert "f:id:" not in note.body and "•" not in note.body and "目次" not in note.body
        assert note.title not in note.body
        # Nothing from the event reports between the paper posts leaks into a paper note.
        assert "connpass" not in note.body
    assert "\n- University of Washington\n    - Joseph Redmon\n" in notes[0].body


def test_qiita_memos_split_into_one_note_per_paper():
    notes, skipped = parse_file(example("qiita-paper-memos.txt"))

    assert [note.title for note in notes] == [
        "clcNet: Improving the Efficiency of Convolutional Neural Network using Channel Local Convolutions",
        "Low-Latency Video Semantic Segmentation",
        "On the iterative refinement of densely connected representation levels for semantic segmentation",
        "How Does Batch Normalization Help Optimization? (No, It Is Not Abbout Internal Covariate Shift)",
        "Interior Point Methods with Adversarial Networks",
        "Self-Attention Generative Adversarial Networks",
        "AutoAugment: Learning Augmentation Policies from Data",
        "IGCV2: Interleaved Strucrured Sparse Convolutional Neural Networks",
        "Image Inpainting for Irregular Holes Using Partial Convolutions",
        "Tempered Adversarial Networks",
        "CalibNet: Self-Supervised Extrinsic Calibration using 3D Spatial Transformer Networks",
        "Large Scale Distributed Neural Network Training Through Online Distillation",
        "Universal Planning Networks",
        "Semi-parametric Image Synthesis",
        "Blazingly Fast Video Object Segmentation with Pixel-Wise Metric Learning",
        "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and Semantics",
    ]
    assert [entry.split(":")[0] for entry in skipped] == ["qiita-paper-memos.txt#2"]
    assert skipped[0].endswith("(not a paper post)")
    assert notes[0].venue == "CVPR 2018" and all(note.venue is None for note in notes[1:])
    assert {note.date for note in notes} == {"2019-02-27"}
    assert [note.origin for note in notes] == [f"qiita-paper-memos.txt#{n}" for n in range(1, 17)]
    assert all(note.lang == "ja" and note.arxiv_ids == [] and note.body for note in notes)
    assert notes[0].body.startswith("## 概要\n")
    # A glued title ends the previous note's body and is not part of it.
    assert not any(later.title in earlier.body for earlier, later in zip(notes, notes[1:]))


# --- form (1): kb notes with front matter ----------------------------------------------------------

KB_NOTE = """\
---
paper: 1506.02640
source: https://example.org/yolo-memo
tags: [detection, real-time]
---
# ★ You Only Look Once

## 概要
グリッドごとに box と class を同時に予測する一段の検出器。

## 実装
- 入力は 448x448
"""


def test_kb_note_front_matter_is_read_verbatim():
    (note,), skipped = parse_text(KB_NOTE, origin="yolo.md")

    assert skipped == []
    # Unquoted, YAML would read 1506.02640 as a float and drop the last zero.
    assert note.paper_ref == "1506.02640"
    assert note.arxiv_ids == ["1506.02640"]
    assert note.source == "https://example.org/yolo-memo"
    assert note.tags == ["detection", "real-time"]
    assert note.title == "You Only Look Once" and note.important
    assert note.lang == "ja"
    assert note.origin == "yolo.md#1"
    assert note.body == "## 概要\nグリッドごとに box と class を同時に予測する一段の検出器。\n\n## 実装\n- 入力は 448x448"


def test_kb_note_front_matter_lang_wins_and_slug_is_not_an_arxiv_id():
    text = "---\npaper: yolo\nlang: en\ntags: detection\n---\n## Summary\n一段の検出器 (one-stage detector).\n"
    (note,), _ = parse_text(text)

    assert (note.paper_ref, note.lang, note.tags, note.arxiv_ids, note.title) == ("yolo", "en", ["detection"], [], None)


def test_kb_note_without_front_matter_is_one_note():
    text = "## Summary\nA one-stage detector, see arXiv:1506.02640v5.\n\n## Problem\nTwo-stage detectors are slow.\n"
    (note,), skipped = parse_text(text, origin="memo.md")

    assert skipped == []
    assert (note.title, note.lang, note.paper_ref, note.arxiv_ids) == (None, "en", None, ["1506.02640"])
    assert note.body == text.strip()


def test_a_filed_note_parses_back_to_the_record_it_was_written_from():
    # kb files an imported note with everything it learned in the front matter.
    (imported, *_), _ = parse_text(MEMOS, origin="memos.txt")
    front = {"paper": "1512.03385", "lang": imported.lang, "title": imported.title, "venue": imported.venue,
             "date": imported.date, "authors": ["Kaiming He", "Jian Sun"], "tags": ["resnet"],
             "important": True, "origin": imported.origin}
    filed = "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n" + imported.body + "\n"

    (note,), _ = parse_text(filed, origin="notes.ja.md")

    assert note == replace(imported, paper_ref="1512.03385", arxiv_ids=["1512.03385"], authors=["Kaiming He", "Jian Sun"],
                           tags=["resnet"], important=True)
    assert content_hash(note) == content_hash(imported)


@pytest.mark.parametrize(
    "text, complaint",
    [
        ("---\npaper: [1506.02640\n---\nbody\n", "not valid YAML"),
        ("---\nimportant: maybe\n---\nbody\n", "important"),
        ("---\npaper: 1506.02640\nbody without a closing line\n", "never closed"),
        ("---\n- just\n- a list\n---\nbody\n", "key: value"),
        ("---\ntags: {a: b}\n---\nbody\n", "tags"),
        ("---\nlang: Japanese\n---\nbody\n", "lang"),
        ("---\npaper: [a, b]\n---\nbody\n", "paper"),
    ],
)
def test_malformed_front_matter_names_the_file(text, complaint):
    with pytest.raises(BadInput) as raised:
        parse_text(text, origin="broken.md")

    message = str(raised.value)
    assert message.startswith("broken.md: ") and complaint in message and "\n" not in message


# --- form (4): タイトル blocks ---------------------------------------------------------------------


def test_title_blocks_give_authors_title_and_venue_from_one_line():
    text = """\
### タイトル
Kaiming He, Xiangyu Zhang (MSRA), Shaoqing Ren and Jian Sun. **"Deep Residual Learning for Image Recognition"** CVPR 2016.

### 概要
残差接続で深いネットワークを学習できるようにした。

### タイトル
“**Densely Connected Convolutional Networks**”, (CVPR 2017)

### 著者
- Gao Huang
- Zhuang Liu
"""
    notes, skipped = parse_text(text, origin="blocks.md")

    assert skipped == []
    assert [(n.title, n.venue, n.authors) for n in notes] == [
        (
            "Deep Residual Learning for Image Recognition",
            "CVPR 2016",
            ["Kaiming He", "Xiangyu Zhang", "Shaoqing Ren", "Jian Sun"],
        ),
        ("Densely Connected Convolutional Networks", "CVPR 2017", ["Gao Huang", "Zhuang Liu"]),
    ]
    assert notes[0].body == "### 概要\n残差接続で深いネットワークを学習できるようにした。"
    assert [n.origin for n in notes] == ["blocks.md#1", "blocks.md#2"]


# --- form (5): year-in-review posts ----------------------------------------------------------------


def test_year_in_review_gives_one_note_per_dated_heading():
    text = """\
# 今年読んだ論文

振り返り。

## ★ Attention Is All You Need (2017/6)

再帰なしで翻訳する。 https://arxiv.org/abs/1706.03762

### 感想

並列に学習できるのが大きい。

## Deep Residual Learning for Image Recognition
(2015/12)

残差接続の論文。

## おわりに

来年も読む。
"""
    notes, skipped = parse_text(text, origin="review.md")

    assert skipped == []
    assert [(n.title, n.date, n.important) for n in notes] == [
        ("Attention Is All You Need", "2017-06", True),
        ("Deep Residual Learning for Image Recognition", "2015-12", False),
    ]
    assert notes[0].arxiv_ids == ["1706.03762"]
    assert notes[0].body == "再帰なしで翻訳する。 https://arxiv.org/abs/1706.03762\n\n### 感想\n\n並列に学習できるのが大きい。"
    assert notes[1].body == "残差接続の論文。"
    assert all(n.lang == "ja" for n in notes)


# --- form (2) and (3) on small texts --------------------------------------------------------------

BLOG = """\
ある研究者のブログ

日々のメモ

★ Mask R-CNN(ICCV2017)

論文メモ
図は論文からの引用

目次

概要

Faster R-CNN にマスク用のブランチを足した。関連: https://arxiv.org/abs/1506.01497

論文リンク

https://arxiv.org/abs/1703.06870v3

著者

  • Facebook AI Research
    • Kaiming He
    • Georgia Gkioxari

提案手法

f:id:someone:20200101000000p:plain

  • RoIAlign で位置ずれをなくす
    • 双線形補間を使う

夏休みの日記

目次

海に行った。楽しかった。
"""


def test_blog_post_small_text():
    notes, skipped = parse_text(BLOG, origin="blog.txt")

    assert [(n.title, n.venue, n.important) for n in notes] == [("Mask R-CNN", "ICCV2017", True)]
    note = notes[0]
    # The 論文リンク link comes first even though another arXiv link appears earlier.
    assert note.arxiv_ids == ["1703.06870", "1506.01497"]
    assert note.authors == ["Kaiming He", "Georgia Gkioxari"]
    assert note.body.endswith("## 提案手法\n\n- RoIAlign で位置ずれをなくす\n    - 双線形補間を使う")
    assert note.body.startswith("論文メモ\n図は論文からの引用\n\n## 概要\n")
    assert "ブログ" not in note.body and "海" not in note.body
    assert skipped == ["blog.txt#2: 夏休みの日記 (not a paper post)"]


MEMOS = """\
- 投稿日:2020-03-01T10:00:00+09:00
【論文読み】Deep Residual Learning for Image Recognition
読んだ論文
Deep Residual Learning for Image Recognition
CVPR 2016
概要
- 残差を学習する
- 152 層まで深くできる
- 投稿日:2020-02-20T09:00:00+09:00
週末の日記
カレーを作った。
- 投稿日:2020-02-10T09:00:00+09:00
論文読みメモ_3
Densely Connected Convolutional Networks
各層を後続の全層に concat でつなぐ。Squeeze-and-Excitation Networks
チャネルごとに重みをつける。
"""


def test_memo_series_small_text():
    notes, skipped = parse_text(MEMOS, origin="memos.txt")

    assert [(n.title, n.venue, n.date) for n in notes] == [
        ("Deep Residual Learning for Image Recognition", "CVPR 2016", "2020-03-01"),
        ("Densely Connected Convolutional Networks", None, "2020-02-10"),
        ("Squeeze-and-Excitation Networks", None, "2020-02-10"),
    ]
    assert notes[0].body == "## 概要\n\n- 残差を学習する\n- 152 層まで深くできる"
    assert notes[1].body == "各層を後続の全層に concat でつなぐ。"
    assert notes[2].body == "チャネルごとに重みをつける。"
    assert skipped == ["memos.txt#2: 週末の日記 (not a paper post)"]


def test_plain_text_without_posts_is_one_note_titled_by_its_first_line():
    (note,), skipped = parse_text("Neural Architecture Search with Reinforcement Learning\n\nRNN が構造を出力する。\n")

    assert (note.title, note.body, note.lang, skipped) == (
        "Neural Architecture Search with Reinforcement Learning",
        "RNN が構造を出力する。",
        "ja",
        [],
    )


# --- files, encodings, hashing, language ---------------------------------------------------------


@pytest.mark.parametrize("text", ["", "  \n\n\t\n", "\ufeff"])
def test_empty_text_gives_nothing(text):
    assert parse_text(text) == ([], [])


def test_bom_and_crlf_read_like_plain_utf8(tmp_path):
    plain = tmp_path / "plain.md"
    plain.write_bytes(KB_NOTE.encode("utf-8"))
    windows = tmp_path / "windows.md"
    windows.write_bytes(b"\xef\xbb\xbf" + KB_NOTE.replace("\n", "\r\n").encode("utf-8"))

    (expected,), _ = parse_file(plain)
    (got,), _ = parse_file(windows)

    assert replace(got, origin=expected.origin) == expected
    assert got.origin == "windows.md#1"
    assert content_hash(got) == content_hash(expected)


@pytest.mark.parametrize(
    "content, complaint",
    [(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "NUL bytes"), ("Notes très notées, à relire".encode("latin-1"), "not UTF-8"),
     (b"\xff\xfe\x00\xd8", "utf-16-le byte-order mark")],
)
def test_unreadable_files_raise_bad_input(tmp_path, content, complaint):
    path = tmp_path / "figure.bin"
    path.write_bytes(content)

    with pytest.raises(BadInput, match=complaint) as raised:
        parse_file(path)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("encoding, mark", [("cp932", b""), ("shift_jis", b""), ("utf-16-le", b"\xff\xfe"),
                                            ("utf-16-be", b"\xfe\xff")])
def test_japanese_windows_encodings_read_like_utf8(tmp_path, encoding, mark):
    plain = tmp_path / "plain.md"
    plain.write_bytes(KB_NOTE.encode("utf-8"))
    exported = tmp_path / "exported.md"
    exported.write_bytes(mark + KB_NOTE.replace("\n", "\r\n").encode(encoding))

    (expected,), _ = parse_file(plain)
    (got,), _ = parse_file(exported)

    assert replace(got, origin=expected.origin) == expected


def test_missing_file_and_folder_raise_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        parse_file(tmp_path / "absent.md")
    with pytest.raises(BadInput, match="cannot read"):
        parse_file(tmp_path)


def test_content_hash_ignores_trailing_whitespace_only():
    (note,), _ = parse_text(KB_NOTE)
    base = content_hash(note)

    assert len(base) == 64 and int(base, 16) >= 0
    assert content_hash(replace(note, body=note.body.replace("\n", "  \n") + "\n\n")) == base
    assert content_hash(replace(note, origin="elsewhere.md#3", tags=[])) == base
    assert content_hash(replace(note, body=note.body + "追記")) != base
    assert content_hash(replace(note, lang="en")) != base
    assert content_hash(replace(note, title="YOLO")) != base


@pytest.mark.parametrize(
    "text, lang",
    [
        ("畳み込みで semantic segmentationなどを行う。", "ja"),
        ("Depthwise convolution や grouped convolution により畳み込みを効率化する。", "ja"),
        ("We replace pooling with dilated convolutions (膨張畳み込み) to keep resolution.", "en"),
        # Letters inside links do not count.
        ("論文: https://arxiv.org/abs/1506.02640", "ja"),
        ("", "en"),
    ],
)
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_a_comment_in_a_code_block_is_not_the_title():
    notes, _ = parse_text("---\npaper: 1506.02640\n---\n## 実装\n```python\n# train for 135 epochs\nfit()\n```\n")
    assert notes[0].title is None and "# train for 135 epochs" in notes[0].body
