"""kb search: Japanese (two-character words, mixed queries), English word forms, filters, ranking."""

import json

from kb.ingest.sync import sync
from kb.db import session_scope
from kb.search import parse_query, search, tokenize
from tests.conftest import write_paper


def _catalog(settings):
    write_paper(settings.papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection",
                notes={"ja": "## 概要\n物体検出を一段で行う。鳥瞰図ではない。", "en": "## Summary\nA single-stage detector."},
                extra="tags: [detection]\n")
    write_paper(settings.papers, "pixor", "1902.06326", "PIXOR: Real-time 3D Object Detection from Point Clouds",
                notes={"ja": "## 概要\n点群を鳥瞰図に変換して検出する。"}, extra="tags: [detection, 3d]\n")
    write_paper(settings.papers, "deeplab", "1802.02611", "Encoder-Decoder with Atrous Separable Convolution",
                notes={"ja": "## 結果\nsemantic segmentationの精度が向上した。重みは ImageNet で事前学習。"},
                extra="tags: [segmentation]\nyear: 2018\n")
    write_paper(settings.papers, "gnmt", "1609.08144", "Google's Neural Machine Translation System",
                notes={"en": "## Summary\nDetection of nothing; translation with wordpieces."})
    sync(settings)


def _slugs(settings, query, **filters):
    with session_scope(settings) as session:
        return [h.paper.slug for h in search(query, **filters, session=session)]


def test_tokenizer_bigrams_japanese_and_stems_english():
    assert tokenize("物体検出") == ["物体", "体検", "検出"]
    assert tokenize("Detectors detecting") == ["detect", "detect"]
    assert tokenize("ＣＮＮ") == ["cnn"]                         # full-width folded
    assert [t.raw for t in parse_query("検出の精度")] == ["検出", "精度"]


def test_two_character_japanese_words_find_their_papers(kb_env):
    _catalog(kb_env)
    assert set(_slugs(kb_env, "検出")) == {"yolo", "pixor"}
    assert _slugs(kb_env, "点群") == ["pixor"]
    assert _slugs(kb_env, "重み") == ["deeplab"]
    assert set(_slugs(kb_env, "鳥瞰図")) == {"yolo", "pixor"}
    assert _slugs(kb_env, "画像") == []


def test_mixed_japanese_english_query(kb_env):
    _catalog(kb_env)
    assert _slugs(kb_env, "semantic segmentation 精度") == ["deeplab"]
    assert _slugs(kb_env, "segmentationの精度") == ["deeplab"]


def test_english_word_forms_and_ranking(kb_env):
    _catalog(kb_env)
    hits = _slugs(kb_env, "detector")
    assert hits[:2] == ["pixor", "yolo"] or hits[:2] == ["yolo", "pixor"]
    assert hits[-1] == "gnmt"                    # a notes-only match ranks below title matches
    assert _slugs(kb_env, "point clouds") == ["pixor"]


def test_filters(kb_env):
    _catalog(kb_env)
    assert _slugs(kb_env, "検出", tag="3d") == ["pixor"]
    assert _slugs(kb_env, "detection", lang="en") in (["yolo", "gnmt"],)
    assert _slugs(kb_env, "精度", year=2018) == ["deeplab"]
    assert _slugs(kb_env, "detection", author="turing") != []
    assert _slugs(kb_env, "detection", author="nobody") == []


def test_cli_search_json_and_snippets(kb_env, kb):
    _catalog(kb_env)
    result = kb("search", "点群", "--json")
    assert result.code == 0
    hits = json.loads(result.out)
    assert hits[0]["slug"] == "pixor" and "**点群**" in hits[0]["snippet"]
    shown = kb("search", "鳥瞰図")
    assert "PIXOR" in shown.out and "鳥瞰図" in shown.out
    assert "no matches" in kb("search", "transformer").out


def test_search_survives_reindexing(kb_env):
    _catalog(kb_env)
    (kb_env.papers / "pixor" / "notes.ja.md").write_text('---\npaper: "1902.06326"\nlang: ja\n---\n## 概要\nLiDAR のみ。\n', encoding="utf-8")
    sync(kb_env)
    assert _slugs(kb_env, "点群") == []
    assert _slugs(kb_env, "lidar") == ["pixor"]
