"""kb's search index on SQLite: for each token, the papers holding it and how often (issue 21).

FTS5 computes BM25 for every row a query matches (about 2.3 µs a row: 100 ms for a word in 15% of
100,000 papers), and keeps every token's positions. This index keeps, per token, exactly what
BM25 and kb's head tier need, in two arrays a query reads whole and scores at once:

- ``search_posting(token, papers, ids, keys)``: how many papers hold the token, their ids
  (ascending, stored as the gaps between them) and one key per paper: bit 15 set where the token is
  in the title or the abstract, the low 15 bits its column-weighted count ``F = 10·title +
  5·authors + 2·abstract + 1·notes`` (``WEIGHTS``), as FTS5's bm25() sums it; both in as few bytes
  as their values need (``encode``), so that a one-paper edit rewrites common tokens cheaply.
- ``search_tokens(paper_id, tokens)``: the paper's compact tokens by column, deflated
  (``pack``): what a phrase is checked against, and what taking the paper out reads.
- ``search_stats``: ``rows`` and ``tokens`` (BM25's average row length) and ``lengths``, each
  paper's token count (uint32, indexed by paper id).

A query's score is FTS5's bm25() (sqlite's ext/fts5/fts5_aux.c, ``fts5Bm25Function``): for each
phrase of the query, ``idf · F(k1+1) / (F + k1(1 - b + b·D/avgdl))`` with ``D`` the row's tokens in
all columns, k1 = 1.2, b = 0.75, ``idf = log((N - n + 0.5) / (n + 0.5))`` (1e-6 where that is not
positive); ``tests/test_textindex.py`` checks it against FTS5 itself. A phrase of several tokens (a
Japanese word's bigrams, a glossary name of several words) is not in the arrays: its papers are
those holding all its tokens, each token's ``F`` bounds the phrase's from above, and papers are
checked against their stored tokens in the order of that bound until no unchecked one can enter
the top ``limit`` (the threshold algorithm): the same hits and scores as positions would give,
except that a phrase's ``n`` is the number of papers holding all its tokens unless all were checked.

Big posting lists are scored with numpy; a small catalog's are scored in Python, so that a search
there does not pay numpy's import (``_NUMPY_FROM``). Both compute the same numbers (the tests compare them).
"""

from __future__ import annotations

import heapq
import math
import sys
import zlib
from array import array
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, count, repeat
from typing import Any

K1, B = 1.2, 0.75
WEIGHTS = (10, 5, 2, 1)            # BM25 weights of the columns title, authors, abstract, notes
_HEAD_COLUMNS = (0, 2)             # title, abstract
_HEAD = 0x8000
_MAX_F = 0x7FFF
# Postings a query reads from which numpy scores them, once numpy is loaded: past a few hundred its
# per-call cost is less than Python's ~1-3 us a posting (100k papers: a 4,006-posting list 7.4 ms in
# Python, 1.4 ms with numpy; at 200 postings 1.5 against 1.05 ms, the rest of the query included).
# Its import (~40 ms) costs as much as Python's scoring of about 40,000 postings: a process imports
# it for a query that long, or once the lists it scored in Python add up to that (a process that
# searches again and again, as a rental turns into a purchase); a one-query ``kb search`` seldom does.
_NUMPY_FROM, _NUMPY_IMPORT_FROM = 256, 40_000
_scored_in_python = 0
_CHECK_BATCH = 32                  # papers whose stored tokens are read at once
_REWRITE_FROM = 0.25               # a write changing more than this share of the papers builds the index anew
_CHECK_ALL = 64                    # a phrase with at most this many candidate papers is checked at once

TABLES = (
    ("CREATE TABLE IF NOT EXISTS search_posting (token TEXT PRIMARY KEY, papers INTEGER NOT NULL, ids BLOB NOT NULL, "
     "keys BLOB NOT NULL)"),
    "CREATE TABLE IF NOT EXISTS search_tokens (paper_id INTEGER PRIMARY KEY, tokens BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_stats (key TEXT PRIMARY KEY, value)",
)
DROP = ("DROP TABLE IF EXISTS search_posting", "DROP TABLE IF EXISTS search_tokens", "DROP TABLE IF EXISTS search_stats")

if array("I").itemsize != 4 or array("H").itemsize != 2:     # pragma: no cover - every platform CPython runs on
    raise ImportError("kb's search index needs 4-byte array('I') and 2-byte array('H')")
_SWAP = sys.byteorder != "little"      # blobs are little-endian whatever the machine


def _ints(blob: bytes, code: str) -> array:
    values = array(code)
    values.frombytes(blob)
    if _SWAP:                           # pragma: no cover
        values.byteswap()
    return values


