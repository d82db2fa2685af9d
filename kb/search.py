"""Full-text search over titles, authors, abstracts and notes, for Japanese and English.

SQLite's tokenizers cannot segment Japanese, so kb tokenizes text itself, once, at index time:
Latin words are lower-cased and stemmed (``detector`` ~ ``detection``), runs of CJK characters
become overlapping character bigrams (``物体検出`` -> ``物体 体検 検出``). The index stores these
tokens; a query is tokenized the same way and each Japanese word becomes a phrase of its bigrams,
so a two-character word (``検出``) is one token and a longer one must match contiguously.
On SQLite the tokens go into kb.textindex's index, ranked by BM25 as FTS5 ranks; other databases
use a plain-table fallback with the same tokens.

The query side reads through ``CatalogReads``: an ORM session, or ``kb.reader``'s ``sqlite3``
catalog that the CLI uses to answer without importing the ORM (issue 21); both run the same SQL.
The glossary's index (every name stemmed) is kept in KB_HOME/cache between searches (``load_glossary``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kb.textindex import WEIGHTS

if TYPE_CHECKING:
    from sqlmodel import Session

    from kb.models import Note, Paper

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3005\u30fc"
_RUN = re.compile(rf"[{_CJK}]+|[a-z0-9]+(?:['’][a-z]+)?")
_HIRAGANA = re.compile(r"[\u3040-\u309f]+")
_COLUMNS = ("title", "authors", "abstract", "notes")
_WEIGHTS = dict(zip(_COLUMNS, map(float, WEIGHTS)))       # kb.textindex's, for the portable fallback


@lru_cache(maxsize=1)
def _stemmer():
    # snowballstemmer hands out PyStemmer's C build of the same Snowball algorithms when it is
    # installed (a pyproject dependency): ~1 us a word instead of ~70, which a rebuild of many new
    # words (kb sync) feels. tests/test_search.py checks both give the same stems.
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Snowball stem, then fold agent nouns onto their verb (``detector``/``detection`` -> ``detect``)."""
    stemmed = _stemmer().stemWord(word)
    if len(stemmed) > 5 and stemmed.endswith("or"):
        stemmed = stemmed[:-2]
    return stemmed


def normalize(value: str) -> str:
    return unicodedata.normalize("NFKC", value).lower()


def _is_cjk(run: str) -> bool:
    return run[0] not in "abcdefghijklmnopqrstuvwxyz0123456789"


def bigrams(run: str) -> list[str]:
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


class _Memo(dict):
    """A function's results by argument, read in C (``map(memo.__getitem__, ...)``): about three
    times as fast as an ``lru_cache`` hit, which counts where a rebuild looks up every word of
    every note. Emptied when it holds ``size`` results."""

    def __init__(self, function: Any, size: int) -> None:
        super().__init__()
        self.function, self.size = function, size

    def __missing__(self, key: str) -> str:
        if len(self) >= self.size:
            self.clear()
        value = self[key] = self.function(key)
        return value


def _run_token(run: str) -> str:
    """One run as a compact token: a CJK run as it is, a Latin word stemmed (``'s``, ``’t`` dropped)."""
    return run if _is_cjk(run) else stem(run.replace("’", "'").split("'")[0])


def _expanded(token: str) -> str:
    """A compact token as the index tokens it stands for, space-separated (a CJK run's bigrams)."""
    return " ".join(bigrams(token)) if _is_cjk(token) else token


# Zipf-distributed text repeats its words: each is worked out once.
_RUN_TOKENS = _Memo(_run_token, 262144)
_EXPANDED = _Memo(_expanded, 262144)
_EXPANDED_TOKENS = _Memo(lambda token: tuple(bigrams(token)) if _is_cjk(token) else (token,), 262144)


def compact(value: str) -> list[str]:
    """The compact tokens of a text: ``tokenize`` before a CJK run is cut into bigrams."""
    return list(map(_RUN_TOKENS.__getitem__, _RUN.findall(normalize(value))))


