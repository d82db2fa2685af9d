"""The catalog read without the ORM, for the everyday commands (kb list, show, search, runs, runners, note).

Importing SQLAlchemy and SQLModel and building the table models costs several times a bare Typer
start (issue 21), while these commands only read. On an SQLite catalog of this kb's schema they read
through the standard library's ``sqlite3`` with the same queries as ``kb.queries``, ``kb.search``
and ``kb.runs.overview``, and get the same values back: rows with the tables' field names, JSON
columns decoded, times aware UTC, flags as bools, read off the types the columns were declared with
(``tests/test_cli_output.py`` runs every listing both ways and compares). Anything else takes the
ORM path, which knows what to do or what to say: a catalog that does not exist yet (created), one
of an older schema (migrated), a newer or foreign one (refused with a message), PostgreSQL
(``KB_DATABASE_URL``), a read-only folder (``kb.db.read_only_url``).

``open_catalog(settings)`` returns the one or the other behind one interface, ``Catalog``.
"""

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

from kb.errors import BadInput
from kb.queries import check_sort, filter_papers, languages_by_paper, not_found
from kb.schema import SCHEMA_VERSION
from kb.settings import Settings

# The tables read here (search_*: kb.textindex's index, which ``search`` reads).
_TABLES = ("kb_meta", "paper", "note", "run", "notes_version", "search_posting", "search_tokens", "search_stats")


@lru_cache(maxsize=4096)
def _string_list(stored: str) -> tuple[str, ...] | None:
    """A short JSON list of strings (tags, categories, runners: a few values that most rows share),
    parsed once per process; None for any other JSON."""
    value = json.loads(stored)
    return tuple(value) if isinstance(value, list) and all(type(v) is str for v in value) else None


def _json(stored: str) -> Any:
    if stored == "[]":
        return []                   # most lists are empty
    if len(stored) <= 80 and stored.startswith('["'):
        found = _string_list(stored)
        if found is not None:
            return list(found)      # a list of its own for each row, as json.loads gives
    return json.loads(stored)


# How a column's value is stored, by the type SQLAlchemy declared it with (kb.models): JSON text,
# naive UTC time text (every time column is kb.models.UTCDateTime: tests/test_conventions.py), 0/1.
_DECODE = {
    "JSON": _json,
    "DATETIME": lambda stored: datetime.fromisoformat(stored).replace(tzinfo=UTC),
    "BOOLEAN": bool,
}


# A run's columns that no listing reads (kb.reader.SqliteCatalog.list_runs), and the one entry of its
# info that one does: {"regression": true} when it regressed, else {}.
_UNLISTED_RUN_FIELDS = ("epochs", "env", "info")
_LISTED_INFO = ("CASE WHEN json_extract(info, '$.regression') IS NOT NULL "
                "THEN json_object('regression', json_extract(info, '$.regression')) ELSE '{}' END")


def _run_filter(runner: str | None, status: str | None) -> str:
    """The WHERE clause (or nothing) of a runs query filtered by ``:runner`` and ``:status`` where given."""
    where = " AND ".join(f"{name} = :{name}" for name, value in (("runner", runner), ("status", status)) if value)
    return f"WHERE {where} " if where else ""


class Row(SimpleNamespace):
    """One catalog row with the attributes of its table's model."""

    def model_dump(self) -> dict[str, Any]:
        return dict(vars(self))


