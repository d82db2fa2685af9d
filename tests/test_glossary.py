"""The bilingual glossary (kb/glossary.tsv, papers/glossary.tsv) and search across languages.

The shipped notes are a parallel corpus: papers/<slug>/notes.ja.md and notes.en.md say the same
thing in two languages. The coverage test lists the Japanese terms frequent in the Japanese notes
that the glossary lacks; the pairing test checks the glossary's names against the English side.
"""

import collections
import re
import shutil
from pathlib import Path

import pytest

from kb.db import session_scope
from kb.errors import BadInput
from kb.glossary import concepts, normalize, parse_glossary, shipped, synonyms
from kb.ingest.sync import sync
from kb.search import expand_query, search, tokenize
from kb.settings import load_settings

PAPERS = Path(__file__).parent.parent / "papers"
_KATAKANA = re.compile(r"[\u30a0-\u30ff]{3,}")
_KANJI = re.compile(r"[\u4e00-\u9fff\u3005]{2,}")
# Frequent words of the notes that are ordinary Japanese, not terms of the field.
GENERIC = frozenset(
    ["リンク", "必要", "本文", "参照", "確認", "具体的", "複数", "数値", "注意点", "注意", "上回", "既存", "最良", "当時", "具体値", "未確認", "追加", "問題", "両方", "最初", "非常", "適用", "全体", "場合", "単純", "同等", "同時", "今回参照", "一方", "主張", "転記", "有効", "大幅", "通常", "一部", "最後", "種類", "範囲外", "保持", "記載", "公式", "最小", "十分", "前提", "自体", "詳細", "程度", "従来", "提案", "提案手法", "課題", "今回", "学習時", "直接"])
# A term in at least this many papers' Japanese notes must be in the glossary (or be GENERIC).
FREQUENT = 10


def _japanese_terms() -> collections.Counter:
    """Katakana words and kanji compounds, by the number of papers whose Japanese notes use them."""
    counts: collections.Counter = collections.Counter()
    for path in sorted(PAPERS.glob("*/notes.ja.md")):
        text = path.read_text(encoding="utf-8")
        counts.update(set(_KATAKANA.findall(text)) | set(_KANJI.findall(text)))
    return counts


def test_the_glossary_is_large_and_names_the_fields_terms():
    entries = shipped()
    assert len(entries) >= 300
    names = synonyms(entries)
    for japanese, english in [("物体検出", "object detection"), ("点群", "point cloud"), ("畳み込み", "convolution"),
                              ("蒸留", "distillation"), ("損失関数", "loss function"), ("ロス関数", "loss function"),
                              ("重み", "weights"), ("セグメンテーション", "segmentation"), ("領域分割", "segmentation"),
                              ("敵対的生成ネットワーク", "gan"), ("強化学習", "reinforcement learning"),
                              ("言語モデル", "language model"), ("機械翻訳", "machine translation"),
                              ("正則化", "regularization"), ("過学習", "overfitting"), ("勾配", "gradient"),
                              ("二値化", "binarization"), ("量子化", "quantization"), ("枝刈り", "pruning"),
                              ("超解像", "super-resolution"), ("姿勢推定", "pose estimation"), ("深度推定", "depth estimation")]:
        assert english in names[japanese], japanese


def test_frequent_japanese_terms_of_the_shipped_notes_are_in_the_glossary():
    names = set(synonyms(shipped()))
    counts = _japanese_terms()
    lacking = [(term, n) for term, n in counts.most_common() if normalize(term) not in names and term not in GENERIC]
    frequent = [(term, n) for term, n in lacking if n >= FREQUENT]
    assert frequent == [], f"add these to kb/glossary.tsv (or GENERIC if they are ordinary words): {frequent}; " \
                           f"less frequent ones lacking: {lacking[:40]}"


