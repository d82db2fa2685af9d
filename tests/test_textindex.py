"""kb.textindex, the SQLite search index, against SQLite's own FTS5 and its bm25() as the reference:
the same papers in the same order with the same scores, for one word, several, phrases of bigrams,
glossary alternatives (OR) and one-character prefixes; the numpy and the Python path alike; and an
index kept up through edits equal to one built from scratch."""

import random

import pytest
from sqlalchemy import create_engine, text

from kb import textindex
from kb.search import expand

# Tokens as kb.search makes them: Latin stems and CJK bigrams. A small vocabulary, so that words
# repeat within a paper and phrases of bigrams occur both whole and with their bigrams apart.
_LATIN = ["detect", "network", "cloud", "point", "segment", "attent", "quantiz", "model"]
_CJK_WORDS = ["物体検出", "点群", "鳥瞰図", "精度", "損失関数", "検出", "体検"]


def _column(rng: random.Random, size: int) -> str:
    """Compact tokens: Latin stems and CJK runs (several words glued, as in a Japanese sentence)."""
    out = []
    for _ in range(size):
        if rng.random() < 0.5:
            out.append(rng.choice(_LATIN))
        else:
            out.append("".join(rng.choices(_CJK_WORDS, k=rng.randint(1, 3))))
    return " ".join(out)


def _documents(seed: int, papers: int) -> dict[int, tuple[str, str, str, str]]:
    rng = random.Random(seed)
    return {pid: (_column(rng, rng.randint(1, 4)), _column(rng, rng.randint(0, 2)), _column(rng, rng.randint(0, 12)),
                  _column(rng, rng.randint(0, 30)))
            for pid in range(1, papers + 1)}


@pytest.fixture
def catalog():
    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        for sql in textindex.TABLES:
            connection.exec_driver_sql(sql)
        connection.exec_driver_sql("CREATE VIRTUAL TABLE fts USING fts5(title, authors, abstract, notes, "
                                   "tokenize='unicode61 remove_diacritics 0')")
        yield connection


def _fill_reference(connection, documents) -> None:
    connection.exec_driver_sql("DELETE FROM fts")
    connection.exec_driver_sql("INSERT INTO fts(rowid, title, authors, abstract, notes) VALUES (?, ?, ?, ?, ?)",
                               [(pid, *map(expand, columns)) for pid, columns in documents.items()])


def _phrase(form) -> str:
    tokens, prefix = form
    return f'"{" ".join(tokens)}"' + ("*" if prefix else "")


def _fts5(connection, terms, limit=None) -> list[tuple[int, float]]:
    """FTS5's answer, ranked as kb ranks: every term in the title or abstract first, then bm25, then id."""
    expression = " AND ".join("(" + " OR ".join(map(_phrase, forms)) + ")" for forms in terms)
    sql = ("SELECT rowid, bm25(fts, 10.0, 5.0, 2.0, 1.0), "
           "rowid IN (SELECT rowid FROM fts WHERE fts MATCH :head) AS head FROM fts WHERE fts MATCH :q "
           "ORDER BY head DESC, bm25(fts, 10.0, 5.0, 2.0, 1.0), rowid")
    rows = connection.execute(text(sql), {"q": expression, "head": "{title abstract} : (" + expression + ")"}).all()
    found = [(pid, -score) for pid, score, _ in rows]
    return found[:limit] if limit else found


def _ours(connection, terms, limit=None, use_numpy=None) -> list[tuple[int, float]]:
    return textindex.ranked(lambda sql, params: connection.execute(text(sql), params).all(), terms, limit, expand,
                            use_numpy=use_numpy)


def _one(word: str):
    """A query term of one word as kb.search.parse_query makes it: a CJK word is a phrase of its bigrams."""
    if word.isascii():
        return [((word,), False)]
    return [(tuple(word[i : i + 2] for i in range(len(word) - 1)) if len(word) > 1 else (word,), len(word) == 1)]


_QUERIES = [
    [_one("detect")], [_one("network")], [_one("点群")], [_one("精度")],
    [_one("物体検出")], [_one("鳥瞰図")], [_one("損失関数")],                  # phrases of 3 bigrams
    [_one("detect"), _one("network")], [_one("point"), _one("cloud")],
    [_one("cloud"), _one("物体検出")], [_one("精度"), _one("検出"), _one("model")],
    [_one("point") + _one("点群")],                                               # a glossary alternative
    [_one("detect") + _one("物体検出"), _one("精度")],
    [_one("点")], [_one("物"), _one("segment")],                                   # one-character prefixes
    [_one("nowhere")], [_one("nowhere") + _one("cloud")], [_one("图")],
]


