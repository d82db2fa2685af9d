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
"""

import hashlib
import json
import re
import unicodedata
from collections import Counter
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
_RUN = re.compile(f"[{_CJK}]+|[a-z0-9]+")     # the worker's RUN
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_BLOCK_MARKS = re.compile(r"^ {0,3}(?:#{1,6}|[-*+>]|\d+[.)])\s+", re.MULTILINE)
_INLINE_MARKS = re.compile(r"[*`|~]+|</?[a-zA-Z][^>]*>")
_WORD = re.compile(r"[a-z0-9]*[a-z][a-z0-9]*")       # Latin tokens as the worker splits them; not bare numbers


def url_of(page: str) -> str:
    """The URL of a generated page relative to the site root (MkDocs' directory URLs)."""
    stem = page.removesuffix(".md")
    return "" if stem == "index" else stem.removesuffix("/index") + "/"


def plain(markdown: str) -> str:
    """Markdown as searchable, displayable text: link targets, URLs and markup dropped."""
    value = _BLOCK_MARKS.sub("", _URL.sub(" ", _LINK.sub(r"\1", markdown)))
    return " ".join(_INLINE_MARKS.sub(" ", value).split())


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
    return _families({word for doc in docs for word in _words(doc)})


def _words(doc: dict[str, str]) -> set[str]:
    return set(_WORD.findall(f"{doc['title']} {doc['text']}".lower()))


def _families(words: set[str]) -> list[list[str]]:
    by_stem: dict[str, set[str]] = {}
    for word in words:      # each word stemmed once, however many documents hold it
        by_stem.setdefault(stem(word), set()).add(word)
    return sorted(sorted(group) for group in by_stem.values() if len(group) > 1)


def _is_cjk(token: str) -> bool:
    return token[0] not in "abcdefghijklmnopqrstuvwxyz0123456789"


def tokens(text: str) -> list[str]:
    """The index tokens of normalized text, as the worker looks them up: Latin words; for each CJK run
    its bigrams and trigrams, or the character itself when it stands alone, and ``c*`` for each
    character ``c`` that starts a bigram or stands alone (what a one-character query finds)."""
    found = []
    for run in _RUN.findall(text.lower()):
        if not _is_cjk(run):
            found.append(run)
        elif len(run) == 1:
            found += [run, run + "*"]
        else:
            found += [run[i : i + 2] for i in range(len(run) - 1)] + [run[i : i + 3] for i in range(len(run) - 2)]
            found += [run[i] + "*" for i in range(len(run) - 1)]
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
    return f"kbSearchPart({json.dumps(name)},{json.dumps(data, ensure_ascii=False, separators=(',', ':'))})\n".encode()


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
    out = [0] * (2 * len(docs))
    out[0::2] = [docs[0], *(b - a for a, b in zip(docs, docs[1:]))]
    out[1::2] = codes
    return out


def index_digest(docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...]) -> str:
    """What ``index_parts`` is made from, as a digest: a rebuild with the same one rewrites nothing."""
    return hashlib.sha1(json.dumps([INDEX, docs, glossary], ensure_ascii=False).encode()).hexdigest()


# A document's tokens: counts in its text (capped at 31) and title (capped at 7), as the posting lists store
# them, and its Latin words (for ``word_families``).
_Stats = tuple[dict[str, int], dict[str, int], set[str]]


def tokens_version() -> str:
    """What a document's cached ``_Stats`` depend on besides its text: kb's version and the code of the
    tokenizer and the stemmer (this module and kb/search.py); a cache made under another is not reused."""
    import kb
    import kb.search

    digest = hashlib.sha1(kb.__version__.encode())
    for module in (__file__, kb.search.__file__):
        with open(module, "rb") as source:
            digest.update(source.read())
    return digest.hexdigest()


def _stats(doc: dict[str, str]) -> _Stats:
    return ({token: min(count, 31) for token, count in Counter(tokens(doc["text"])).items()},
            {token: min(count, 7) for token, count in Counter(tokens(doc["title"])).items()}, _words(doc))


def _doc_key(doc: dict[str, str]) -> str:
    return hashlib.sha1(f"{doc['title']}\0{doc['text']}".encode()).hexdigest()


def _all_stats(docs: list[dict[str, str]], cache: dict[str, _Stats] | None) -> list[_Stats]:
    """Each document's ``_Stats``, tokenizing only those ``cache`` lacks; ``cache`` is left holding
    exactly the current documents' (nothing of a changed or removed one stays)."""
    if cache is None:
        return [_stats(doc) for doc in docs]
    keys = [_doc_key(doc) for doc in docs]
    found = [cache.get(key) or _stats(doc) for key, doc in zip(keys, docs)]
    cache.clear()
    cache.update(zip(keys, found))
    return found


def index_parts(docs: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...] = (), *,
                cache: dict[str, _Stats] | None = None) -> dict[str, bytes]:
    """The files the search needs for ``documents``' docs, by path relative to the site root; ``glossary``
    (kb.glossary's concepts) ships as ``glossary.js`` for the worker to expand queries as ``kb search`` does.

    ``cache``: documents' tokens from an earlier build (``_all_stats``; valid under one ``tokens_version``),
    so a rebuild after one edit tokenizes one document, not all of them (most of this function's time)."""
    stub: dict[str, Any] = {"config": {"lang": ["ja", "en"], "separator": r"[\s\-]+", "pipeline": [], "fields": {}},
                            "docs": []}
    in_text: dict[str, list[int]] = {}
    in_title: dict[str, dict[int, int]] = {}
    stats = _all_stats(docs, cache)
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
    for family in _families({word for _, _, words in stats for word in words}):
        for word in family:
            latin[word[:2]]["families"][word] = family
    size = sum(len(token) + 4 * len(flat) for token, flat in cjk.items())
    parts = 1 << max(0, (size // CJK_PART_BYTES).bit_length())
    cut: list[dict[str, list[int]]] = [{} for _ in range(parts)]
    for token, flat in cjk.items():
        cut[cjk_part(token, parts)][token] = flat
    files = {STUB: json.dumps(stub).encode(), STUB_SCRIPT: f"var __index = {json.dumps(stub)}\n".encode()}
    meta = {"version": 2, "docs": len(docs), "docs_per_part": DOCS_PER_PART, "cjk_parts": parts, "latin": sorted(latin)}
    files[INDEX] = _script("meta", meta)
    files[f"{FOLDER}/glossary.js"] = _script("glossary", [list(names) for names in glossary])
    for start in range(0, len(docs), DOCS_PER_PART):
        rows = [[d["location"], d["title"], d["excerpt"][:EXCERPT]] for d in docs[start : start + DOCS_PER_PART]]
        files[f"{FOLDER}/d{start // DOCS_PER_PART}.js"] = _script(f"d{start // DOCS_PER_PART}", rows)
    for prefix, part in latin.items():
        files[f"{FOLDER}/l-{prefix}.js"] = _script(f"l-{prefix}", part)
    for number, part in enumerate(cut):
        files[f"{FOLDER}/c{number}.js"] = _script(f"c{number}", part)
    return files
