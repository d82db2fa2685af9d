"""The site's search index, for kb's search worker (docs/assets/kb/search-worker.js).

Material's stock search (lunr) cannot find Japanese words: it has no segmenter that matches how
people type a query. kb keeps Material's search box and replaces the worker behind it. The worker
splits text and queries into the same tokens as ``kb search`` (CJK runs into overlapping bigrams,
Latin words whole), NFKC-normalized as kb/search.py does, so the site finds what ``kb search``
finds. English word forms come from ``kb.search.stem`` too: the index lists the words of the corpus
that share a stem (detect, detection, detector), and the worker widens a query word to its family.

The index is inverted and loaded in parts, so a query reads a few small files whatever the
catalog's size (the text of 10,000 papers with notes is tens of MB):

- ``meta.js``: the number of documents, how the other parts are cut, the Latin prefixes present;
- ``d<n>.js``: documents ``n*DOCS_PER_PART ...``: location, title and a short excerpt;
- ``l-<prefix>.js``: the Latin words starting with a two-character prefix, their postings and
  their word families (so a one-letter query reads only the parts of its letter);
- ``c<n>.js``: CJK tokens hashed into parts: bigrams (and single characters standing alone) to find
  a word, trigrams to check that a longer word is contiguous (``鳥瞰図`` is one trigram), and ``c*``,
  the pages where ``c`` starts a bigram, for a one-character query (a prefix, as in ``kb search``);
- ``glossary.js``: the bilingual glossary's concepts (kb/glossary.py), each a list of names, with
  which the worker expands a query as ``kb search`` does (物体検出 also asks for object detection).

A posting list is ``[doc, counts, doc, counts, ...]`` with each doc as the gap from the previous
one and ``counts = min(in text, 31) + 32 * min(in title, 7)``. Every part is a script calling
``kbSearchPart(name, data)``: the worker reads it with ``importScripts``, and a page opened from
disk (file://, where workers and fetch are blocked) with a script tag, so search works there too.
Material still loads ``search/search_index.json`` (``.js`` from disk): stubs with no documents.

A rebuild does not build the index again: ``updated_index`` takes the last build's (``IndexState``) and
rewrites only the parts holding a token whose posting a changed document changes, and the families of
words that joined or left the corpus; every dictionary is written with sorted keys, so the result is
byte for byte what ``index_state`` builds from nothing (tests/test_site_rebuild.py).
"""

import hashlib
import json
import marshal
import operator
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from kb.search import stem
from kb.site.paths import listing, paper_page, runner_folder
from kb.site.snapshot import PaperView, RunnerView, Snapshot