def _blob(values: array) -> bytes:
    if _SWAP:                           # pragma: no cover
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


# A blob: one byte giving the width of its numbers, then the numbers, little-endian.
_CODES = {1: "B", 2: "H", 4: "I"}


def encode(ids, keys) -> tuple[bytes, bytes]:
    """A token's postings as stored: the gaps between ids, in 1, 2 or 4 bytes each (a common word's
    gaps are small), and the keys in 1 byte each where every count is below 128 (the head bit then
    bit 7), else 2. ``ids``, ``keys``: arrays or numpy arrays, ascending ids."""
    import numpy as np

    gaps = np.diff(np.asarray(ids, dtype=np.int64), prepend=0)
    top = int(gaps.max()) if len(gaps) else 0
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4
    keys = np.asarray(keys, dtype=np.uint16)
    if len(keys) and int((keys & _MAX_F).max()) < 0x80:
        keyed = bytes([1]) + ((keys >> 8) & 0x80 | keys & 0x7F).astype(np.uint8).tobytes()
    else:
        keyed = bytes([2]) + keys.astype("<u2").tobytes()
    return bytes([width]) + gaps.astype(f"<u{width}").tobytes(), keyed


def _wide(keys: array) -> array:
    """One-byte keys as two-byte ones."""
    return array("H", [(k & 0x80) << 8 | k & 0x7F for k in keys])


def decode(ids_blob: bytes, keys_blob: bytes) -> tuple[array, array]:
    """``encode``'s postings back, as arrays of ids and two-byte keys (the Python path)."""
    ids = array("I", accumulate(_ints(ids_blob[1:], _CODES[ids_blob[0]])))
    keys = _ints(keys_blob[1:], _CODES[keys_blob[0]])
    return ids, (_wide(keys) if keys_blob[0] == 1 else keys)


def decode_numpy(np, ids_blob: bytes, keys_blob: bytes):
    """``encode``'s postings back, as numpy arrays of ids (int64) and two-byte keys."""
    ids = np.cumsum(np.frombuffer(ids_blob, dtype=f"<u{ids_blob[0]}", offset=1), dtype=np.int64)
    keys = np.frombuffer(keys_blob, dtype=f"<u{keys_blob[0]}", offset=1)
    if keys_blob[0] == 1:
        keys = (keys.astype(np.uint16) & 0x80) << 8 | keys & 0x7F
    return ids, keys


# -- a paper's tokens -----------------------------------------------------------------------

_DEFLATE_BITS = 12          # a 4 KB window: a paper's tokens are a few KB, and a small window starts fast