def expand(compact_text: str) -> str:
    """Space-separated compact tokens as the space-separated index tokens (kb.textindex counts these)."""
    return " ".join(map(_EXPANDED.__getitem__, compact_text.split()))


def index_tokens(compact_text: str) -> list[str]:
    """``expand(compact_text).split()``, without the string between."""
    return list(chain.from_iterable(map(_EXPANDED_TOKENS.__getitem__, compact_text.split())))


def tokenize(value: str) -> list[str]:
    """Index tokens of a text (see the module docstring)."""
    tokens: list[str] = []
    for token in compact(value):
        if _is_cjk(token):
            tokens.extend(bigrams(token))
        else:
            tokens.append(token)
    return tokens


@dataclass
class QueryTerm:
    """One unit of a query: a Latin word (one token) or a Japanese word (a phrase of bigrams).

    ``alternatives``: the same concept in other words (the glossary's: 物体検出 for object
    detection); the term matches where it or any alternative does.
    """

    raw: str
    tokens: list[str]
    prefix: bool = False
    alternatives: list[QueryTerm] = field(default_factory=list)

    @property
    def forms(self) -> list[QueryTerm]:
        return [self, *self.alternatives]


def parse_query(query: str) -> list[QueryTerm]:
    terms: list[QueryTerm] = []
    for run in _RUN.findall(normalize(query)):
        if not _is_cjk(run):
            terms.append(QueryTerm(run, [stem(run.split("'")[0])]))
            continue
        # Particles (の, を, は ...) glue words together in a query; split on hiragana so that
        # "検出の精度" asks for 検出 and 精度, but keep runs that are hiragana only.
        parts = [p for p in _HIRAGANA.split(run) if p] if not _HIRAGANA.fullmatch(run) else [run]
        for part in parts:
            terms.append(QueryTerm(part, bigrams(part), prefix=len(part) == 1))
    return terms


# -- query expansion: the glossary's names of a query's concepts (kb/glossary.py) ---------------

_SPAN = 4      # the most query words one glossary name spans ("3d object detection")


@dataclass(frozen=True, eq=False)
class GlossaryIndex:
    """The glossary as queries read it.

    ``concepts``: each name's index tokens -> the names of its concept; names that the stemmer makes
    the same tokens (detector, detection) join their concepts, as the index cannot tell them apart.
    ``tokens``: each name's index tokens.
    """

    concepts: dict[tuple[str, ...], frozenset[str]]
    tokens: dict[str, tuple[str, ...]]


@lru_cache(maxsize=4)
def glossary_index(entries: tuple[tuple[str, ...], ...]) -> GlossaryIndex:
    """The index of ``kb.glossary.concepts``' entries (stemming every name: ~40 ms for the shipped glossary)."""
    from kb.glossary import synonyms

    tokens = {name: tuple(tokenize(name)) for names in entries for name in names}
    concepts: dict[tuple[str, ...], frozenset[str]] = {}
    for name, names in synonyms(entries).items():
        if key := tokens[name]:
            concepts[key] = concepts.get(key, frozenset()) | names
    return GlossaryIndex(concepts, tokens)


_GLOSSARY_CACHE = "glossary-index.marshal"       # under KB_HOME/cache


def _glossary_key(papers: Path | None) -> tuple:
    """What the cached index was built from: the glossary files and the code that tokenizes (each
    file's path, modification time and size, as Python checks its bytecode; None for a missing file)."""
    import importlib.util
    import sys

    import kb.glossary
    from kb.cache import file_stats

    stemmer = importlib.util.find_spec("snowballstemmer")
    files = [*kb.glossary.sources(papers), Path(__file__), Path(kb.glossary.__file__),
             *([Path(stemmer.origin)] if stemmer is not None and stemmer.origin else [])]
    return (1, sys.version_info[:2], file_stats(files))