class SqliteCatalog:
    """The read queries over one ``sqlite3`` connection."""

    def __init__(self, connection: sqlite3.Connection, cache_dir=None) -> None:
        self.connection = connection
        self.cache_dir = cache_dir          # where listings are kept (listing_lines), or None
        self._columns: dict[str, list[tuple[str, Any]]] = {}

    def _columns_of(self, table: str) -> list[tuple[str, Any]]:
        """``table``'s columns, each with how its stored values are decoded (None: as they are)."""
        if table not in self._columns:
            self._columns[table] = [(name, _DECODE.get(kind.upper()))
                                    for _, name, kind, *_ in self.connection.execute(f"PRAGMA table_info({table})")]
        return self._columns[table]

    def _rows(self, table: str, where: str = "", params: dict[str, Any] | list = (),
              fields: tuple[str, ...] | None = None, computed: dict[str, str] | None = None) -> list[Row]:
        """The rows of ``table`` matching ``where``, each column (or each of ``fields``) as the ORM reads it;
        ``computed``: more attributes, each an SQL expression giving JSON text (or NULL)."""
        columns = [c for c in self._columns_of(table) if fields is None or c[0] in fields]
        names = [name for name, _ in columns]
        for name, expression in (computed or {}).items():
            columns.append((name, _json))
            names.append(f"{expression} AS {name}")
        sql = f"SELECT {', '.join(names)} FROM {table} {where}"
        return [Row(**{name: value if decode is None or value is None else decode(value)
                       for (name, decode), value in zip(columns, values)})
                for values in self.connection.execute(sql, params)]

    def list_papers(self, *, tag: str | None = None, year: int | None = None, author: str | None = None,
                    lang: str | None = None, runner: bool | None = None, star: bool = False, sort: str = "added",
                    reverse: bool = False, limit: int | None = None, fields: tuple[str, ...] | None = None) -> list[Row]:
        """As ``kb.queries.list_papers``; ``fields``: only these columns (and those the filters read, and
        ``kb list`` shows: tags, runners, star), for a listing of 100,000 papers that shows a few of them."""
        descending = check_sort(sort) != reverse
        where = "WHERE year = :year " if year is not None else ""
        filtered = any(value not in (None, False) for value in (tag, author, lang, runner, star))
        order = f"ORDER BY {sort} {'DESC' if descending else 'ASC'}, slug ASC" + (" LIMIT :limit" if limit and not filtered else "")
        read = fields and (*fields, "id", "tags", "runners", "star", *(("authors",) if author is not None else ()))
        papers = self._rows("paper", where + order, {"year": year, "limit": limit}, fields=read)
        if lang is not None:
            with_lang = {pid for (pid,) in self.connection.execute("SELECT paper_id FROM note WHERE lang = ?", [lang])}
            papers = [p for p in papers if p.id in with_lang]
        return filter_papers(papers, tag=tag, author=author, runner=runner, star=star, limit=limit)

    def listing_lines(self, *, year: int | None = None, sort: str = "added", reverse: bool = False,
                      limit: int | None = None) -> str | None:
        """``kb list``'s rows in a pipe, joined by SQLite: slug, id, year, ★, title, tags, notes and
        runners, tab-separated, one paper a line, in ``list_papers``' order (issue 21: 100,000 papers
        read as rows cost a second; as one string a fraction of it). None when a cell may hold what
        ``kb.cli.output.tsv_line`` folds (a tab, a line break, a run of spaces, whitespace at an
        end): the caller lists through ``list_papers`` then.

        Every paper's listing in an order is kept in ``cache_dir`` under the catalog's
        ``listing_version`` and read back until a paper or note changes (``kb.listing``; a write
        patches the default order's in place); ``year`` and ``limit`` are cut from a kept listing,
        or asked of SQLite when there is none (a short listing is joined faster than a whole one)."""
        from kb import cache, listing

        found = listing.version(self.connection)
        path = listing.kept_at(self.cache_dir, sort, reverse) if self.cache_dir is not None and found else None
        key = path and listing.cache_key(found, sort, reverse)
        if path is not None and (body := cache.read(path, key)) is not None:
            return listing.cut(body, year, limit)
        if year is not None or limit is not None:
            return listing.join_lines(self.connection, year=year, sort=sort, reverse=reverse, limit=limit)
        body = listing.join_lines(self.connection, sort=sort, reverse=reverse)
        if path is not None and body is not None:
            cache.write(path, key, body)
        return body

    def count_papers(self, *, year: int | None = None) -> int:
        """How many papers ``list_papers(year=year)`` lists."""
        return self.connection.execute("SELECT count(*) FROM paper" + (" WHERE year = ?" if year is not None else ""),
                                       [year] if year is not None else []).fetchone()[0]

    def note_languages(self, paper_ids: list[int] | None = None) -> dict[int, list[str]]:
        if paper_ids is None:
            return languages_by_paper(self.connection.execute("SELECT paper_id, lang FROM note"))
        marks = ", ".join("?" * len(paper_ids))
        return languages_by_paper(self.connection.execute(f"SELECT paper_id, lang FROM note WHERE paper_id IN ({marks})",
                                                          paper_ids))

    def version_flags(self) -> dict[str, str]:
        """As ``kb.feed.versions.version_flags``."""
        rows = self.connection.execute("SELECT paper.key, paper.version, notes_version.written_for FROM paper "
                                       "JOIN notes_version ON notes_version.key = paper.key")
        return {key: f"notes written for v{written}, arXiv has v{version}"
                for key, version, written in rows if version and version > written}

    def get_paper(self, ref: str) -> Row:
        """As ``kb.queries.get_paper``: by slug, then by any id form."""
        ref = ref.strip()
        found = self._rows("paper", "WHERE slug = ?", [ref.lower()])
        if not found:
            from kb.ids import parse_id

            try:
                found = self._rows("paper", "WHERE key = ?", [parse_id(ref).key])
            except BadInput:
                pass
        if not found:
            raise not_found(ref)
        return found[0]

    def notes_of(self, paper) -> list[Row]:
        return self._rows("note", "WHERE paper_id = ? ORDER BY lang, path", [paper.id])

    def has_running_runs(self) -> bool:
        return self.connection.execute("SELECT 1 FROM run WHERE status = 'running' LIMIT 1").fetchone() is not None

    def list_runs(self, *, runner: str | None = None, status: str | None = None, limit: int | None = None) -> list[Row]:
        """As ``kb.runs.records.list_runs`` (newest first), with what a listing reads (``kb.runs.overview``):
        without the per-epoch metrics and the environment, and of ``info`` only its regression flag (its
        plots and pictures are most of a run's row: ~8 KB a run of the shipped ones)."""
        listed = tuple(name for name, _ in self._columns_of("run") if name not in _UNLISTED_RUN_FIELDS)
        return self._rows("run", _run_filter(runner, status) + "ORDER BY created DESC" + (" LIMIT :limit" if limit else ""),
                          {"runner": runner, "status": status, "limit": limit}, fields=listed, computed={"info": _LISTED_INFO})

    def count_runs(self, *, runner: str | None = None, status: str | None = None) -> int:
        """How many runs ``list_runs`` lists without a limit."""
        return self.connection.execute("SELECT count(*) FROM run " + _run_filter(runner, status),
                                       {"runner": runner, "status": status}).fetchone()[0]

    def paper_by_key(self, key: str) -> Row | None:
        found = self._rows("paper", "WHERE key = ?", [key])
        return found[0] if found else None

    def search(self, query: str, **filters) -> list:
        """As ``kb.search.search``, which reads through the methods below (``kb.search.CatalogReads``)."""
        from kb.search import search

        return search(query, session=self, **filters)

    def ranked(self, terms: list, limit: int | None) -> list[tuple[int, float]]:
        from kb.search import ranked_ids_sqlite

        return ranked_ids_sqlite(terms, limit, lambda sql, params: self.connection.execute(sql, params).fetchall())

    def papers_by_id(self, ids: list[int]) -> dict[int, Row]:
        marks = ", ".join("?" * len(ids))
        return {p.id: p for p in self._rows("paper", f"WHERE id IN ({marks})", ids)}

    def note_langs_of(self, ids: list[int]) -> dict[int, set[str]]:
        langs: dict[int, set[str]] = {}
        marks = ", ".join("?" * len(ids))
        for paper_id, lang in self.connection.execute(f"SELECT paper_id, lang FROM note WHERE paper_id IN ({marks})", ids):
            langs.setdefault(paper_id, set()).add(lang)
        return langs

    def notes_of_ids(self, ids: list[int], lang: str | None) -> list[Row]:
        marks = ", ".join("?" * len(ids))
        return self._rows("note", f"WHERE paper_id IN ({marks})" + (" AND lang = ?" if lang else ""),
                          [*ids, lang] if lang else ids, fields=("paper_id", "lang", "body"))