def pack(columns: Sequence[str]) -> bytes:
    """A paper's compact tokens by column (space-separated) as stored in ``search_tokens``."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, -_DEFLATE_BITS, 4)
    return deflate.compress("\x1f".join(columns).encode("utf-8")) + deflate.flush()


def unpack(blob: bytes) -> list[str]:
    return zlib.decompress(blob, -_DEFLATE_BITS).decode("utf-8").split("\x1f")


def postings_of(columns: Sequence[Sequence[str]]) -> tuple[dict[str, int], int]:
    """One paper's key for each of its tokens (see the module docstring) and its length in tokens,
    from its index tokens by column (title, authors, abstract, notes)."""
    weighted: Counter[str] = Counter()
    for weight, tokens in zip(WEIGHTS, columns):
        weighted.update(tokens * weight if weight > 1 else tokens)     # counted in C, weight times over
    if weighted and max(weighted.values()) > _MAX_F:
        weighted = Counter({token: min(f, _MAX_F) for token, f in weighted.items()})
    for token in set(columns[_HEAD_COLUMNS[0]]).union(columns[_HEAD_COLUMNS[1]]):
        weighted[token] |= _HEAD
    return dict(weighted), sum(map(len, columns))


def prepare(columns: Sequence[str], tokens_of: Callable[[str], list[str]]) -> tuple[str, array, int, bytes]:
    """What ``write`` stores of one paper, from its compact tokens by column (``tokens_of``: a
    column's index tokens): its distinct tokens (space-separated) and its key for each
    (``postings_of``), its length in tokens, its packed tokens. kb sync works these out in worker
    processes: one string and an array travel back far faster than a dict of hundreds of strings."""
    keys, length = postings_of(list(map(tokens_of, columns)))
    return " ".join(keys), array("H", keys.values()), length, pack(columns)


# -- writing ----------------------------------------------------------------------------------


def _chunks(values: Sequence, size: int = 500) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _stats(connection) -> tuple[int, int, array]:
    found = dict(connection.exec_driver_sql("SELECT key, value FROM search_stats").fetchall())
    return int(found.get("rows", 0)), int(found.get("tokens", 0)), _ints(found.get("lengths", b""), "I")


def _old_tokens(connection, paper_ids: list[int], expand: Callable[[str], str]) -> tuple[set[int], set[str]]:
    """The papers of ``paper_ids`` in the index, and every token they are listed under."""
    indexed, tokens = set(), set()
    for chunk in _chunks(paper_ids):
        for paper_id, blob in connection.exec_driver_sql(
                f"SELECT paper_id, tokens FROM search_tokens WHERE paper_id IN ({', '.join('?' * len(chunk))})",
                tuple(chunk)):
            indexed.add(paper_id)
            for column in unpack(blob):
                tokens.update(expand(column).split())
    return indexed, tokens


def _merge(np, stored: tuple[bytes, bytes] | None, removed, add_ids, add_keys):
    """A token's postings (numpy arrays) without ``removed`` (ascending ids) and with the added ones."""
    if stored:
        ids, keys = decode_numpy(np, *stored)
    else:
        ids, keys = np.zeros(0, np.int64), np.zeros(0, "<u2")
    if len(removed) and len(ids):
        keep = ~np.isin(ids, removed, assume_unique=True)
        if not keep.all():
            ids, keys = ids[keep], keys[keep]
    if len(add_ids):
        new_ids, new_keys = add_ids.astype(np.int64), add_keys
        if not len(ids) or new_ids[0] > ids[-1]:
            ids, keys = np.concatenate([ids, new_ids]), np.concatenate([keys, new_keys])
        else:               # none of them is there any more: each goes before the first greater id
            at = np.searchsorted(ids, new_ids)
            ids, keys = np.insert(ids, at, new_ids), np.insert(keys, at, new_keys)
    return ids, keys


def _sorted(np, token_numbers: array, paper_ids: array, paper_keys: array):
    """The flat arrays ``write`` fills, grouped by token with one stable sort (the papers stay
    ascending within each token): token numbers, ids, keys, and where each token's run starts."""
    numbers = np.frombuffer(token_numbers, dtype=np.int64)
    order = np.argsort(numbers, kind="stable")
    numbers = numbers[order]
    ids, keys = np.frombuffer(paper_ids, dtype=np.uint32)[order], np.frombuffer(paper_keys, dtype=np.uint16)[order]
    return numbers, ids, keys, np.flatnonzero(np.diff(numbers, prepend=-1))


def _grouped(np, number: dict[str, int], token_numbers: array, paper_ids: array, paper_keys: array) -> dict:
    """token -> (its papers' ids, their keys) from the flat arrays ``write`` fills."""
    if not token_numbers:
        return {}
    numbers, ids, keys, starts = _sorted(np, token_numbers, paper_ids, paper_keys)
    ends = np.append(starts[1:], len(numbers))
    token_of = {n: token for token, n in number.items()}
    return {token_of[int(numbers[a])]: (ids[a:b], keys[a:b]) for a, b in zip(starts.tolist(), ends.tolist())}


def _encoded(np, number: dict[str, int], token_numbers: array, paper_ids: array, paper_keys: array) -> list[tuple]:
    """``encode`` of every token's postings in the flat arrays, as ``search_posting`` rows sorted by
    token, computed for all tokens at once: a rebuild writes tens of thousands of tokens, most of
    them in a few papers, where numpy's per-call cost would be most of the work."""
    if not token_numbers:
        return []
    numbers, ids, keys, starts = _sorted(np, token_numbers, paper_ids, paper_keys)
    ids = ids.astype(np.int64)
    gaps = np.diff(ids, prepend=0)
    gaps[starts] = ids[starts]                      # each token's first id is its own gap from 0
    top = np.maximum.reduceat(gaps, starts)
    widths = np.where(top < 1 << 8, 1, np.where(top < 1 << 16, 2, 4)).tolist()
    narrow = (np.maximum.reduceat(keys & _MAX_F, starts) < 0x80).tolist()
    gap_bytes = {width: gaps.astype(f"<u{width}").tobytes() for width in set(widths)}
    key_bytes = {1: ((keys >> 8) & 0x80 | keys & 0x7F).astype(np.uint8).tobytes(), 2: keys.astype("<u2").tobytes()}
    prefix = {width: bytes([width]) for width in (1, 2, 4)}
    token_of = {n: token for token, n in number.items()}
    bounds = starts.tolist() + [len(numbers)]
    rows = []
    for i, (start, width, small) in enumerate(zip(bounds, widths, narrow)):
        end, kw = bounds[i + 1], 1 if small else 2
        rows.append((token_of[int(numbers[start])], end - start, prefix[width] + gap_bytes[width][start * width : end * width],
                     prefix[kw] + key_bytes[kw][start * kw : end * kw]))
    rows.sort()
    return rows


def write(connection, documents: dict[int, Sequence[str]], removed: Iterable[int],
          expand: Callable[[str], str], *, fresh: bool = False, prepared: dict[int, tuple] | None = None) -> None:
    """Take ``removed`` papers out of the index and put ``documents`` (paper id -> compact tokens by
    column) in, replacing what it held of them; ``connection``: an SQLAlchemy connection of the
    writing transaction. ``fresh``: the index is empty (a rebuild), so nothing is read back.
    ``prepared``: ``prepare``'s result for some of the documents, worked out already."""
    removed = set(removed) | set(documents)
    rows, total, lengths = (0, 0, array("I")) if fresh else _stats(connection)
    if not fresh and len(removed) > _REWRITE_FROM * max(1, rows):
        # Most papers change: every token would be rewritten anyway. The others' tokens are stored,
        # so the index is built again from them and the new documents, without reading it back.
        kept = {paper_id: unpack(blob) for paper_id, blob in connection.exec_driver_sql(
                "SELECT paper_id, tokens FROM search_tokens") if paper_id not in removed}
        for sql in ("DELETE FROM search_posting", "DELETE FROM search_tokens", "DELETE FROM search_stats"):
            connection.exec_driver_sql(sql)
        documents, removed, fresh = {**kept, **documents}, set(), True
        rows, total, lengths = 0, 0, array("I")
    indexed, touched = (set(), set()) if fresh else _old_tokens(connection, sorted(removed), expand)
    for paper_id in indexed:
        if paper_id < len(lengths):
            total -= lengths[paper_id]
            lengths[paper_id] = 0
    rows -= len(indexed)
    packed = []
    # Every (token, paper, key) in three flat arrays, filled in C (map, extend), then grouped by
    # token with one stable sort: the papers stay ascending within each token.
    number: dict[str, int] = {}
    numbering = count()
    token_numbers, paper_ids, paper_keys = array("q"), array("I"), array("H")
    prepared = prepared or {}
    for paper_id in sorted(documents):
        columns = documents[paper_id]
        tokens, keys, length, blob = prepared.get(paper_id) or prepare(columns, lambda column: expand(column).split())
        token_numbers.extend(map(number.setdefault, tokens.split(" ") if tokens else (), numbering))
        paper_ids.extend(repeat(paper_id, len(keys)))
        paper_keys.extend(keys)
        if paper_id >= len(lengths):
            lengths.extend([0] * (paper_id + 1 - len(lengths)))
        lengths[paper_id] = length
        total += length
        rows += 1
        packed.append((paper_id, blob))
    import numpy as np

    gone, replaced = [], []
    if fresh:
        replaced = _encoded(np, number, token_numbers, paper_ids, paper_keys)
    else:
        adds = _grouped(np, number, token_numbers, paper_ids, paper_keys)
        touched.update(adds)
        existing: dict[str, tuple[bytes, bytes]] = {}
        for chunk in _chunks(sorted(touched)):
            existing.update((token, (ids, keys)) for token, ids, keys in connection.exec_driver_sql(
                f"SELECT token, ids, keys FROM search_posting WHERE token IN ({', '.join('?' * len(chunk))})",
                tuple(chunk)))
        empty = (np.zeros(0, np.uint32), np.zeros(0, np.uint16))
        dropped = np.array(sorted(indexed), dtype=np.int64)
        for token in sorted(touched):
            stored = existing.get(token)
            ids, keys = _merge(np, stored, dropped, *adds.get(token, empty))
            if len(ids):
                replaced.append((token, len(ids), *encode(ids, keys)))
            elif stored:
                gone.append((token,))
    if gone:
        connection.exec_driver_sql("DELETE FROM search_posting WHERE token = ?", gone)
    if replaced:
        connection.exec_driver_sql("INSERT OR REPLACE INTO search_posting(token, papers, ids, keys) VALUES (?, ?, ?, ?)", replaced)
    if indexed:
        connection.exec_driver_sql("DELETE FROM search_tokens WHERE paper_id = ?", [(p,) for p in indexed])
    if packed:
        connection.exec_driver_sql("INSERT INTO search_tokens(paper_id, tokens) VALUES (?, ?)", packed)
    while lengths and not lengths[-1]:
        lengths.pop()
    connection.exec_driver_sql("INSERT OR REPLACE INTO search_stats(key, value) VALUES (?, ?)",
                               [("rows", rows), ("tokens", total), ("lengths", _blob(lengths))])


# -- querying -------------------------------------------------------------------------------


@dataclass
class Form:
    """One phrase of a query: its index tokens; ``prefix``: a one-token form matching every token
    that starts with it (a one-character Japanese word)."""

    tokens: tuple[str, ...]
    prefix: bool = False
    exact: bool = True                 # False: a phrase, whose F and head are bounds until checked
    ids: Any = None                    # ascending paper ids (array or numpy)
    f: Any = None                      # F per paper (the bound, for a phrase)
    head: Any = None                   # in title or abstract, per paper (the bound, for a phrase)
    idf: float = 0.0
    lookup: dict[int, int] = field(default_factory=dict)   # Python path: paper id -> position
    word: str = ""                     # a phrase of a Japanese word's bigrams: the word
    latin: bool = False                # a phrase of Latin words

    def __post_init__(self) -> None:
        tokens = self.tokens
        self.exact = self.prefix or len(tokens) == 1
        if len(tokens) < 2:
            return
        self.latin = all(token.isascii() for token in tokens)
        if all(len(t) == 2 and not t.isascii() for t in tokens) and all(a[1] == b[0] for a, b in zip(tokens, tokens[1:])):
            self.word = tokens[0] + "".join(token[1] for token in tokens[1:])


def _idf(rows: int, n: int) -> float:
    idf = math.log((rows - n + 0.5) / (n + 0.5))
    return idf if idf > 0 else 1e-6


def _load(rows_of: Callable, forms: list[Form]) -> tuple[dict[int, list[tuple[bytes, bytes]]], int]:
    """Each form's stored postings by ``id(form)``: its tokens' (none where one is missing), or for a
    prefix form every token's it starts; and how many postings they hold in all (each token once)."""
    wanted = sorted({token for form in forms if not form.prefix for token in form.tokens})
    found: dict[str, tuple[int, bytes, bytes]] = {}
    for chunk in _chunks(wanted):
        names = {f"t{i}": token for i, token in enumerate(chunk)}
        found.update((token, (papers, ids, keys)) for token, papers, ids, keys in rows_of(
            f"SELECT token, papers, ids, keys FROM search_posting WHERE token IN ({', '.join(':' + n for n in names)})",
            names))
    size = sum(papers for papers, _, _ in found.values())
    stored = {}
    for form in forms:
        if form.prefix:
            low = form.tokens[0]
            rows = rows_of("SELECT papers, ids, keys FROM search_posting WHERE token >= :low AND token < :high",
                           {"low": low, "high": low[:-1] + chr(ord(low[-1]) + 1)})
            size += sum(papers for papers, _, _ in rows)
        else:
            rows = [found[token] for token in form.tokens if token in found]
            rows = rows if len(rows) == len(form.tokens) else []
        stored[id(form)] = [(ids, keys) for _, ids, keys in rows]
    return stored, size


class _Python:
    """Arrays and dicts: the small catalog's path, without numpy's import."""

    @staticmethod
    def prepare(form: Form, stored: list[tuple[bytes, bytes]]) -> None:
        if not stored:
            form.ids, form.f, form.head = [], [], []
        elif form.prefix:
            f: dict[int, int] = {}
            head: dict[int, bool] = {}
            for ids_blob, keys_blob in stored:
                for paper_id, key in zip(*decode(ids_blob, keys_blob)):
                    f[paper_id] = f.get(paper_id, 0) + (key & _MAX_F)
                    head[paper_id] = head.get(paper_id, False) or key >= _HEAD
            form.ids = sorted(f)
            form.f, form.head = [f[i] for i in form.ids], [head[i] for i in form.ids]
        elif len(stored) == 1:
            form.ids, keys = decode(*stored[0])
            form.f, form.head = [k & _MAX_F for k in keys], [k >= _HEAD for k in keys]
        else:
            lists = [dict(zip(*decode(i, k))) for i, k in stored]
            common = sorted(set(lists[0]).intersection(*lists[1:])) if all(lists) else []
            form.ids = common
            form.f = [min(found[i] & _MAX_F for found in lists) for i in common]
            form.head = [all(found[i] >= _HEAD for found in lists) for i in common]
        form.lookup = {paper_id: at for at, paper_id in enumerate(form.ids)}

    @staticmethod
    def set(form: Form, ids: list[int], f: list[int], head: list[bool]) -> None:
        form.ids, form.f, form.head = ids, f, head
        form.lookup = {paper_id: at for at, paper_id in enumerate(ids)}

    @staticmethod
    def candidates(terms: list[list[Form]], norm_of: Callable[[int], float], limit: int | None):
        """The papers matching every term, with their bound (head, score) and whether they need checking,
        best first: all of them, or the best ``limit`` where none needs checking."""
        per_term = []
        for forms in terms:
            found: dict[int, list] = {}
            for form in forms:
                idf, check = form.idf, not form.exact
                for paper_id, f, head, norm in zip(form.ids, form.f, form.head, map(norm_of, form.ids)):
                    part = idf * (f * (K1 + 1.0)) / (f + norm)
                    known = found.get(paper_id)
                    if known is None:
                        found[paper_id] = [part, head, check]
                    else:
                        known[0] += part
                        known[1] = known[1] or head
                        known[2] = known[2] or check
            per_term.append(found)
        per_term.sort(key=len)
        matched = []
        for paper_id, (score, head, check) in per_term[0].items():
            for other in per_term[1:]:
                known = other.get(paper_id)
                if known is None:
                    break
                score += known[0]
                head = head and known[1]
                check = check or known[2]
            else:
                matched.append((paper_id, bool(head), score, check))

        def order(item):
            return -item[1], -item[2], item[0]
        if limit and not any(item[3] for item in matched):
            return heapq.nsmallest(limit, matched, key=order)
        matched.sort(key=order)
        return matched


def _score(paper_id: int, norm: float, terms: list[list[Form]],
           checked: dict[int, tuple[int, bool]] | None = None) -> tuple[bool, float, bool]:
    """One paper's (head, score, needs checking) from its forms' postings; ``checked``: the
    phrases' exact (F, head) by ``id(form)``, which replace their bounds."""
    score, head, check = 0.0, True, False
    for forms in terms:
        in_head = matched = False
        for form in forms:
            at = _at(form, paper_id)
            if at is None:
                continue
            if not form.exact and checked is not None:
                f, form_head = checked.get(id(form), (0, False))
            else:
                f, form_head = form.f[at], form.head[at]
                check |= not form.exact
            if not f:
                continue
            matched = True
            score += form.idf * (f * (K1 + 1.0)) / (f + norm)
            in_head |= bool(form_head)
        if not matched:
            return False, 0.0, False
        head &= in_head
    return head, score, check


def _at(form: Form, paper_id: int) -> int | None:
    """Where ``paper_id`` is in the form's postings, or None."""
    if form.lookup:
        return form.lookup.get(paper_id)
    ids = form.ids
    at = int(ids.searchsorted(paper_id)) if hasattr(ids, "searchsorted") else bisect_left(ids, paper_id)
    return at if at < len(ids) and ids[at] == paper_id else None


class _Numpy:
    """numpy arrays: the path of big posting lists."""

    def __init__(self) -> None:
        import numpy

        self.np = numpy

    def prepare(self, form: Form, stored: list[tuple[bytes, bytes]]) -> None:
        np = self.np
        arrays = [decode_numpy(np, i, k) for i, k in stored]
        if form.prefix and arrays:
            ids = np.concatenate([i for i, _ in arrays])
            keys = np.concatenate([k for _, k in arrays])
            form.ids, inverse = np.unique(ids, return_inverse=True)
            form.f = np.bincount(inverse, weights=keys & _MAX_F, minlength=len(form.ids))
            form.head = np.bincount(inverse, weights=keys >= _HEAD, minlength=len(form.ids)) > 0
        elif len(arrays) == 1:
            form.ids, keys = arrays[0]
            form.f, form.head = (keys & _MAX_F).astype(np.float64), keys >= _HEAD
        elif not arrays:
            form.ids, form.f, form.head = np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool)
        else:
            ids, keys = arrays[0]
            f, head = (keys & _MAX_F).astype(np.float64), keys >= _HEAD
            for other_ids, other_keys in arrays[1:]:
                ids, mine, theirs = np.intersect1d(ids, other_ids, assume_unique=True, return_indices=True)
                f = np.minimum(f[mine], other_keys[theirs] & _MAX_F)
                head = head[mine] & (other_keys[theirs] >= _HEAD)
            form.ids, form.f, form.head = ids, f, head

    def set(self, form: Form, ids: list[int], f: list[int], head: list[bool]) -> None:
        np = self.np
        form.ids, form.f, form.head = np.array(ids, np.int64), np.array(f, np.float64), np.array(head, bool)

    def candidates(self, terms: list[list[Form]], norms):
        np = self.np
        matched = None
        for forms in terms:
            ids = [form.ids for form in forms]
            parts = [(form.idf * (form.f * (K1 + 1.0)) / (form.f + norms(form.ids)), form.head,
                      np.full(len(form.ids), not form.exact)) for form in forms]
            if len(forms) == 1:
                union, (score, head, check) = ids[0], parts[0]
            else:
                union, inverse = np.unique(np.concatenate(ids), return_inverse=True)
                score = np.bincount(inverse, weights=np.concatenate([p[0] for p in parts]), minlength=len(union))
                head = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]), minlength=len(union)) > 0
                check = np.bincount(inverse, weights=np.concatenate([p[2] for p in parts]), minlength=len(union)) > 0
            if matched is None:
                matched = (union, score, head, check)
                continue
            both, mine, theirs = np.intersect1d(matched[0], union, assume_unique=True, return_indices=True)
            matched = (both, matched[1][mine] + score[theirs], matched[2][mine] & head[theirs],
                       matched[3][mine] | check[theirs])
        return matched

    def ordered(self, matched, limit: int | None):
        """The candidates by (head, score) descending, then id; all of them when some need checking."""
        np = self.np
        ids, score, head, check = matched
        key = head * 1e6 + score
        if limit and not check.any() and len(ids) > 4 * limit:
            kth = key[np.argpartition(-key, limit - 1)[:limit]].min()
            keep = np.nonzero(key >= kth)[0]
            ids, score, head, check, key = ids[keep], score[keep], head[keep], check[keep], key[keep]
        order = np.lexsort((ids, -key))
        return _Ordered(ids[order], head[order], score[order], check[order])


