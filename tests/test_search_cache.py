"""The glossary's index kept in KB_HOME/cache between searches (kb.search.load_glossary).

The cached index must expand queries exactly as the glossary files say at the time of the search:
the same terms as an index built from the files, a change to papers/glossary.tsv seen at once, a
damaged or unwritable cache never an error, a broken user glossary still refused.
"""

import pytest

from kb.errors import BadInput
from kb.glossary import concepts
from kb.search import expand_query, glossary_index, load_glossary

QUERIES = ["物体検出", "点群物体検出の精度", "knowledge distillation 精度", "object detection", "畳み込み", "detector",
           "semantic segmentation", "カーボラ"]


def _forms(terms) -> list[tuple[str, list[str], list[tuple[str, list[str]]]]]:
    return [(t.raw, t.tokens, [(a.raw, a.tokens) for a in t.alternatives]) for t in terms]


@pytest.fixture
def papers(tmp_path):
    folder = tmp_path / "papers"
    folder.mkdir()
    return folder


def test_the_cached_index_expands_as_the_glossary_files_do(papers, tmp_path, monkeypatch):
    first = load_glossary(papers, tmp_path / "cache")
    assert (tmp_path / "cache" / "glossary-index.marshal").is_file()
    # A second load reads the file: nothing is stemmed again.
    monkeypatch.setattr("kb.search.glossary_index", lambda entries: pytest.fail("the index was built again"))
    cached = load_glossary(papers, tmp_path / "cache")
    monkeypatch.undo()
    entries = concepts(papers)
    for query in QUERIES:
        assert _forms(expand_query(query, cached)) == _forms(expand_query(query, first)) \
               == _forms(expand_query(query, entries)), query
    # The shipped glossary's own pair, by hand: 物体検出 is also "object detection".
    (term,) = expand_query("物体検出", cached)
    assert term.tokens == ["物体", "体検", "検出"] and ("object detection", ["object", "detect"]) in _forms([term])[0][2]


def test_a_change_to_the_user_glossary_is_seen_by_the_next_search(papers, tmp_path):
    cache = tmp_path / "cache"
    assert expand_query("カーボラ", load_glossary(papers, cache))[0].alternatives == []
    (papers / "glossary.tsv").write_text("カーボラ\tkervolution\n", encoding="utf-8")
    assert [a.raw for a in expand_query("カーボラ", load_glossary(papers, cache))[0].alternatives] == ["kervolution"]
    (papers / "glossary.tsv").write_text("カーボラ\tkervolution\tkernel convolution\n", encoding="utf-8")
    assert [a.raw for a in expand_query("カーボラ", load_glossary(papers, cache))[0].alternatives] == \
           ["kernel convolution", "kervolution"]
    (papers / "glossary.tsv").unlink()
    assert expand_query("カーボラ", load_glossary(papers, cache))[0].alternatives == []


def test_a_broken_user_glossary_is_refused_on_every_search(papers, tmp_path):
    load_glossary(papers, tmp_path / "cache")
    (papers / "glossary.tsv").write_text("ひとつだけ\n", encoding="utf-8")
    for _ in range(2):
        with pytest.raises(BadInput, match="glossary.tsv:1: a glossary line needs two or more names"):
            load_glossary(papers, tmp_path / "cache")


def test_a_damaged_or_unwritable_cache_is_built_again_in_memory(papers, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    expected = _forms(expand_query("物体検出", glossary_index(concepts(papers))))
    for damaged in (b"", b"\x00garbage", b"\xe9\x03\x00\x00"):
        (cache / "glossary-index.marshal").write_bytes(damaged)
        assert _forms(expand_query("物体検出", load_glossary(papers, cache))) == expected
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would be", encoding="utf-8")
    assert _forms(expand_query("物体検出", load_glossary(papers, blocked))) == expected
    assert sorted(p.name for p in cache.iterdir()) == ["glossary-index.marshal"]      # no scratch file left
