"""The site's search index, for kb's search worker (docs/assets/kb/search-worker.js).

Material's stock search (lunr) cannot find Japanese words: it has no segmenter that matches how
people type a query. kb keeps Material's search box and replaces the worker behind it: the index
holds each paper's and runner's page with its plain text, NFKC-normalized here as kb/search.py
does; the worker splits text and queries into the same tokens as ``kb search`` (CJK runs into
overlapping bigrams, Latin words whole), so the site finds what ``kb search`` finds. English word
forms come from ``kb.search.stem`` too: the index lists the words of the corpus that share a stem
(detect, detection, detector), and the worker widens a query word to its family.

The text of 1,000 papers with notes is several MB, so it ships gzip-compressed
(``search/kb_index.json.gz``; the worker inflates it with the browser's DecompressionStream).
Material still fetches ``search/search_index.json``: a stub with its settings and no documents.
"""

import gzip
import json
import re
import unicodedata
from typing import Any

from kb.search import stem
from kb.site.paths import listing, paper_page, runner_folder
from kb.site.snapshot import PaperView, RunnerView, Snapshot

INDEX = "search/kb_index.json.gz"
STUB = "search/search_index.json"
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
    parts = [", ".join(paper.authors), str(paper.year or ""), paper.venue or "", paper.key, " ".join(paper.tags),
             " ".join(paper.other_titles), paper.summary, paper.abstract]
    parts += [f"{note.title or ''} {plain(note.body)}" for note in paper.notes]
    return {"location": url_of(paper_page(paper.slug)), "title": _normalized([paper.title]), "text": _normalized(parts)}


def _runner_document(runner: RunnerView, titles: dict[str, str]) -> dict[str, str]:
    parts = [runner.summary, titles.get(runner.paper, runner.paper), " ".join(runner.datasets), " ".join(runner.presets)]
    return {"location": url_of(listing(runner_folder(runner.name))), "title": _normalized([f"Runner {runner.name}"]),
            "text": _normalized(parts)}


def documents(snapshot: Snapshot) -> list[dict[str, str]]:
    """One searchable document per paper page and per runner page."""
    titles = {paper.key: paper.title for paper in snapshot.papers}
    return [_paper_document(p) for p in snapshot.papers] + [_runner_document(r, titles) for r in snapshot.runners]


def word_families(docs: list[dict[str, str]]) -> list[list[str]]:
    """The Latin words of the documents grouped by their ``kb.search.stem``, groups of two or more."""
    by_stem: dict[str, set[str]] = {}
    for doc in docs:
        for word in set(_WORD.findall(f"{doc['title']} {doc['text']}".lower())):
            by_stem.setdefault(stem(word), set()).add(word)
    return sorted(sorted(words) for words in by_stem.values() if len(words) > 1)


def index_files(snapshot: Snapshot) -> dict[str, bytes]:
    """The files the search needs, by path relative to the site root."""
    stub: dict[str, Any] = {"config": {"lang": ["ja", "en"], "separator": r"[\s\-]+", "pipeline": [], "fields": {}},
                            "docs": []}
    docs = documents(snapshot)
    index = {"version": 1, "docs": docs, "families": word_families(docs)}
    body = json.dumps(index, ensure_ascii=False, separators=(",", ":"))
    return {STUB: json.dumps(stub).encode(), INDEX: gzip.compress(body.encode(), compresslevel=9, mtime=0)}