class _Ordered:
    """Ordered candidates as ``(id, head, score, check)`` tuples of Python values, made from the numpy
    columns as ``_top`` reads them: it reads a few batches of thousands (a phrase's candidates)."""

    def __init__(self, *columns) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return len(self.columns[0])

    def __getitem__(self, at):
        if isinstance(at, slice):
            return list(zip(*(column[at].tolist() for column in self.columns)))
        return tuple(column[at].item() for column in self.columns)


def count_phrase(tokens: list[str], phrase: tuple[str, ...]) -> int:
    """How many times ``phrase`` occurs in ``tokens`` (each start position once, as FTS5 counts)."""
    n, first, found, at = len(phrase), phrase[0], 0, -1
    wanted = list(phrase)
    while True:
        try:
            at = tokens.index(first, at + 1)
        except ValueError:
            return found
        if n == 1 or tokens[at : at + n] == wanted:
            found += 1


def ranked(rows_of: Callable[[str, dict], list], terms: list[list[tuple[tuple[str, ...], bool]]], limit: int | None,
           expand: Callable[[str], str], *, use_numpy: bool | None = None) -> list[tuple[int, float]]:
    """Paper ids and BM25 scores of the papers matching every term (any of its forms, each a
    (tokens, prefix) phrase), those whose title or abstract holds every term first, then by score,
    then by id; at most ``limit``. ``rows_of(sql, params)`` runs a query with named parameters
    (an ``sqlite3`` connection's, or an SQLAlchemy session's); ``expand``: ``kb.search.expand``.
    ``use_numpy``: force a path (None: numpy for big posting lists)."""
    query = [[Form(tuple(tokens), prefix and len(tokens) == 1) for tokens, prefix in forms if tokens]
             for forms in terms]
    if not query or not all(query):
        return []
    forms = [form for term in query for form in term]
    stats = dict(rows_of("SELECT key, value FROM search_stats", {}))
    rows, total = int(stats.get("rows", 0)), int(stats.get("tokens", 0))
    if not rows:
        return []
    stored, size = _load(rows_of, forms)
    global _scored_in_python
    loaded = "numpy" in sys.modules or _scored_in_python >= _NUMPY_IMPORT_FROM
    numpy = (size >= (_NUMPY_FROM if loaded else _NUMPY_IMPORT_FROM)) if use_numpy is None else use_numpy
    if not numpy and size >= _NUMPY_FROM:
        _scored_in_python += size
    path: Any = _Numpy() if numpy else _Python()
    for form in forms:
        path.prepare(form, stored[id(form)])
        if not form.exact and len(form.ids) <= _CHECK_ALL:
            _check_all(rows_of, form, path, expand)
        form.idf = _idf(rows, len(form.ids))
    avgdl = total / rows
    lengths_blob = stats.get("lengths", b"")
    if numpy:
        np = path.np
        lengths = np.frombuffer(lengths_blob, dtype="<u4")

        def norms(ids):
            return K1 * (1 - B + B * lengths[ids] / avgdl)
        matched = path.candidates(query, norms)
        if matched is None or not len(matched[0]):
            return []
        for form in forms:
            form.lookup = {}
        candidates = path.ordered(matched, limit)

        def norm_of(paper_id: int) -> float:
            return float(norms(paper_id))
    else:
        lengths = _ints(lengths_blob, "I")

        def norm_of(paper_id: int) -> float:
            return K1 * (1 - B + B * (lengths[paper_id] if paper_id < len(lengths) else 0) / avgdl)
        candidates = path.candidates(query, norm_of, limit)
    return _top(rows_of, candidates, query, limit, norm_of, expand)