FOLDER = "search/kb"
INDEX = f"{FOLDER}/meta.js"
STUB = "search/search_index.json"
STUB_SCRIPT = "search/search_index.js"      # what Material loads instead from file://
DOCS_PER_PART = 200
CJK_PART_BYTES = 150_000                    # about this much per CJK part: the part count grows with the corpus
EXCERPT = 240                               # characters of a document shown under a result
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc"
_CJK_RUN = re.compile(f"[{_CJK}]+")            # with _LATIN_RUN: the runs of the worker's RUN
_LATIN_RUN = re.compile("[a-z0-9]+")
# Not !?\[: a pattern that starts with an optional character is tried at every character of the text.
_LINK = re.compile(r"(?:!\[|\[)([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_BLOCK_MARKS = re.compile(r"^ {0,3}(?:#{1,6}|[-*+>]|\d+[.)])\s+", re.MULTILINE)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_INLINE_MARKS = "*`|~"                          # each replaced by str.replace: a character class scans ~20x slower
_WORD = re.compile(r"[a-z0-9]*[a-z][a-z0-9]*")       # Latin tokens as the worker splits them; not bare numbers


def url_of(page: str) -> str:
    """The URL of a generated page relative to the site root (MkDocs' directory URLs)."""
    stem = page.removesuffix(".md")
    return "" if stem == "index" else stem.removesuffix("/index") + "/"


def plain(markdown: str) -> str:
    """Markdown as searchable, displayable text: link targets, URLs and markup dropped."""
    value = _TAG.sub(" ", _BLOCK_MARKS.sub("", _URL.sub(" ", _LINK.sub(r"\1", markdown))))
    for mark in _INLINE_MARKS:
        value = value.replace(mark, " ")
    return " ".join(value.split())


def _normalized(parts: list[str]) -> str:
    return unicodedata.normalize("NFKC", " ".join(p for p in parts if p))


def _paper_document(paper: PaperView) -> dict[str, str]:
    notes = [f"{note.title or ''} {plain(note.body)}" for note in paper.notes]
    parts = [", ".join(paper.authors), str(paper.year or ""), paper.venue or "", paper.key, " ".join(paper.tags),
             " ".join(paper.other_titles), paper.summary, paper.abstract, *notes]
    excerpt = _normalized([paper.summary or paper.abstract or (notes[0] if notes else "")])
    return {"location": url_of(paper_page(paper.slug)), "title": _normalized([paper.title]), "text": _normalized(parts),
            "excerpt": excerpt}


def _runner_document(runner: RunnerView, titles: dict[str, str]) -> dict[str, str]:
    parts = [runner.summary, titles.get(runner.paper, runner.paper), " ".join(runner.datasets), " ".join(runner.presets)]
    return {"location": url_of(listing(runner_folder(runner.name))), "title": _normalized([f"Runner {runner.name}"]),
            "text": _normalized(parts), "excerpt": _normalized([runner.summary])}


def documents(snapshot: Snapshot) -> list[dict[str, str]]:
    """One searchable document per paper page and per runner page."""
    titles = {paper.key: paper.title for paper in snapshot.papers}
    return [_paper_document(p) for p in snapshot.papers] + [_runner_document(r, titles) for r in snapshot.runners]


def word_families(docs: list[dict[str, str]]) -> list[list[str]]:
    """The Latin words of the documents grouped by their ``kb.search.stem``, groups of two or more."""
    return _stem_families({word: stem(word) for word in {word for doc in docs for word in _words(doc)}})


def _words(doc: dict[str, str]) -> set[str]:
    return set(_WORD.findall(f"{doc['title']} {doc['text']}".lower()))


def _stem_families(stems: dict[str, str]) -> list[list[str]]:
    """Words grouped by their stem (``stems``: word -> stem), groups of two or more."""
    by_stem: dict[str, list[str]] = {}
    for word, word_stem in stems.items():
        by_stem.setdefault(word_stem, []).append(word)
    return sorted(sorted(group) for group in by_stem.values() if len(group) > 1)


def _is_cjk(token: str) -> bool:
    return token[0] not in "abcdefghijklmnopqrstuvwxyz0123456789"


def tokens(text: str) -> list[str]:
    """The index tokens of normalized text, as the worker looks them up: Latin words; for each CJK run
    its bigrams and trigrams, or the character itself when it stands alone, and ``c*`` for each
    character ``c`` that starts a bigram or stands alone (what a one-character query finds). Latin words
    come first, then each CJK run's tokens (the worker's ``RUN`` splits text into the same runs)."""
    lower = text.lower()
    found = _LATIN_RUN.findall(lower)
    for run in _CJK_RUN.findall(lower):
        if len(run) == 1:
            found += (run, run + "*")
        else:
            # map(add, ...): the n-grams joined without a Python step each (most of a cold index's time).
            bigrams = list(map(operator.add, run, run[1:]))
            found += bigrams
            found += map(operator.add, bigrams, run[2:])
            found += map(operator.add, run[:-1], repeat("*"))
    return found


def cjk_part(token: str, parts: int) -> int:
    """The CJK part holding ``token``: a 31-multiplier hash of its UTF-16 code units (the worker's
    ``cjkPart``), so parts stay even in size whatever characters the corpus favours."""
    value = 0
    units = token.encode("utf-16-le")
    for i in range(0, len(units), 2):
        value = (value * 31 + int.from_bytes(units[i : i + 2], "little")) & 0xFFFFFFFF
    return value % parts


def _script(name: str, data: Any) -> bytes:
    # Keys sorted: a part's bytes depend on its data only, not on the order a build met its tokens in,
    # so a part updated in place (``updated_index``) is byte for byte the one a full build writes.
    return (f"kbSearchPart({json.dumps(name)},"
            f"{json.dumps(data, ensure_ascii=False, separators=(',', ':'), sort_keys=True)})\n").encode()


def _data(script: bytes) -> Any:
    """The data of a part written by ``_script`` (its name holds no comma)."""
    text = script.decode()
    return json.loads(text[text.index(",") + 1 : -2])


def _postings(flat: list[int], in_title: dict[int, int]) -> list[int]:
    """``[doc, count in text, ...]`` (docs ascending) and ``{doc: count in title}``, both capped already (``_Stats``),
    as a posting list (see the module docstring). Most tokens are in no title: their lists are recoded with
    no per-entry work but the gaps."""
    if in_title:
        merged = dict(zip(flat[0::2], flat[1::2]))
        merged.update({doc: merged.get(doc, 0) for doc in in_title})
        docs = sorted(merged)
        codes = [merged[doc] + 32 * in_title.get(doc, 0) for doc in docs]
    else:
        docs, codes = flat[0::2], flat[1::2]
    return _encoded(docs, codes)


def _encoded(docs: list[int], codes: list[int]) -> list[int]:
    """Ascending ``docs`` and their codes as a posting list: each doc as the gap from the previous one."""
    out = [0] * (2 * len(docs))
    if docs:
        out[0::2] = [docs[0], *map(operator.sub, docs[1:], docs)]     # map: the gaps without a Python step each
        out[1::2] = codes
    return out


def _decoded(posting: list[int]) -> dict[int, int]:
    """A posting list as ``{doc: code}``."""
    docs, doc = {}, 0
    for gap, code in zip(posting[0::2], posting[1::2]):
        doc += gap
        docs[doc] = code
    return docs


# A document's tokens: counts in its text (capped at 31) and title (capped at 7), as the posting lists store
# them, and its Latin words (for ``word_families``).
_Stats = tuple[dict[str, int], dict[str, int], set[str]]


def tokens_version() -> str:
    """What a document's cached ``_Stats`` (and an ``IndexState``) depend on besides its text: kb's version and
    the code of the tokenizer and the stemmer (this module and kb/search.py); a cache made under another is
    not reused."""
    import kb
    import kb.search

    digest = hashlib.sha1(kb.__version__.encode())
    for module in (__file__, kb.search.__file__):
        with open(module, "rb") as source:
            digest.update(source.read())
    return digest.hexdigest()


def _stats(doc: dict[str, str]) -> _Stats:
    return ({token: count if count < 31 else 31 for token, count in Counter(tokens(doc["text"])).items()},
            {token: count if count < 7 else 7 for token, count in Counter(tokens(doc["title"])).items()}, _words(doc))


def _doc_key(doc: dict[str, str]) -> str:
    return hashlib.sha1(f"{doc['title']}\0{doc['text']}".encode()).hexdigest()


# The token cache: each document's ``_Stats`` by ``_doc_key``, marshalled on its own as the cache file holds it
# (``packed``), so a rebuild that reads the file decodes only the documents it needs; or as ``_Stats``.
Tokens = dict[str, bytes | _Stats]


def _stats_of(value: bytes | _Stats) -> _Stats:
    return marshal.loads(value) if isinstance(value, bytes) else value


def packed(cache: Tokens) -> dict[str, bytes]:
    """``cache`` as the cache file holds it: each document's tokens marshalled."""
    return {key: value if isinstance(value, bytes) else marshal.dumps(value) for key, value in cache.items()}


def _refresh(docs: list[dict[str, str]], keys: list[str], cache: Tokens) -> None:
    """Leave ``cache`` holding exactly the current documents' tokens (nothing of a changed or removed one
    stays), tokenizing only the documents it lacks."""
    kept = {key: cache.get(key) or _stats(doc) for key, doc in zip(keys, docs)}
    cache.clear()
    cache.update(kept)


def _all_stats(docs: list[dict[str, str]], keys: list[str], cache: Tokens | None) -> list[_Stats]:
    """Each document's ``_Stats``, tokenizing only those ``cache`` lacks (``_refresh``)."""
    if cache is None:
        return [_stats(doc) for doc in docs]
    _refresh(docs, keys, cache)
    return [_stats_of(cache[key]) for key in keys]


def _cjk_parts(size: int) -> int:
    """How many CJK parts for postings of ``size`` (about ``CJK_PART_BYTES`` each, a power of two)."""
    return 1 << max(0, (size // CJK_PART_BYTES).bit_length())


def _cjk_size(token: str, posting: list[int]) -> int:
    return len(token) + 4 * len(posting)


def _part_of(token: str, cjk_parts: int) -> str:
    """The path of the part that holds ``token``."""
    return f"{FOLDER}/c{cjk_part(token, cjk_parts)}.js" if _is_cjk(token) else f"{FOLDER}/l-{token[:2]}.js"


def _is_cjk_part(path: str) -> bool:
    return path.startswith(f"{FOLDER}/c")


def _fixed_files(docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...], cjk_parts: int,
                 latin: list[str]) -> dict[str, bytes]:
    """The files made from the documents' list, not their tokens: the stubs, ``meta``, the glossary and the
    document parts."""
    stub: dict[str, Any] = {"config": {"lang": ["ja", "en"], "separator": r"[\s\-]+", "pipeline": [], "fields": {}},
                            "docs": []}
    files = {STUB: json.dumps(stub).encode(), STUB_SCRIPT: f"var __index = {json.dumps(stub)}\n".encode()}
    meta = {"version": 2, "docs": len(docs), "docs_per_part": DOCS_PER_PART, "cjk_parts": cjk_parts,
            "latin": sorted(latin)}
    files[INDEX] = _script("meta", meta)
    files[f"{FOLDER}/glossary.js"] = _script("glossary", [list(names) for names in glossary])
    for start in range(0, len(docs), DOCS_PER_PART):
        rows = [[d["location"], d["title"], d["excerpt"][:EXCERPT]] for d in docs[start : start + DOCS_PER_PART]]
        files[f"{FOLDER}/d{start // DOCS_PER_PART}.js"] = _script(f"d{start // DOCS_PER_PART}", rows)
    return files


@dataclass
class IndexState:
    """The index a build wrote and what it was made from, so that the next build updates only the parts
    holding changed documents (``updated_index``) instead of building all of them again."""

    keys: list[str]              # each document's ``_doc_key``, in the order of their numbers
    stems: dict[str, str]        # each Latin word of the corpus -> its ``kb.search.stem``
    cjk_size: int                # the CJK postings' size, which the CJK part count follows (``_cjk_parts``)
    files: dict[str, bytes]      # every file of the index, by path relative to the site root

    def dump(self) -> tuple:
        """As plain values, for ``kb.cache``."""
        return self.keys, self.stems, self.cjk_size, self.files

    @classmethod
    def load(cls, value: Any) -> "IndexState | None":
        """The state ``dump`` made, or None for anything else."""
        try:
            keys, stems, size, files = value
        except (TypeError, ValueError):
            return None
        return cls(keys, stems, size, files)


def index_state(docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...] = (), *,
                cache: Tokens | None = None) -> IndexState:
    """The whole index for ``documents``' docs (its files: ``IndexState.files``); ``glossary``
    (kb.glossary's concepts) ships as ``glossary.js`` for the worker to expand queries as ``kb search`` does.

    ``cache``: documents' tokens from an earlier build (``_all_stats``; valid under one ``tokens_version``),
    so a rebuild after one edit tokenizes one document, not all of them (most of this function's time)."""
    in_text: dict[str, list[int]] = {}
    in_title: dict[str, dict[int, int]] = {}
    keys = [_doc_key(doc) for doc in docs]
    stats = _all_stats(docs, keys, cache)
    for number, (text_counts, title_counts, _) in enumerate(stats):
        for token, count in text_counts.items():
            found = in_text.get(token)
            if found is None:
                in_text[token] = [number, count]
            else:
                found += (number, count)
        for token, count in title_counts.items():
            in_title.setdefault(token, {})[number] = count
            in_text.setdefault(token, [])
    latin: dict[str, dict[str, Any]] = {}
    cjk = {}
    for token, flat in in_text.items():
        coded = _postings(flat, in_title.get(token, {}))
        if _is_cjk(token):
            cjk[token] = coded
        else:
            latin.setdefault(token[:2], {"words": {}, "families": {}})["words"][token] = coded
    stems = {word: stem(word) for word in {word for _, _, words in stats for word in words}}
    for family in _stem_families(stems):
        for word in family:
            latin[word[:2]]["families"][word] = family
    size = sum(_cjk_size(token, flat) for token, flat in cjk.items())
    parts = _cjk_parts(size)
    cut: list[dict[str, list[int]]] = [{} for _ in range(parts)]
    for token, flat in cjk.items():
        cut[cjk_part(token, parts)][token] = flat
    files = _fixed_files(docs, glossary, parts, list(latin))
    for prefix, part in latin.items():
        files[f"{FOLDER}/l-{prefix}.js"] = _script(f"l-{prefix}", part)
    for number, part in enumerate(cut):
        files[f"{FOLDER}/c{number}.js"] = _script(f"c{number}", part)
    return IndexState(keys, stems, size, files)


def index_parts(docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...] = (), *,
                cache: Tokens | None = None) -> dict[str, bytes]:
    """The files the search needs for ``documents``' docs, by path relative to the site root (``index_state``)."""
    return index_state(docs, glossary, cache=cache).files


CHANGED_SHARE = 0.1         # more of the documents changed than this: the whole index is built again


def updated_index(state: IndexState, docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...] = (), *,
                  cache: Tokens) -> IndexState | None:
    """The index ``index_state`` would build, made from ``state`` (the last build's) by updating only the
    parts that hold tokens of the documents that changed since; None where it takes the whole build: the
    number of documents changed (every number after an inserted one moves), many of them did, the CJK part
    count changes, or ``cache`` lacks a changed document's earlier tokens.

    ``cache``: as ``index_state``'s; it must hold the tokens of ``state``'s documents."""
    keys = [_doc_key(doc) for doc in docs]
    changed = [n for n, (old, new) in enumerate(zip(state.keys, keys)) if old != new]
    if len(keys) != len(state.keys) or len(changed) > CHANGED_SHARE * len(keys):
        return None
    if any(state.keys[n] not in cache for n in changed):
        return None
    before = [_stats_of(cache[state.keys[n]]) for n in changed]
    _refresh(docs, keys, cache)
    after = [_stats_of(cache[keys[n]]) for n in changed]
    # The new code of each (token, document) pair whose code changed: 0 where the token left the document.
    codes: dict[str, dict[int, int]] = {}
    for number, (old_text, old_title, _), (text_counts, title_counts, _) in zip(changed, before, after):
        for token in {*old_text, *old_title, *text_counts, *title_counts}:
            code = text_counts.get(token, 0) + 32 * title_counts.get(token, 0)
            if code != old_text.get(token, 0) + 32 * old_title.get(token, 0):
                codes.setdefault(token, {})[number] = code
    parts = _cjk_parts(state.cjk_size)
    data: dict[str, Any] = {}            # the parts updated, by path

    def part(path: str) -> Any:
        if path not in data:
            data[path] = _data(state.files[path]) if path in state.files else {"words": {}, "families": {}}
        return data[path]

    size = state.cjk_size
    for token, updates in codes.items():
        path = _part_of(token, parts)
        postings = part(path) if _is_cjk(token) else part(path)["words"]
        old = postings.pop(token, [])
        merged = _decoded(old)
        merged.update(updates)
        docs_of = sorted(doc for doc, code in merged.items() if code)
        posting = _encoded(docs_of, [merged[doc] for doc in docs_of])
        if posting:
            postings[token] = posting
        if _is_cjk(token):
            size += (_cjk_size(token, posting) if posting else 0) - (_cjk_size(token, old) if old else 0)
    if _cjk_parts(size) != parts:
        return None
    # Words that joined or left the corpus change their stem's family, in the part of each of its words.
    stems = dict(state.stems)
    touched: set[str] = set()
    for (_, _, old_words), (_, _, words) in zip(before, after):
        for word in words - stems.keys():
            stems[word] = stem(word)
            touched.add(stems[word])
        for word in old_words - words:
            if word in stems and word not in part(_part_of(word, parts))["words"]:
                touched.add(stems.pop(word))
    members: dict[str, list[str]] = {}
    for word, word_stem in stems.items():
        if word_stem in touched:
            members.setdefault(word_stem, []).append(word)
    for word, word_stem in state.stems.items():
        if word_stem in touched and word not in stems:          # left the corpus, and its part with it
            part(_part_of(word, parts))["families"].pop(word, None)
    for word_stem in touched:
        family = sorted(members.get(word_stem, []))
        for word in family:
            families = part(_part_of(word, parts))["families"]
            if len(family) > 1:
                families[word] = family
            else:
                families.pop(word, None)
    files = dict(state.files)
    for path, content in data.items():
        if _is_cjk_part(path) or content["words"]:
            files[path] = _script(path.removeprefix(f"{FOLDER}/").removesuffix(".js"), content)
        else:
            files.pop(path, None)           # a Latin prefix none of the words has any more
    latin = [path.removeprefix(f"{FOLDER}/l-").removesuffix(".js") for path in files if path.startswith(f"{FOLDER}/l-")]
    files.update(_fixed_files(docs, glossary, parts, latin))
    return IndexState(keys, stems, size, files)