def _same(ours, reference) -> None:
    assert [pid for pid, _ in ours] == [pid for pid, _ in reference]
    assert [score for _, score in ours] == pytest.approx([score for _, score in reference], rel=1e-9)


@pytest.mark.parametrize("use_numpy", [False, True])
def test_the_index_ranks_and_scores_as_fts5(catalog, use_numpy):
    documents = _documents(0, 300)
    textindex.write(catalog, documents, (), expand, fresh=True)
    _fill_reference(catalog, documents)
    for terms in _QUERIES:
        reference = _fts5(catalog, terms)
        _same(_ours(catalog, terms, use_numpy=use_numpy), reference)
        _same(_ours(catalog, terms, limit=7, use_numpy=use_numpy), reference[:7])
    # The reference finds papers for most queries: the comparison above compares something.
    assert sum(bool(_fts5(catalog, terms)) for terms in _QUERIES) >= len(_QUERIES) - 3


@pytest.mark.parametrize("use_numpy", [False, True])
def test_phrases_with_many_candidates_are_checked_in_the_order_of_their_bound(catalog, monkeypatch, use_numpy):
    # No phrase is checked whole up front: the threshold algorithm picks the top papers alone. A
    # phrase's n is then the papers holding all its bigrams, so scores may differ from FTS5's by its
    # idf, a factor that one term's papers share: the order is FTS5's.
    monkeypatch.setattr(textindex, "_CHECK_ALL", 0)
    documents = _documents(1, 400)
    textindex.write(catalog, documents, (), expand, fresh=True)
    _fill_reference(catalog, documents)
    for word in ("物体検出", "鳥瞰図", "損失関数"):
        reference = [pid for pid, _ in _fts5(catalog, [_one(word)])]
        assert len(reference) > 10
        assert [pid for pid, _ in _ours(catalog, [_one(word)], limit=10, use_numpy=use_numpy)] == reference[:10]
        assert [pid for pid, _ in _ours(catalog, [_one(word)], use_numpy=use_numpy)] == reference


def test_a_paper_with_a_phrases_bigrams_apart_does_not_match(catalog):
    # 1: every bigram, apart; 2: the word; 3: two bigrams in the wrong order; 4: runs that meet, as
    # FTS5 sees them: 物体 then 体検 検出, consecutive index tokens, so a match as there.
    documents = {1: ("物体 model 体検 cloud 検出", "", "", ""), 2: ("model", "", "物体検出", ""),
                 3: ("検出物体", "", "", ""), 4: ("物体 体検出", "", "", "")}
    textindex.write(catalog, documents, (), expand, fresh=True)
    _fill_reference(catalog, documents)
    assert [pid for pid, _ in _ours(catalog, [_one("物体検出")])] == [4, 2] == [p for p, _ in _fts5(catalog, [_one("物体検出")])]
    assert textindex.count_phrase(["ああ", "ああ", "ああ"], ("ああ", "ああ")) == 2     # FTS5 counts each start


def _contents(connection) -> tuple:
    postings = {token: tuple(map(list, textindex.decode(ids, keys)))
                for token, ids, keys in connection.exec_driver_sql("SELECT token, ids, keys FROM search_posting")}
    tokens = dict(connection.exec_driver_sql("SELECT paper_id, tokens FROM search_tokens").fetchall())
    stats = dict(connection.exec_driver_sql("SELECT key, value FROM search_stats").fetchall())
    stats["lengths"] = list(textindex._ints(stats["lengths"], "I"))
    return postings, {pid: textindex.unpack(blob) for pid, blob in tokens.items()}, stats


def _by_hand(documents) -> dict:
    """The postings worked out one paper and one column at a time, as the module docstring defines them."""
    postings: dict[str, tuple[list, list]] = {}
    for pid in sorted(documents):
        columns = [expand(column).split() for column in documents[pid]]
        for token in sorted({t for column in columns for t in column}):
            weighted = sum(weight * column.count(token) for weight, column in zip((10, 5, 2, 1), columns))
            head = token in columns[0] or token in columns[2]
            postings.setdefault(token, ([], []))
            postings[token][0].append(pid)
            postings[token][1].append(weighted | (0x8000 if head else 0))
    return postings