def _top(rows_of, candidates: list[tuple[int, bool, float, bool]], terms: list[list[Form]], limit: int | None,
         norm_of: Callable[[int], float], expand: Callable[[str], str]) -> list[tuple[int, float]]:
    """The best ``limit`` candidates, checking the phrases of those that have one, in the order of
    their bounds, until the next bound cannot beat the ``limit``-th exact result."""
    phrases = [form for term in terms for form in term if not form.exact]
    best: list[tuple[bool, float, int]] = []          # a min-heap of (head, score, -id)
    at = 0
    while at < len(candidates):
        if limit and len(best) >= limit:
            paper_id, head, score, _check = candidates[at]
            if (head, score, -paper_id) <= best[0]:
                break
        # The first batch as many as are wanted: where the bounds are the scores, the last to check.
        batch = candidates[at : at + ((_CHECK_BATCH if best else limit) if limit else 500)]
        at += len(batch)
        stored = _stored_tokens(rows_of, [c[0] for c in batch if c[3]])
        for paper_id, head, score, check in batch:
            if check:
                counts = {id(form): _phrase_counts(stored[paper_id], form, expand)
                          for form in phrases if _at(form, paper_id) is not None}
                head, score, _ = _score(paper_id, norm_of(paper_id), terms, checked=counts)
                if not score:
                    continue
            item = (head, score, -paper_id)
            if not limit or len(best) < limit:
                heapq.heappush(best, item)
            elif item > best[0]:
                heapq.heapreplace(best, item)
    best.sort(reverse=True)
    return [(-negative, score) for _head, score, negative in best]


