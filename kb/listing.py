"""``kb list``'s listing in a pipe: joined by SQLite, kept in KB_HOME/cache, and patched by a write.

In a pipe ``kb list`` prints every paper, one tab-separated line each (``kb.cli.output``). At
100,000 papers joining those lines costs about a second, so the listing is kept in
``KB_HOME/cache/listing-<sort>[-reverse].marshal`` (``kept_at``) under the catalog's ``listing_version`` (``kb.db``'s triggers
count every row change of papers and notes) and read back until it changes (``kb.reader``).

A write that changes a few papers (``kb tag``, ``kb note``, ``kb add``, ``kb remove``, ``kb import``)
would make the next listing join them all again; ``Keeper`` instead follows a write transaction
(``kb.db.session_scope(write=True)``) and, where it saw every change the triggers counted, joins
the lines of the papers it changed only and puts them in the kept listing in their place. Anything
it cannot account for (a bulk statement, a count that differs, a listing kept for other options or
an older version) leaves the listing as it is, to be joined again by the next ``kb list``.
Only the standard library and ``kb.cache`` / ``kb.queries`` are imported: ``kb list`` reads through here.
"""

import sqlite3
from pathlib import Path

from kb.queries import check_sort

_FORMAT = 2                     # the kept value's layout: every paper's line, in one string

# A JSON list of strings as ",".join gives it: '["a", "b"]' -> 'a,b' by cutting the brackets and the
# quotes between items (no item can hold '", "' or '","' unescaped), through json_each where an item
# holds an escape (a quote, a backslash, a non-ASCII character as json.dumps writes it).
_JOINED = ("CASE WHEN {column} IS NULL OR {column} = '[]' THEN '' WHEN instr({column}, '\\') = 0 THEN "
           "replace(replace(substr({column}, 3, length({column}) - 4), '\", \"', ','), '\",\"', ',') "
           "ELSE (SELECT group_concat(value, ',') FROM json_each({column})) END")
# A paper's note languages, sorted (byte order of UTF-8 is code point order, as Python sorts) and unique.
_LANGS = ("coalesce((SELECT group_concat(lang, ',') FROM "
          "(SELECT DISTINCT lang FROM note WHERE note.paper_id = paper.id ORDER BY lang)), '')")
_LINE = " || char(9) || ".join((
    "slug", "key", "coalesce(CAST(year AS TEXT), '')",
    "CASE WHEN star > 0 THEN replace(printf('%.*c', star, '*'), '*', '★') ELSE '' END", "title",
    _JOINED.format(column="tags"), _LANGS, _JOINED.format(column="runners")))
# What Python's str.strip() strips but tab, line feed, CR and space.
_WHITESPACE = "".join(chr(code) for code in (*range(9, 14), *range(0x1c, 0x21), 0x85, 0xa0, 0x1680,
                                             *range(0x2000, 0x200b), 0x2028, 0x2029, 0x202f, 0x205f, 0x3000)
                      if code not in (9, 10, 13, 32))          # looked for on their own
_ASCII_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f"


def version(connection: sqlite3.Connection) -> str | None:
    """The catalog's listing_version (None in a catalog without it)."""
    found = connection.execute("SELECT value FROM kb_meta WHERE key = 'listing_version'").fetchone()
    return found[0] if found else None


def kept_at(cache_dir: Path, sort: str = "added", reverse: bool = False) -> Path:
    """Where the listing in this order is kept: one file an order (``--sort``, ``--reverse``), each
    holding every paper; ``--year`` and ``--limit`` are cut from it (``cut``)."""
    check_sort(sort)                # a name of a column, never a path
    return cache_dir / f"listing-{sort}{'-reverse' if reverse else ''}.marshal"


def cache_key(listing_version: str, sort: str = "added", reverse: bool = False) -> tuple:
    return (_FORMAT, listing_version, sort, reverse)


def cut(body: str, year: int | None, limit: int | None) -> str:
    """The lines of a whole listing that ``--year`` and ``--limit`` keep (the year is a line's third cell)."""
    if year is None and limit is None:
        return body
    if not body:
        return body
    if year is None:
        return "\n".join(body.split("\n", limit)[:limit])
    wanted = str(year)
    lines = [line for line in body.split("\n") if line.split("\t", 3)[2] == wanted]
    return "\n".join(lines[:limit] if limit else lines)