@pytest.mark.parametrize("rewrite_from", [0.25, 2.0])     # a big change: built anew, or merged token by token
def test_an_index_kept_through_edits_equals_one_built_from_scratch(catalog, monkeypatch, rewrite_from):
    monkeypatch.setattr(textindex, "_REWRITE_FROM", rewrite_from)
    documents = _documents(2, 120)
    textindex.write(catalog, documents, (), expand, fresh=True)
    assert _contents(catalog)[0] == _by_hand(documents)
    rng = random.Random(3)
    edited = {pid: documents[pid] for pid in documents}
    for _ in range(4):                               # edits of a few papers, then of many, removals, new ones
        changed = {pid: _documents(rng.randint(10, 99), 130)[pid] for pid in rng.sample(sorted(edited), 5)}
        removed = rng.sample(sorted(set(edited) - set(changed)), 3)
        added = {200 + rng.randint(0, 50): ("new paper", "", "点群", "")}
        textindex.write(catalog, {**changed, **added}, removed, expand)
        edited.update(changed)
        edited.update(added)
        for pid in removed:
            edited.pop(pid)
    many = {pid: _documents(7, 130)[pid] for pid in sorted(edited)[:100]}
    textindex.write(catalog, many, sorted(edited)[100:], expand)
    final = many
    kept = _contents(catalog)
    assert kept[0] == _by_hand(final)
    assert kept[1] == {pid: list(columns) for pid, columns in final.items()}
    fresh = create_engine("sqlite://").connect()
    for sql in textindex.TABLES:
        fresh.exec_driver_sql(sql)
    textindex.write(fresh, final, (), expand, fresh=True)
    assert kept == _contents(fresh)
    textindex.write(catalog, {}, list(final), expand)
    assert _contents(catalog) == ({}, {}, {"rows": 0, "tokens": 0, "lengths": []})


def test_a_phrase_is_counted_in_compact_tokens_as_in_the_index_tokens():
    # The shortcut (compact text: a word within a run, a Latin phrase between spaces) against the
    # definition (the phrase's start positions in the expanded tokens), on columns made to straddle runs.
    rng = random.Random(5)
    pieces = ["物体", "体検出", "物体検出", "検出", "体検", "cloud", "point", "point cloud", "ああ", "あああ", "出"]
    forms = [textindex.Form(tuple(_one(word)[0][0])) for word in ("物体検出", "体検出", "ああああ")]
    forms.append(textindex.Form(("point", "cloud")))
    forms.append(textindex.Form(("point", "point")))
    for _ in range(400):
        column = " ".join(rng.choices(pieces, k=rng.randint(1, 8)))
        for form in forms:
            assert textindex._column_count(column, form, expand) == textindex.count_phrase(expand(column).split(),
                                                                                          form.tokens), (column, form)


@pytest.mark.parametrize("gap, count", [(1, 3), (300, 3), (70_000, 3), (1, 200)])
def test_postings_come_back_as_they_went_in_whatever_their_widths(gap, count):
    import numpy as np

    ids = [5 + gap * i for i in range(50)]
    keys = [(0x8000 if i % 3 else 0) | (count + i % 7) for i in range(50)]
    stored = textindex.encode(ids, keys)
    assert stored[0][0] == (1 if gap < 256 else 2 if gap < 65536 else 4) and stored[1][0] == (1 if count < 100 else 2)
    assert tuple(map(list, textindex.decode(*stored))) == (ids, keys)
    assert tuple(map(list, textindex.decode_numpy(np, *stored))) == (ids, keys)


def test_a_rebuilds_postings_are_stored_as_encode_stores_each_tokens():
    # _encoded encodes every token of a rebuild at once; encode (the reference) one token at a
    # time. Tokens with one paper, gaps of every width, keys over 127 and head bits.
    import numpy as np

    rng = random.Random(11)
    postings: dict[str, list[tuple[int, int]]] = {}
    for t in range(300):
        gap = rng.choice([1, 40, 300, 70_000])
        ids = sorted(rng.sample(range(1, 3 + gap * rng.randint(1, 20)), rng.choice([1, 1, 2, 5, 30]) if gap > 1 else 1))
        postings[f"t{t}"] = [(i, rng.choice([0, 0x8000]) | rng.choice([1, 5, 127, 128, 900, 0x7FFF])) for i in ids]
    number, token_numbers, paper_ids, paper_keys = {}, textindex.array("q"), textindex.array("I"), textindex.array("H")
    flat = [(i, token, key) for token, rows in postings.items() for i, key in rows]
    rng.shuffle(flat)
    for i, token, key in sorted(flat, key=lambda row: row[0]):      # write adds papers in id order
        token_numbers.append(number.setdefault(token, len(number)))
        paper_ids.append(i)
        paper_keys.append(key)
    expected = sorted((token, len(rows), *textindex.encode([i for i, _ in rows], [k for _, k in rows]))
                      for token, rows in postings.items())
    assert textindex._encoded(np, number, token_numbers, paper_ids, paper_keys) == expected
    assert {row[2][0] for row in expected} == {1, 2, 4} and {row[3][0] for row in expected} == {1, 2}