class OrmCatalog:
    """The same interface over an SQLAlchemy session (PostgreSQL, a catalog to create or migrate)."""

    def __init__(self, session) -> None:
        self.session = session

    def list_papers(self, *, fields: tuple[str, ...] | None = None, **filters) -> list:
        """Whole papers whatever ``fields`` asks (the ORM loads rows whole)."""
        from kb.queries import list_papers

        return list_papers(session=self.session, **filters)

    def listing_lines(self, **order) -> None:
        """None: the ORM path lists through ``list_papers``."""
        return None

    def count_papers(self, *, year: int | None = None) -> int:
        from sqlmodel import func, select

        from kb.models import Paper

        query = select(func.count()).select_from(Paper)
        return self.session.exec(query if year is None else query.where(Paper.year == year)).one()

    def note_languages(self, paper_ids: list[int] | None = None) -> dict[int, list[str]]:
        from kb.queries import note_languages

        return note_languages(session=self.session, paper_ids=paper_ids)

    def version_flags(self) -> dict[str, str]:
        from kb.feed.versions import version_flags

        return version_flags(session=self.session)

    def get_paper(self, ref: str):
        from kb.queries import get_paper

        return get_paper(ref, session=self.session)

    def notes_of(self, paper) -> list:
        from kb.queries import notes_of

        return notes_of(paper, session=self.session)

    def has_running_runs(self) -> bool:
        return True         # the ORM path looks at each running run anyway (kb.runs.execute.mark_dead_runs)

    def search(self, query: str, **filters) -> list:
        from kb.search import search

        return search(query, session=self.session, **filters)

    def list_runs(self, **filters) -> list:
        from kb.runs.records import list_runs

        return list_runs(session=self.session, **filters)

    def count_runs(self, **filters) -> int:
        from kb.runs.records import count_runs

        return count_runs(session=self.session, **filters)

    def paper_by_key(self, key: str):
        from sqlmodel import select

        from kb.models import Paper

        return self.session.exec(select(Paper).where(Paper.key == key)).first()