def _order(sort: str, reverse: bool) -> str:
    return f"ORDER BY {sort} {'DESC' if check_sort(sort) != reverse else 'ASC'}, slug ASC"


def _clean(body: str, count: int) -> bool:
    """Whether ``count`` joined lines hold nothing ``kb.cli.output.tsv_line`` would fold: whole-text
    scans in C for as many tabs and line breaks as 8 cells a line need, no CR, no run of spaces, no
    space beside a tab or at a line's end, no other whitespace anywhere."""
    spaces = _ASCII_SPACES if body.isascii() else _WHITESPACE
    return not (body.count("\t") != 7 * count or body.count("\n") != max(count - 1, 0)
                or any(mark in body for mark in ("\r", "  ", " \t", "\t ", " \n", "\n "))
                or body.startswith(" ") or body.endswith(" ") or any(space in body for space in spaces))


def join_lines(connection: sqlite3.Connection, *, year: int | None = None, sort: str = "added", reverse: bool = False,
               limit: int | None = None) -> str | None:
    """Every listed paper's line, in ``kb.queries.list_papers``' order, joined by line breaks; None when
    a cell holds what a pipe listing folds (the caller lists through ``list_papers`` then)."""
    where = "WHERE year = :year" if year is not None else ""
    body, count = connection.execute(
        f"SELECT group_concat(line, char(10)), count(*) FROM (SELECT {_LINE} AS line FROM paper {where} "
        f"{_order(sort, reverse)}{' LIMIT :limit' if limit else ''})", {"year": year, "limit": limit}).fetchone()
    body = body or ""
    return body if _clean(body, count) else None


def patched(connection: sqlite3.Connection, body: str, paper_ids: set[int]) -> str | None:
    """The default listing ``body`` (every paper, newest added first) with the lines of ``paper_ids``
    joined again and every line where the catalog now orders it; None when ``body`` lacks a line of a
    paper not in ``paper_ids`` (it is not this catalog's listing) or a new line would be folded."""
    marks = ", ".join("?" * len(paper_ids))
    fresh = dict(connection.execute(f"SELECT slug, {_LINE} FROM paper WHERE id IN ({marks})", sorted(paper_ids)))
    if fresh and not _clean("\n".join(fresh.values()), len(fresh)):
        return None
    kept = {line[:line.index("\t")]: line for line in body.split("\n")} if body else {}
    lines = []
    for (slug,) in connection.execute(f"SELECT slug FROM paper {_order('added', False)}"):
        line = fresh.get(slug) or kept.get(slug)
        if line is None:
            return None
        lines.append(line)
    return "\n".join(lines)


class Keeper:
    """Follows one SQLite write transaction (its ``sqlite3`` connection, after BEGIN IMMEDIATE) and
    keeps ``kb list``'s listing up to date across it (the module docstring says when it can)."""

    def __init__(self, connection: sqlite3.Connection, cache_dir: Path | None) -> None:
        self.connection = connection
        self.path = kept_at(cache_dir) if cache_dir is not None else None
        self.before = version(connection) if self.path is not None else None
        self.changed: set[int] = set()      # the papers whose lines the transaction changed
        self.rows = 0                       # paper and note rows it wrote, as the triggers count them
        self.unknown = self.before is None  # a change it could not follow
        self.result: tuple[tuple, str] | None = None

    def saw(self, paper_ids: set[int], rows: int) -> None:
        """A flush wrote ``rows`` rows of papers and notes, changing the lines of ``paper_ids``."""
        self.changed |= paper_ids
        self.rows += rows

    def lost(self) -> None:
        """The transaction changed papers or notes in a way not followed (a bulk statement)."""
        self.unknown = True

    def prepare(self) -> None:
        """Before the commit, under the write lock: the patched listing, when the kept one is of the
        version this transaction started from and every counted change was seen."""
        from kb import cache

        if self.unknown or not self.rows:
            return
        after = version(self.connection)
        if after is None or int(after) - int(self.before) != self.rows:
            return
        body = cache.read(self.path, cache_key(self.before))
        if body is None:
            return
        new = patched(self.connection, body, self.changed)
        if new is not None:
            self.result = (cache_key(after), new)

    def committed(self) -> None:
        """After the commit: keep the patched listing (a reader that joined a newer one meanwhile keeps
        its own under its version; this one's is then never read)."""
        from kb import cache

        if self.result is not None:
            cache.write(self.path, *self.result)

