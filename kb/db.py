"""Engine and sessions for the catalog; the schema version check.

SQLite gets WAL, a busy timeout and foreign keys; any other SQLAlchemy URL (PostgreSQL for a
lab's shared catalog) works through the same code.
"""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

from kb import models
from kb.errors import KBError, SchemaError
from kb.models import SCHEMA_VERSION, Meta
from kb.settings import Settings


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            if url in ("sqlite://", "sqlite:///:memory:"):
                engine = create_engine(url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
            else:
                if "uri=true" not in url:  # a read_only_url names a catalog that exists
                    Path(url.split("///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        return create_engine(url, pool_pre_ping=True)
    except (ArgumentError, ImportError) as exc:
        raise KBError(f"KB_DATABASE_URL {url!r} cannot be used: {exc}") from None


@lru_cache(maxsize=8)
def _ready_engine(url: str) -> Engine:
    engine = make_engine(url)
    init_schema(engine)
    return engine


def read_only_url(url: str) -> str | None:
    """A URL that opens an SQLite catalog this user cannot write, for reading; None when writable.

    WAL mode keeps ``-shm`` and ``-wal`` files beside the catalog. ``mode=ro`` reads through them
    (creating them when the folder is writable, reading them when a process that ended unclean
    left them); in a folder the user cannot write and without them, ``immutable=1`` reads the file
    as it is (nobody can be writing it). Writes through such an engine fail with "attempt to write
    a readonly database".
    """
    if not url.startswith("sqlite:///") or url == "sqlite:///:memory:":
        return None
    path = Path(url.split("///", 1)[1])
    if not path.is_file() or os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return None
    wal = path.with_name(path.name + "-wal")
    mode = "mode=ro" if os.access(path.parent, os.W_OK) or wal.exists() else "immutable=1"
    return f"sqlite:///file:{quote(str(path))}?{mode}&uri=true"


def engine_for(settings: Settings) -> Engine:
    return _ready_engine(read_only_url(settings.database_url) or settings.database_url)


def init_schema(engine: Engine) -> None:
    """Create a new catalog, bring an older kb catalog up to date, or start over from a corrupt one.

    - No tables: every table and the schema version.
    - A kb catalog of this schema: tables added since appear (``create_all``).
    - A kb catalog of an older schema: migrated in place (``_migrate``); one line says so.
    - A kb catalog of a newer schema, or a database that is not kb's (tables, no ``kb_meta``):
      refused and left alone (a lab's PostgreSQL is never touched).
    - An SQLite file that is not a database or is damaged: moved aside to
      ``<name>.corrupt-<time>`` and a new catalog started; one line says so, and ``kb sync``
      rebuilds it from the files (papers/, the run folders, schedules.json).

    Runs in one locked transaction (SQLite's write lock, a PostgreSQL advisory lock), so several
    kb processes starting on a new or older catalog at once create or migrate it exactly once.
    """
    where = engine.url.render_as_string(hide_password=True)
    try:
        _create_or_migrate(engine, where)
    except (DatabaseError, OperationalError) as exc:
        reason = _reason(exc)
        path = _sqlite_file(engine)
        if path is None or not any(sign in reason for sign in _CORRUPT):
            raise SchemaError(f"the catalog at {where} cannot be opened ({reason}); check KB_DATABASE_URL, "
                              "or that the file is a kb catalog") from None
        engine.dispose()
        moved = _move_aside(path)
        _log.warning(f"kb: the catalog {path} was damaged ({reason}); moved it to {moved.name} and started a new one: "
                     "`kb sync` rebuilds it from papers/, the run folders and schedules.json (not the job queue, "
                     "which lived only in it)")
        _create_or_migrate(engine, where)


_log = logging.getLogger("kb.db")
# The schema of SQLite's search index as it is (kb/textindex.py): older ones are indexed anew.
_SEARCH_INDEX = 6
# What SQLite says of a file that is not a database, or of a damaged or truncated one.
_CORRUPT = ("file is not a database", "database disk image is malformed")


def _create_or_migrate(engine: Engine, where: str) -> None:
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif engine.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(2718281828)")
        tables = set(inspect(conn).get_table_names())
        if tables and "kb_meta" not in tables:
            raise SchemaError(f"the database at {where} is not a kb catalog (tables: {', '.join(sorted(tables)[:5])}); "
                              "point KB_DATABASE_URL elsewhere")
        found = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar() if tables else None
        if tables and not (found or "").isdigit():
            raise SchemaError(f"the catalog at {where} has no schema version (kb_meta holds {found!r}); "
                              "point KB_DATABASE_URL elsewhere")
        if tables and int(found) > SCHEMA_VERSION:
            raise SchemaError(f"the catalog at {where} has schema version {found}, newer than this kb's "
                              f"{SCHEMA_VERSION} (a newer kb wrote it): upgrade kb, or point KB_DATABASE_URL elsewhere")
        added = None
        if tables and int(found) < SCHEMA_VERSION:
            try:
                added = _migrate(conn, where, int(found))
            except (DatabaseError, OperationalError) as exc:
                raise SchemaError(f"the catalog at {where} has schema version {found} and could not be migrated "
                                  f"to {SCHEMA_VERSION} ({_reason(exc)}); run any kb command once as a user who may "
                                  "change its tables (its owner), or point KB_DATABASE_URL elsewhere") from None
        # New catalogs get every table; tables added within a schema version appear on demand.
        SQLModel.metadata.create_all(conn)
        if engine.dialect.name == "sqlite":
            _count_changes(conn)
        if added is not None and engine.dialect.name == "sqlite" and int(found) < _SEARCH_INDEX:
            from kb.search import rebuild_sqlite_index

            added.append(f"a search index of {rebuild_sqlite_index(conn)} papers")
        if not tables:
            conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
        elif added is not None:
            conn.execute(Meta.__table__.update().where(Meta.key == "schema_version").values(value=str(SCHEMA_VERSION)))
        conn.commit()
    if added is not None:
        _log.warning(f"kb: migrated the catalog at {where} from schema {found} to {SCHEMA_VERSION}"
                     + (f" (added {', '.join(added)})" if added else "") + "; nothing in it was lost")


# kb_meta's "listing_version" counts the changes of the tables ``kb list`` shows (papers and their
# notes' languages), so that kb.reader can keep a listing until they change (issue 21).
_LISTED = ("paper", "note")


def _count_changes(conn) -> None:
    """SQLite: triggers that count every change of a listed table in kb_meta's listing_version.
    Written only where missing: a read-only catalog that has them opens as it is."""
    triggers = {name for (name,) in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    if not conn.exec_driver_sql("SELECT 1 FROM kb_meta WHERE key = 'listing_version'").first():
        conn.exec_driver_sql("INSERT INTO kb_meta(key, value) VALUES ('listing_version', '0')")
    for table in _LISTED:
        for change in ("INSERT", "UPDATE", "DELETE"):
            if f"kb_listing_{table}_{change.lower()}" in triggers:
                continue
            conn.exec_driver_sql(
                f"CREATE TRIGGER IF NOT EXISTS kb_listing_{table}_{change.lower()} AFTER {change} ON {table} BEGIN "
                "UPDATE kb_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'listing_version'; END")


def _reason(exc: DatabaseError) -> str:
    return str(exc.orig).splitlines()[0] if getattr(exc, "orig", None) else str(exc).splitlines()[0]


def _migrate(conn, where: str, found: int) -> list[str]:
    """Add the columns an older catalog's tables lack, each filled with its field's default
    (``create_all`` adds missing tables). Every change between schema versions so far adds;
    returns the columns added, as ``table.column``."""
    inspector = inspect(conn)
    preparer = conn.dialect.identifier_preparer
    added = []
    for model in _table_models():
        table = model.__table__
        if not inspector.has_table(table.name):
            continue
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in (c for c in table.columns if c.name not in present):
            field = model.model_fields[column.name]
            if field.is_required():
                raise SchemaError(f"the catalog at {where} has schema version {found}, and {table.name}.{column.name} "
                                  "has no default to fill it with; this kb cannot migrate it (report it as a kb bug)")
            conn.exec_driver_sql(f"ALTER TABLE {preparer.format_table(table)} ADD COLUMN "
                                 f"{preparer.format_column(column)} {column.type.compile(dialect=conn.dialect)}")
            default = field.get_default(call_default_factory=True)
            if default is not None:
                conn.execute(table.update().values({column.name: default}))
            for index in table.indexes:
                if column.name in index.columns:
                    index.create(conn)
            added.append(f"{table.name}.{column.name}")
    return added


def _table_models() -> list[type[SQLModel]]:
    return [value for value in vars(models).values()
            if isinstance(value, type) and issubclass(value, SQLModel) and hasattr(value, "__table__")]


def _sqlite_file(engine: Engine) -> Path | None:
    """The file of an SQLite catalog that kb may move aside (not an in-memory or read-only one)."""
    if engine.dialect.name != "sqlite" or not engine.url.database or engine.url.database == ":memory:" \
            or engine.url.query.get("uri"):
        return None
    return Path(engine.url.database)


def _move_aside(path: Path) -> Path:
    """Rename the catalog (and its WAL files) to ``<name>.corrupt-<UTC time>``; returns the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    target, number = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while target.exists():          # never over an earlier one moved aside in the same second
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    try:
        for suffix in ("", "-wal", "-shm"):
            source = path.with_name(path.name + suffix)
            if source.exists():
                source.rename(target.with_name(target.name + suffix))
    except OSError as exc:
        raise SchemaError(f"the catalog {path} is damaged and cannot be moved aside ({exc.strerror}); "
                          "move it away by hand and run `kb sync`") from None
    return target


_WRITE_LOCK = 2718281829       # PostgreSQL advisory lock of write scopes (init_schema's is ...828)


@contextmanager
def session_scope(settings: Settings, *, write: bool = False) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on any error.

    ``write=True`` takes the catalog's write lock at the start (SQLite's BEGIN IMMEDIATE, a
    PostgreSQL advisory lock held to the end of the transaction), so two commands that read
    files or rows, then write (``kb sync`` and ``kb add`` at once) run one after the other
    instead of both deciding from the same old state.
    """
    session = Session(engine_for(settings), expire_on_commit=False)
    keeper = None
    try:
        if write:
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
                keeper = _keep_listing(settings, session=session)
            elif dialect == "postgresql":
                session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
        yield session
        if keeper is not None:
            session.flush()
            _quietly(keeper.prepare)
        session.commit()
        if keeper is not None:
            _quietly(keeper.committed)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _keep_listing(settings: Settings, *, session: Session):
    """A ``kb.listing.Keeper`` for this write transaction, told of every paper and note row each
    flush writes and of any statement that could change them unseen (it then keeps nothing)."""
    import sqlite3
    from itertools import chain

    from kb.listing import Keeper

    try:
        keeper = Keeper(session.connection().connection.dbapi_connection, settings.cache_dir)
    except sqlite3.Error:
        return None

    @event.listens_for(session, "after_flush")
    def flushed(_flushed, _context) -> None:      # (SQLAlchemy's signature; the session is this one)
        # Still the state before the flush here: new, dirty and deleted as they were, with their history.
        if keeper.unknown:
            return                  # nothing will be kept: a bulk statement (kb sync's) came first
        papers, rows = set(), 0
        new, dirty, deleted = session.new, session.dirty, session.deleted     # (each call walks the session)
        for row in chain(new, dirty, deleted):
            if not isinstance(row, models.Paper | models.Note):
                continue
            rows += row in new or row in deleted or session.is_modified(row)
            if isinstance(row, models.Paper):
                papers.add(row.id)
            else:
                papers.update(p for p in (row.paper_id, *inspect(row).attrs.paper_id.history.deleted) if p is not None)
        keeper.saw(papers, rows)

    @event.listens_for(session, "do_orm_execute")
    def executed(state) -> None:
        if not state.is_select:
            keeper.lost()           # a bulk insert, update or delete: its rows are not known here

    return keeper


def _quietly(step) -> None:
    """A step of keeping kb list's listing: one that fails keeps nothing (the next kb list joins it)."""
    import sqlite3

    try:
        step()
    except (sqlite3.Error, OSError, ValueError):
        pass