Catalog = SqliteCatalog | OrmCatalog


def _sqlite_path(url: str) -> str | None:
    """The file of a plain ``sqlite:///PATH`` URL (not in-memory, not a URI with options)."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = url.split("///", 1)[1]
    return None if path in ("", ":memory:") else path


def _connect(path: str) -> sqlite3.Connection | None:
    """A connection to an existing catalog of this schema holding every table read here; else None."""
    import os

    if not os.path.isfile(path) or not os.access(path, os.W_OK) or not os.access(os.path.dirname(path) or ".", os.W_OK):
        return None        # missing (the ORM path creates it) or read-only (kb.db.read_only_url opens it)
    connection = sqlite3.connect(path, timeout=30)
    try:
        connection.execute("PRAGMA busy_timeout=30000")
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        found = connection.execute("SELECT value FROM kb_meta WHERE key = 'schema_version'").fetchone() \
            if "kb_meta" in tables else None
        if set(_TABLES) <= tables and found == (str(SCHEMA_VERSION),):
            return connection
    except sqlite3.DatabaseError:
        pass             # not a database, or damaged: kb.db's init_schema moves it aside and says so
    connection.close()
    return None


@contextmanager
def open_catalog(settings: Settings) -> Iterator[Catalog]:
    """The catalog for reading: ``sqlite3`` when it can answer as the ORM would, else an ORM session."""
    path = _sqlite_path(settings.database_url)
    connection = _connect(path) if path else None
    if connection is None:
        from kb.db import session_scope

        with session_scope(settings) as session:
            yield OrmCatalog(session)
        return
    try:
        yield SqliteCatalog(connection, cache_dir=settings.cache_dir)
    finally:
        connection.close()


def prime_listing(settings: Settings) -> None:
    """Work out ``kb list``'s pipe listing now if the catalog changed since it was kept (``kb sync``
    does, so that the ``kb list`` after it reads it back: 100,000 papers' listing takes a second)."""
    with open_catalog(settings) as catalog:
        catalog.listing_lines()