def load_glossary(papers: Path | None, cache_dir: Path) -> GlossaryIndex:
    """``glossary_index(kb.glossary.concepts(papers))``, kept in ``cache_dir`` between runs and built
    again when a glossary file or the tokenizer changed, so ``kb search`` does not stem the whole
    glossary on every call. A cache that cannot be read or written is built or left in memory."""
    from kb import cache
    from kb.glossary import concepts

    key = _glossary_key(papers)
    path = Path(cache_dir) / _GLOSSARY_CACHE
    if (stored := cache.read(path, key)) is not None:
        return GlossaryIndex(*stored)
    index = glossary_index(concepts(papers))
    cache.write(path, key, (index.concepts, index.tokens))   # unwritable: each search builds the index
    return index


def expand_query(query: str, glossary: tuple[tuple[str, ...], ...] | GlossaryIndex) -> list[QueryTerm]:
    """The query's terms with the glossary's other names of each concept as alternatives.

    A Japanese run is cut at the glossary names it holds, longest first (点群物体検出 is 点群 and
    物体検出; 畳み込み stays whole though it holds kana), the rest of it as ``parse_query`` cuts it.
    Runs of Latin words that form a glossary name ("object detection") become one term, longest
    first. The words as typed stay one of each term's forms. ``glossary``: ``kb.glossary.concepts``'
    entries, or their index (``load_glossary``).
    """
    index = glossary if isinstance(glossary, GlossaryIndex) else glossary_index(glossary)
    terms: list[QueryTerm] = []
    for run in _RUN.findall(normalize(query)):
        terms.extend(_cut_at_names(run, index) if _is_cjk(run) else parse_query(run))
    expanded: list[QueryTerm] = []
    i = 0
    while i < len(terms):
        for j in range(min(len(terms), i + _SPAN), i, -1):
            key = tuple(token for term in terms[i:j] for token in term.tokens)
            if key in index.concepts and not any(term.prefix for term in terms[i:j]):
                expanded.append(_with_alternatives(" ".join(term.raw for term in terms[i:j]), key, index))
                i = j
                break
        else:
            expanded.append(terms[i])
            i += 1
    return expanded


def _with_alternatives(raw: str, key: tuple[str, ...], index: GlossaryIndex) -> QueryTerm:
    others = sorted(name for name in index.concepts[key] if index.tokens[name] != key)
    return QueryTerm(raw, list(key), alternatives=[QueryTerm(name, list(index.tokens[name])) for name in others])


def _cut_at_names(run: str, index: GlossaryIndex) -> list[QueryTerm]:
    """A Japanese run as its glossary names (longest first from each position) and, between them,
    the words ``parse_query`` finds (split at particles)."""
    terms: list[QueryTerm] = []
    rest, k = "", 0
    while k < len(run):
        end = next((e for e in range(len(run), k + 1, -1) if tuple(bigrams(run[k:e])) in index.concepts), None)
        if end is None:
            rest, k = rest + run[k], k + 1
            continue
        terms += parse_query(rest) + [QueryTerm(run[k:end], bigrams(run[k:end]))]
        rest, k = "", end
    return terms + parse_query(rest)


# -- indexing -------------------------------------------------------------------------------
#
# On SQLite the index is kb.textindex's: per token, the papers holding it and their column-weighted
# counts, scored as FTS5's bm25() would, with each paper's compact tokens (a CJK run once rather
# than as its bigrams, deflated) kept to check phrases against and to take the paper out again.
# Other databases keep the token text in ``search_doc``, which their LIKE fallback scans.