def _overlapping(text: str, needle: str) -> int:
    found, at = 0, text.find(needle)
    while at >= 0:
        found, at = found + 1, text.find(needle, at + 1)
    return found


def _column_count(column: str, form: Form, expand: Callable[[str], str]) -> int:
    """How many times a phrase occurs in one column's compact tokens (as its index tokens).

    Without expanding the column where that cannot differ: a Latin phrase's tokens are the compact
    ones; a Japanese word's bigrams are consecutive within a run where the run holds the word, and
    across two runs only where one ends with a bigram of it and the next starts with the following one.
    """
    if not all(token in column for token in form.tokens):
        return 0
    if form.word:
        word = form.word
        if not any(f"{word[i : i + 2]} {word[i + 1 : i + 3]}" in column for i in range(len(word) - 2)):
            return _overlapping(column, word)
    elif form.latin:
        return _overlapping(f" {column} ", f" {' '.join(form.tokens)} ")
    return count_phrase(expand(column).split(), form.tokens)


def _phrase_counts(columns: list[str], form: Form, expand: Callable[[str], str]) -> tuple[int, bool]:
    """A phrase's F and head in one paper's compact tokens by column."""
    each = [_column_count(column, form, expand) for column in columns]
    return sum(w * n for w, n in zip(WEIGHTS, each)), any(each[c] for c in _HEAD_COLUMNS)


def _check_all(rows_of, form: Form, path, expand: Callable[[str], str]) -> None:
    """Check a phrase's few candidates now: its postings and ``n`` are then exact."""
    stored = _stored_tokens(rows_of, [int(i) for i in form.ids])
    found = [(paper_id, *_phrase_counts(stored[paper_id], form, expand)) for paper_id in sorted(stored)]
    found = [item for item in found if item[1]]
    path.set(form, [i for i, _, _ in found], [f for _, f, _ in found], [h for _, _, h in found])
    form.exact = True


def _stored_tokens(rows_of, paper_ids: list[int]) -> dict[int, list[str]]:
    found = {}
    for chunk in _chunks(paper_ids):
        names = {f"p{i}": paper_id for i, paper_id in enumerate(chunk)}
        found.update((paper_id, unpack(blob)) for paper_id, blob in rows_of(
            f"SELECT paper_id, tokens FROM search_tokens WHERE paper_id IN ({', '.join(':' + n for n in names)})",
            names))
    return found