def test_the_glossarys_pairs_hold_in_the_parallel_notes():
    """Where the Japanese notes of a paper use a glossary name, its English notes should use an
    English name of the same concept (any word form) for a good share of the papers: a wrong
    pairing agrees with almost none."""
    names = synonyms(shipped())
    english_notes = {p.name: f" {' '.join(tokenize((p / 'notes.en.md').read_text(encoding='utf-8')))} "
                     for p in PAPERS.iterdir() if (p / "notes.en.md").is_file()}
    japanese_notes = {p.name: normalize((p / "notes.ja.md").read_text(encoding="utf-8"))
                      for p in PAPERS.iterdir() if (p / "notes.ja.md").is_file()}
    checked, wrong = 0, []
    for japanese, paired in names.items():
        english = [" ".join(tokenize(name)) for name in paired if name.isascii() and len(name) >= 3]
        papers = [slug for slug, text in japanese_notes.items() if slug in english_notes and japanese in text]
        if japanese.isascii() or len(japanese) < 2 or len(papers) < 5 or not english:
            continue
        agree = sum(any(f" {name} " in english_notes[slug] for name in english) for slug in papers)
        if agree * 3 < len(papers):
            wrong.append((japanese, english, f"{agree}/{len(papers)}"))
        checked += 1
    assert wrong == [], wrong
    assert checked >= 20


def test_user_glossary_extends_the_shipped_one(tmp_path):
    assert concepts(tmp_path) == shipped()
    (tmp_path / "glossary.tsv").write_text("# 研究室の用語\nカーボラ\tkervolution\tkernel convolution\n", encoding="utf-8")
    extended = concepts(tmp_path)
    assert extended[-1] == ("カーボラ", "kervolution", "kernel convolution")
    (tmp_path / "glossary.tsv").write_text("ひとつだけ\n", encoding="utf-8")
    with pytest.raises(BadInput, match="glossary.tsv:1: a glossary line needs two or more names"):
        concepts(tmp_path)
    assert parse_glossary("Ａ\tＢ  Ｃ\n", where="x") == [("a", "b c")]       # NFKC, lower case, single spaces


def test_query_expansion_joins_words_into_glossary_names():
    entries = (("物体検出", "object detection"), ("点群", "point cloud"), ("知識蒸留", "knowledge distillation"))
    terms = expand_query("knowledge distillation 精度", entries)
    assert [t.raw for t in terms] == ["knowledge distillation", "精度"]
    assert [a.raw for a in terms[0].alternatives] == ["知識蒸留"]
    # A Japanese word written as two glossary names together is those two names, each expanded.
    compound = expand_query("点群物体検出", entries)
    assert [(t.raw, [a.raw for a in t.alternatives]) for t in compound] == [
        ("点群", ["point cloud"]), ("物体検出", ["object detection"])]
    # A glossary name with kana stays whole; elsewhere kana split a query as particles do.
    assert [t.raw for t in expand_query("畳み込みの精度", (("畳み込み", "convolution"),))] == ["畳み込み", "精度"]


@pytest.fixture(scope="module")
def shipped_catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("glossary")
    shutil.copytree(PAPERS, root / "papers")
    patch = pytest.MonkeyPatch()
    patch.setenv("KB_HOME", str(root / "home"))
    patch.setenv("KB_PAPERS", str(root / "papers"))
    settings = load_settings()
    sync(settings)
    yield settings
    patch.undo()


def _ranked(settings, query, *, exact=False):
    with session_scope(settings) as session:
        return [h.paper.slug for h in search(query, session=session, glossary=None if exact else shipped())]


def test_a_japanese_query_ranks_the_papers_about_it_first(shipped_catalog):
    # The detection papers say "object detection" in their titles; AM-LFS only mentions 物体検出 in a note.
    detection = _ranked(shipped_catalog, "物体検出")
    assert set(detection[:2]) == {"yolo", "pixor"}
    # The detection papers (SKD and SPP-net say detection in their abstracts) before AM-LFS's note.
    assert set(detection[2:4]) == {"skd", "spp-net"} and detection[4:] == ["am-lfs"]
    assert _ranked(shipped_catalog, "物体検出", exact=True) == ["am-lfs"]
    assert set(_ranked(shipped_catalog, "点群")[:2]) == {"pixor", "calibnet"}
    assert _ranked(shipped_catalog, "蒸留") == _ranked(shipped_catalog, "distillation")
    assert {"skd", "codistillation"} <= set(_ranked(shipped_catalog, "蒸留")[:3])


def test_cli_search_expands_unless_exact(shipped_catalog, kb):
    import json

    expanded = [h["slug"] for h in json.loads(kb("search", "物体検出", "--json").out)]
    exact = [h["slug"] for h in json.loads(kb("search", "物体検出", "--exact", "--json").out)]
    assert set(expanded[:2]) == {"yolo", "pixor"} and exact == ["am-lfs"]