def is_sqlite(*, session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def ensure_index(*, session: Session) -> None:
    if is_sqlite(session=session) and not session.info.get("search_index"):
        from kb.textindex import TABLES

        for sql in TABLES:
            session.connection().exec_driver_sql(sql)
        session.info["search_index"] = True


def document_texts(paper: Any, notes: list[Any]) -> tuple[str, str, str, tuple[str, ...]]:
    """The texts a paper is indexed by: title (with other titles and the slug), authors, abstract
    (with the summary and tags), and one per note (its title and body). Rows with the columns read
    here do, and so do a ``paper.yaml``'s fields (kb sync's workers tokenize from those)."""
    return (" ".join([paper.title, *paper.other_titles, paper.slug]), " ".join(paper.authors),
            f"{paper.abstract}\n{paper.summary}\n{' '.join(paper.tags)}",
            tuple(f"{n.title or ''}\n{n.body}" for n in notes))


def compact_texts(texts: tuple[str, str, str, tuple[str, ...]]) -> tuple[str, str, str, str]:
    """``document_texts``' compact tokens by column (space-separated): title, authors, abstract, notes.
    No token spans a line end, so the notes' tokens are each note's in turn."""
    title, authors, abstract, notes = texts
    return (" ".join(compact(title)), " ".join(compact(authors)), " ".join(compact(abstract)),
            " ".join(filter(None, (" ".join(compact(note)) for note in notes))))


def compact_document(paper: Any, notes: list[Any]) -> tuple[str, str, str, str]:
    """The compact tokens of one paper, by column (see ``document_texts``)."""
    return compact_texts(document_texts(paper, notes))


def _digest(texts: tuple[str, str, str, tuple[str, ...]]) -> bytes:
    import hashlib

    title, authors, abstract, notes = texts
    digest = hashlib.blake2b(digest_size=16)
    for text in (title, authors, abstract, *notes):
        digest.update(b"%d:" % len(text) + text.encode("utf-8", "surrogatepass"))
    return digest.digest()


@dataclass
class Prepared:
    """A paper's index entry worked out from its files, away from the catalog (kb sync's workers):
    used where the rows written from those files give the same texts (``digest``)."""

    digest: bytes                                    # of its document_texts
    document: tuple[str, str, str, str]
    postings: tuple                                  # kb.textindex.prepare's

    @classmethod
    def of(cls, paper: Any, notes: list[Any]) -> Prepared:
        from kb.textindex import prepare

        texts = document_texts(paper, notes)
        document = compact_texts(texts)
        return cls(_digest(texts), document, prepare(document, index_tokens))


def _sqlite_write(connection, documents: dict[int, tuple[str, str, str, str]], removed: list[int] = (),
                  *, fresh: bool = False, prepared: dict[int, tuple] | None = None) -> None:
    from kb.textindex import write

    if documents or removed:
        write(connection, documents, removed, expand, fresh=fresh, prepared=prepared)


def _documents(execute, paper_ids: list[int], ready: dict[int, Prepared] | None = None, exact: set[int] = frozenset()
               ) -> tuple[dict[int, tuple[str, str, str, str]], dict[int, tuple]]:
    """``compact_document`` of each paper from its catalog rows, and the postings of those ``ready``
    had worked out from the same texts (``exact``: papers whose rows are known to give them, not
    read back); ``execute`` runs a Core select (a session's or a connection's), which reads JSON
    columns alike on every database."""
    from sqlalchemy import select

    from kb.models import Note, Paper

    paper, note = Paper.__table__.c, Note.__table__.c
    ready = ready or {}
    documents, prepared = {}, {}
    for paper_id in exact:
        documents[paper_id], prepared[paper_id] = ready[paper_id].document, ready[paper_id].postings
    paper_ids = [paper_id for paper_id in paper_ids if paper_id not in exact]
    for start in range(0, len(paper_ids), 500):
        chunk = paper_ids[start : start + 500]
        notes: dict[int, list[Any]] = {}
        for row in execute(select(note.paper_id, note.title, note.body).where(note.paper_id.in_(chunk))
                           .order_by(note.paper_id, note.id)):
            notes.setdefault(row.paper_id, []).append(row)
        for row in execute(select(paper.id, paper.slug, paper.title, paper.other_titles, paper.authors, paper.abstract,
                                  paper.summary, paper.tags).where(paper.id.in_(chunk))):
            texts = document_texts(row, notes.get(row.id, []))
            found = ready.get(row.id)
            if found is not None and found.digest == _digest(texts):
                documents[row.id], prepared[row.id] = found.document, found.postings
            else:
                documents[row.id] = compact_texts(texts)
    return documents, prepared


def index_papers(paper_ids: list[int], *, session: Session, ready: dict[int, Prepared] | None = None,
                 exact: set[int] = frozenset()) -> None:
    """(Re)index papers from their catalog rows with their notes, in a few statements whatever their
    number: kb sync hands over every paper whose files changed at once, with what its workers
    ``ready`` (``Prepared``, by paper id) and the papers whose rows it wrote from those same files
    (``exact``: a paper's row and all its notes new). Call after the rows changed."""
    if not paper_ids:
        return
    session.flush()
    exact = {paper_id for paper_id in exact if paper_id in (ready or {})}
    documents, prepared = _documents(session.execute, list(paper_ids), ready, exact)
    if is_sqlite(session=session):
        ensure_index(session=session)
        _sqlite_write(session.connection(), documents, prepared=prepared)
        return
    from sqlmodel import insert

    from kb.models import SearchDoc

    unindex_papers(list(documents), session=session)
    session.exec(insert(SearchDoc), params=[
        {"paper_id": paper_id, **dict(zip(_COLUMNS, map(expand, columns)))} for paper_id, columns in documents.items()])


def index_paper(paper: Paper, *, session: Session) -> None:
    """(Re)index one paper with its notes; call after its notes changed."""
    index_papers([paper.id], session=session)


def unindex_papers(paper_ids: list[int], *, session: Session) -> None:
    if not paper_ids:
        return
    if is_sqlite(session=session):
        ensure_index(session=session)
        _sqlite_write(session.connection(), {}, paper_ids)
        return
    from sqlmodel import delete

    from kb.models import SearchDoc

    for start in range(0, len(paper_ids), 500):
        session.exec(delete(SearchDoc).where(SearchDoc.paper_id.in_(paper_ids[start : start + 500])))


def unindex_paper(paper_id: int, *, session: Session) -> None:
    unindex_papers([paper_id], session=session)


def rebuild_sqlite_index(connection) -> int:
    """Index every paper of an SQLite catalog anew from its rows (the migration from schemas before 6,
    FTS5's); returns how many. ``connection`` is an SQLAlchemy connection inside the migration's transaction.
    """
    from kb.textindex import DROP, TABLES

    # search_fts, search_fts_doc: schema 5's FTS5 index and its tokens; search_doc: schema 4's token text.
    for sql in ("DROP TABLE IF EXISTS search_fts", "DROP TABLE IF EXISTS search_fts_doc", *DROP, *TABLES):
        connection.exec_driver_sql(sql)
    connection.exec_driver_sql("DELETE FROM search_doc")
    paper_ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM paper ORDER BY id")]
    _sqlite_write(connection, _documents(connection.execute, paper_ids)[0], fresh=True)
    return len(paper_ids)


# -- querying -------------------------------------------------------------------------------


@dataclass
class Hit:
    paper: Paper
    score: float
    snippet: list[tuple[str, bool]] = field(default_factory=list)   # (text, is_match) segments
    where: str = ""


def ranked_ids_sqlite(terms: list[QueryTerm], limit: int | None, rows) -> list[tuple[int, float]]:
    """Paper ids by BM25 over kb.textindex's index; ``rows(sql, params)`` runs one query on the catalog.

    Papers whose title or abstract holds the whole query (each term in any of its glossary forms)
    come first, then the papers that have it only in notes or authors, each group by BM25: a paper
    about 物体検出 ("object detection" in its title) ranks above one whose note mentions the word once.
    """
    from kb.textindex import ranked

    return ranked(rows, [[(tuple(form.tokens), form.prefix) for form in term.forms] for term in terms], limit, expand)


def _ranked_ids_portable(terms: list[QueryTerm], limit: int | None, *, session: Session) -> list[tuple[int, float]]:
    """Any database: every term must appear (as a token sequence); score by weighted counts."""
    from sqlalchemy import or_
    from sqlmodel import select

    from kb.models import SearchDoc

    query = select(SearchDoc)
    for term in terms:
        likes = [f"%{' '.join(form.tokens)}%" for form in term.forms]
        query = query.where(or_(*(column.like(like) for like in likes for column in
                                  (SearchDoc.title, SearchDoc.authors, SearchDoc.abstract, SearchDoc.notes))))
    scored = []
    for doc in session.exec(query):
        score, head = 0.0, True
        for term in terms:
            in_head = False
            for form in term.forms:
                needle = " ".join(form.tokens)
                for column, weight in _WEIGHTS.items():
                    padded = f" {getattr(doc, column)} "
                    found = padded.count(f" {needle}" if form.prefix else f" {needle} ")
                    score += weight * found
                    in_head |= bool(found) and column in ("title", "abstract")
            head &= in_head
        scored.append((doc.paper_id, score, head))
    # As ranked_ids_sqlite: the papers whose title or abstract holds the query first.
    scored.sort(key=lambda item: (not item[2], -item[1]))
    ranked = [(paper_id, score) for paper_id, score, _head in scored]
    return ranked[:limit] if limit else ranked


def snippet(value: str, terms: list[QueryTerm], width: int = 70) -> list[tuple[str, bool]]:
    """A window of ``value`` around the first match, as (text, is_match) segments."""
    flat = " ".join(value.split())
    low = normalize(flat)
    needles = []
    for form in (form for term in terms for form in term.forms):
        needles.append(form.raw)
        if form.tokens and form.tokens[0] != form.raw and form.tokens[0].isascii() and len(form.tokens[0]) >= 3:
            needles.append(form.tokens[0])
    positions = [(low.find(n), n) for n in needles if n and low.find(n) >= 0]
    if not positions:
        return []
    first = min(p for p, _ in positions)
    start = max(0, first - width // 2)
    end = min(len(flat), start + width)
    window, window_low = flat[start:end], low[start:end]
    pattern = re.compile("|".join(re.escape(n) + (r"[a-z]*" if n.isascii() else "") for n in sorted(set(needles), key=len, reverse=True)))
    segments: list[tuple[str, bool]] = [("…", False)] if start > 0 else []
    cursor = 0
    for match in pattern.finditer(window_low):
        if match.start() > cursor:
            segments.append((window[cursor : match.start()], False))
        segments.append((window[match.start() : match.end()], True))
        cursor = match.end()
    segments.append((window[cursor:], False))
    if end < len(flat):
        segments.append(("…", False))
    return [s for s in segments if s[0]]


@runtime_checkable
class CatalogReads(Protocol):
    """What ``search`` reads: ``kb.reader.SqliteCatalog`` has these methods; a session gets ``_SessionReads``."""

    def ranked(self, terms: list[QueryTerm], limit: int | None) -> list[tuple[int, float]]: ...

    def papers_by_id(self, ids: list[int]) -> dict[int, Any]: ...

    def note_langs_of(self, ids: list[int]) -> dict[int, set[str]]: ...

    def notes_of_ids(self, ids: list[int], lang: str | None) -> list[Any]:
        """The notes of these papers (in ``lang`` when given): rows with ``paper_id``, ``lang`` and ``body`` at least."""


class _SessionReads:
    """``CatalogReads`` over an ORM session: kb.textindex on SQLite, the portable scan elsewhere."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def ranked(self, terms: list[QueryTerm], limit: int | None) -> list[tuple[int, float]]:
        from sqlalchemy import text

        if not is_sqlite(session=self.session):
            return _ranked_ids_portable(terms, limit, session=self.session)
        ensure_index(session=self.session)
        return ranked_ids_sqlite(terms, limit, lambda sql, params: self.session.exec(text(sql), params=params).all())

    def papers_by_id(self, ids: list[int]) -> dict[int, Paper]:
        from sqlmodel import select

        from kb.models import Paper

        return {p.id: p for p in self.session.exec(select(Paper).where(Paper.id.in_(ids)))}

    def note_langs_of(self, ids: list[int]) -> dict[int, set[str]]:
        from sqlmodel import select

        from kb.models import Note

        langs: dict[int, set[str]] = {}
        for paper_id, lang in self.session.exec(select(Note.paper_id, Note.lang).where(Note.paper_id.in_(ids))):
            langs.setdefault(paper_id, set()).add(lang)
        return langs

    def notes_of_ids(self, ids: list[int], lang: str | None) -> list[Note]:
        from sqlmodel import select

        from kb.models import Note

        query = select(Note).where(Note.paper_id.in_(ids))
        if lang:
            query = query.where(Note.lang == lang)
        return list(self.session.exec(query))


def search(
    query: str,
    *,
    session: Session | CatalogReads, limit: int = 20,
    tag: str | None = None,
    lang: str | None = None,
    year: int | None = None,
    author: str | None = None,
    glossary: tuple[tuple[str, ...], ...] | GlossaryIndex | None = None,
) -> list[Hit]:
    """Papers matching every word of ``query``, best first, with a highlighted snippet.

    With a ``glossary`` (``kb.glossary.concepts`` or its ``load_glossary`` index, which ``kb search``
    passes unless ``--exact``),
    each word or glossary name of the query also matches its other names, so 物体検出 finds
    "object detection" in titles and abstracts. Without one, the words match as typed.
    ``session``: an ORM session, or any ``CatalogReads`` (``kb.reader``'s catalog).
    """
    terms = parse_query(query)
    if not terms:
        return []
    if glossary:
        terms = expand_query(query, glossary)
    reads = session if isinstance(session, CatalogReads) else _SessionReads(session)
    filtered = any(v is not None for v in (tag, lang, year, author))
    ranked = reads.ranked(terms, None if filtered else limit)
    hits: list[Hit] = []
    for start in range(0, len(ranked), 200):
        chunk = ranked[start : start + 200]
        papers = reads.papers_by_id([pid for pid, _ in chunk])
        langs = reads.note_langs_of(list(papers)) if lang is not None else {}
        for pid, score in chunk:
            paper = papers.get(pid)
            if paper is None:
                continue
            if tag is not None and tag.lower() not in paper.tags:
                continue
            if year is not None and paper.year != year:
                continue
            if author is not None and not any(author.lower() in a.lower() for a in paper.authors):
                continue
            if lang is not None and lang not in langs.get(pid, set()):
                continue
            hits.append(Hit(paper=paper, score=score))
            if len(hits) >= limit:
                break
        if len(hits) >= limit:
            break
    # The title is printed anyway: show where else the words occur (the abstract, else a note), the
    # title only as a last resort. Notes are read only for the hits whose abstract lacks the words.
    without = [hit for hit in hits if not _abstract_snippet(hit, terms)]
    notes: dict[int, list[Note]] = {}
    for note in reads.notes_of_ids([h.paper.id for h in without], lang) if without else []:
        notes.setdefault(note.paper_id, []).append(note)
    for hit in without:
        _attach_other_snippet(hit, terms, notes.get(hit.paper.id, []))
    return hits


def _abstract_snippet(hit: Hit, terms: list[QueryTerm]) -> bool:
    paper = hit.paper
    found = snippet(paper.abstract or paper.summary, terms)
    if found:
        hit.snippet, hit.where = found, "abstract"
    return bool(found)


def _attach_other_snippet(hit: Hit, terms: list[QueryTerm], notes: list[Note]) -> None:
    paper = hit.paper
    for note in notes:
        found = snippet(note.body, terms)
        if found:
            hit.snippet, hit.where = found, f"notes ({note.lang})"
            return
    found = snippet(paper.title, terms, width=max(70, len(paper.title)))
    if found:
        hit.snippet, hit.where = found, "title"
        return
    hit.where = "authors" if any(snippet(a, terms) for a in paper.authors) else ""
