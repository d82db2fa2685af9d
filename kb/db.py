"""Engine and sessions for the catalog; the schema version check.

SQLite gets WAL, a busy timeout and foreign keys; any other SQLAlchemy URL (PostgreSQL for a
lab's shared catalog) works through the same code.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine, select

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
    """Create the tables of a new catalog, or check that an existing one is ours and current.

    Runs in one locked transaction (SQLite's write lock, a PostgreSQL advisory lock), so several
    kb processes starting on a new catalog at once create it exactly once.
    """
    where = engine.url.render_as_string(hide_password=True)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            elif engine.dialect.name == "postgresql":
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(2718281828)")
            tables = set(inspect(conn).get_table_names())
            if tables and "kb_meta" not in tables:
                raise SchemaError(f"the database at {where} is not a kb catalog (tables: {', '.join(sorted(tables)[:5])}); point KB_DATABASE_URL elsewhere")
            if tables:
                found = conn.execute(select(Meta.value).where(Meta.key == "schema_version")).scalar()
                if found != str(SCHEMA_VERSION):
                    raise SchemaError(
                        f"the catalog at {where} has schema version {found}, this kb needs {SCHEMA_VERSION}; "
                        "move it aside and run `kb sync` to rebuild it from papers/ (export runs first with `kb runs export`)"
                    )
            # New catalogs get every table; tables added within a schema version appear on demand.
            SQLModel.metadata.create_all(conn)
            if not tables:
                conn.execute(Meta.__table__.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            conn.commit()
    except (DatabaseError, OperationalError) as exc:
        reason = str(exc.orig).splitlines()[0] if getattr(exc, "orig", None) else str(exc).splitlines()[0]
        raise SchemaError(f"the catalog at {where} cannot be opened ({reason}); check KB_DATABASE_URL, or that the file is a kb catalog") from None


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
    try:
        if write:
            dialect = session.get_bind().dialect.name
            if dialect == "sqlite":
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            elif dialect == "postgresql":
                session.connection().exec_driver_sql(f"SELECT pg_advisory_xact_lock({_WRITE_LOCK})")
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
