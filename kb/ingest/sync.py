"""``kb sync``: the catalog rebuilt from the files under ``papers/`` (no network, idempotent).

A folder is read again only when its files changed since the sync that loaded it. ``source_file``
keeps each file's size, modification and change times and inode as that sync saw them, and the
folder's own and its ``notes/``'s (their times change when a file is added, removed or renamed);
a file whose stat differs is read and its digest compared before its folder counts as changed (a
``touch``, a fresh clone, ``git checkout`` of the same text). A time stamp cannot tell apart an
edit made within the same clock tick as the read that recorded it, so, as git's index does with
"racily clean" entries, a file modified less than ``_RACY_NS`` before the sync began is recorded
without its time (0) and compared by digest next time.

The folders that changed are loaded in bulk, inside the one write transaction: Core statements of
many rows each, and the search index written once for all of them at the end.
"""

import gc
import hashlib
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlmodel import Session

from kb import parallel
from kb.errors import KBError, NotFound
from kb.feed.decisions import reload_feed_files
from kb.files import FileChanges, transaction, write_atomic
from kb.ingest.notes import NOTE_IDENTITY, note_values, read_notes
from kb.models import Note, Paper, SourceFile, utcnow
from kb.paperfile import PaperFile, note_names, parse_paper_yaml
from kb.runs.record_file import is_run_folder
from kb.runs.records import import_runs, rejudge, write_missing_records
from kb.schedules import load_schedules
from kb.search import Prepared, index_papers, unindex_papers
from kb.settings import Settings

_RACY_NS = 2_000_000_000        # FAT's time stamps are 2 s apart; every other file system's are finer
_CHUNK = 500                    # ids per IN (...) list
# Folders to read from which worker processes read and parse them (``_Reader``), and how many a
# worker takes at once: a forked worker starts in milliseconds, a folder takes about one.
_PARALLEL_FROM = 1000
_READ_BATCH = 64
_MAX_WORKERS = 8


@dataclass
class SyncReport:
    papers: int = 0
    notes: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    runs_imported: int = 0
    schedules_imported: int = 0
    verdicts_updated: int = 0
    problems: list[str] = field(default_factory=list)


class _Known(NamedTuple):
    """A paper the catalog has."""

    id: int
    key: str
    slug: str


@dataclass
class _Folder:
    """One paper folder as this sync found it."""

    name: str
    key: str                                   # its paper's id ("" until its paper.yaml is parsed)
    stats: dict[str, os.stat_result]           # path under papers/ (folders end in /) -> its stat
    digests: dict[str, str | None]             # the files' digests (None: could not be read)
    paper_id: int | None = None                # its paper's row, when the catalog has one
    same_stats: bool = False                   # every stat as recorded: nothing to write
    paper_file: PaperFile | None = None        # parsed when its files changed, else None
    read: "_Read | None" = None                # its files as read, when they changed


@dataclass
class _Read:
    """One changed folder's files, read and parsed (``_read_folder``), in a worker process when a
    sync reads many: ``paper.yaml`` (or why it could not be read), its notes, its index entry."""

    paper_file: PaperFile | None = None
    digests: dict[str, str | None] = field(default_factory=dict)   # of paper.yaml's text and the note files' bytes, as parsed
    problem: str | None = None                 # why paper.yaml could not be read
    notes: dict[str, dict | None] = field(default_factory=dict)    # path -> its row's note_values (None: unreadable)
    note_problems: list[str] = field(default_factory=list)
    prepared: Prepared | None = None           # its index entry, from these files


def _read_folder(settings: Settings, files: FileChanges, name: str, notes: list[str]) -> _Read:
    """``name``'s files: ``paper.yaml`` and the note files ``notes`` (paths under papers/, as listed)."""
    read, relative = _Read(), f"{name}/paper.yaml"
    try:
        text = files.read(relative)
        read.paper_file = parse_paper_yaml(text or "", where=files.name(relative), folder_slug=name)
    except KBError as exc:
        read.problem = str(exc)
        return read
    read.digests[relative] = hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
    parsed, read.note_problems = read_notes(settings.papers, notes, read.digests)
    read.notes = {path: None if note is None else note_values(note, note.source) for path, note in parsed.items()}
    paper = read.paper_file
    row = SimpleNamespace(title=paper.title, slug=paper.slug, **paper.fields)   # the row kb sync writes
    read.prepared = Prepared.of(row, [note for note in parsed.values() if note is not None])
    return read


def _read_folders(settings: Settings, folders: list[tuple[str, list[str]]]) -> list[_Read]:
    files = FileChanges(settings.papers)
    return [_read_folder(settings, files, name, notes) for name, notes in folders]


def _note_paths(folder: _Folder) -> list[str]:
    """The note files ``_listed`` found in the folder (in ``note_names``' order)."""
    return [path for path in folder.stats if not path.endswith("/") and not path.endswith("/paper.yaml")]


class _Reader:
    """Reads the changed folders a scan finds: in this process, or, when the sync has many folders
    and the machine several CPUs, in worker processes (at most ``_MAX_WORKERS``: past that the
    writing process is what takes the time), ``_READ_BATCH`` folders at a time while the scan goes
    on. ``done()`` and ``rest()`` give each folder with its ``_Read``, in the order they were added.
    Should the workers die (killed for memory), the folders they had are read in this process."""

    def __init__(self, settings: Settings, files: FileChanges, folders: int) -> None:
        self.settings, self.files = settings, files
        self.workers = min(parallel.cores(), _MAX_WORKERS) if folders >= _PARALLEL_FROM else 1
        self.pending: list[_Folder] = []
        self.batches: deque[tuple[list[_Folder], Any]] = deque()      # folders, their future
        self.pool = None

    def add(self, folder: _Folder) -> None:
        self.pending.append(folder)
        if self.workers > 1 and len(self.pending) >= _READ_BATCH:
            if self.pool is None:
                self.pool = parallel.pool(self.workers)
            batch, self.pending = self.pending, []
            self.batches.append((batch, self.pool.submit(_read_folders, self.settings,
                                                         [(f.name, _note_paths(f)) for f in batch])))

    def _here(self, batch: list[_Folder]) -> list[_Read]:
        return [_read_folder(self.settings, self.files, folder.name, _note_paths(folder)) for folder in batch]

    def done(self) -> Iterator[tuple[_Folder, _Read]]:
        """The folders of the batches read so far (without waiting)."""
        while self.batches and self.batches[0][1].done():
            yield from self._next()

    def _next(self) -> Iterator[tuple[_Folder, _Read]]:
        batch, future = self.batches.popleft()
        try:
            reads = future.result()
        except BrokenProcessPool:
            reads = self._here(batch)
        yield from zip(batch, reads)

    def rest(self) -> Iterator[tuple[_Folder, _Read]]:
        try:
            while self.batches:
                yield from self._next()
            yield from zip(self.pending, self._here(self.pending))
        finally:
            if self.pool is not None:
                self.pool.shutdown(cancel_futures=True)


def sync(settings: Settings, *, progress: Callable[[int, int], None] | None = None) -> SyncReport:
    """Bring the catalog's papers and notes to what ``papers/`` holds (no network, idempotent).

    The folders are read inside the write transaction, so a ``kb add`` or ``kb tag`` running at
    the same time lands wholly before or after this sync, never half in its view. A broken
    ``paper.yaml`` or note is named in ``problems`` and skipped (a paper already in the catalog
    stays as it was), on every sync until it is fixed; everything else still loads.
    ``progress(done, total)`` is called as the folders are looked at.
    """
    if not settings.papers.is_dir():
        raise NotFound(f"papers folder {settings.papers} does not exist; set KB_PAPERS or run kb inside a kb project")
    # A sync keeps every changed folder's parse until it is written: millions of objects at 100k
    # papers, which Python's cycle collector would walk again and again (~10% of a rebuild). A
    # sync makes few cycles; they are collected after it.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _sync(settings, progress)
    finally:
        if collecting:
            gc.enable()


def _sync(settings: Settings, progress: Callable[[int, int], None] | None) -> SyncReport:
    report = SyncReport()
    started = time.time_ns()
    with transaction(settings) as (session, files):
        # Plain DB-API rows: a no-change sync of a large papers/ spends much of its time reading these.
        cursor = session.connection().connection.cursor()
        cursor.execute("SELECT id, key, slug FROM paper")
        papers = {row[1]: _Known(*row) for row in cursor.fetchall()}
        by_slug = {row.slug: row for row in papers.values()}
        recorded: dict[int, dict[str, tuple]] = {}      # paper id -> path -> (size, mtime, ctime, inode, digest)
        cursor.execute("SELECT paper_id, path, size, mtime_ns, ctime_ns, inode, digest FROM source_file")
        for row in cursor.fetchall():
            recorded.setdefault(row[0], {})[row[1]] = row[2:]
        cursor.close()
        folders, exports, unreadable = _scan(settings, files, by_slug, recorded, report, progress)
        kept = _claims(folders, papers, files, report)
        gone = [row.id for key, row in papers.items() if key not in kept and row.slug not in unreadable]
        unindex_papers(gone, session=session)
        for start in range(0, len(gone), _CHUNK):
            session.execute(delete(Paper.__table__).where(Paper.id.in_(gone[start : start + _CHUNK])))
        report.removed = len(gone)
        loaded = [folder for folder in kept.values() if folder.paper_file is not None]
        ids = _write_papers(settings, loaded, papers, report, session=session)
        sound, fresh = _write_notes(settings, loaded, ids, report, session=session)
        ready = {ids[folder.key]: folder.read.prepared for folder in loaded}
        index_papers(list(ids.values()), session=session, ready=ready, exact=fresh)
        _record(kept.values(), ids, sound, started, session=session)
        report.papers = len(kept)
        report.notes = session.execute(select(func.count()).select_from(Note.__table__)).scalar_one()
        _import_committed_runs(settings, exports, report, session=session)
        session.flush()
        report.verdicts_updated = rejudge(session=session)
        reload_feed_files(settings, session=session)
    return report


class FirstSeen:
    """When kb first saw each paper whose ``paper.yaml`` has no ``added:`` (``KB_HOME/first_seen.json``).

    kb never writes ``added:`` into a hand-written file, so the date lives in a machine-local file
    instead of only in the catalog: a catalog rebuilt from files gets the same dates back.
    """

    def __init__(self, settings: Settings) -> None:
        self.path = settings.home / "first_seen.json"
        self.days: dict[str, str] = {}
        if self.path.exists():
            try:
                self.days = dict(json.loads(self.path.read_text(encoding="utf-8")))
            except (OSError, ValueError, TypeError):
                self.days = {}          # unreadable: the catalog's dates stand, and it is written anew
        self.changed = False

    def get(self, key: str, default: datetime) -> datetime:
        if key in self.days:
            try:
                return datetime.fromisoformat(self.days[key])
            except ValueError:
                pass
        self.days[key] = default.isoformat()
        self.changed = True
        return default

    def save(self) -> None:
        if self.changed:
            write_atomic(self.path, json.dumps(dict(sorted(self.days.items())), indent=0) + "\n")


def _same(recorded: tuple, stat: os.stat_result | None) -> bool:
    """The file's stat is the recorded one; a racy record (time 0) never is."""
    return stat is not None and recorded[1] != 0 and recorded[:4] == \
        (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino)


def _stat(path: Path | str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _digests(root: Path, stats: dict[str, os.stat_result | None], rows: dict) -> dict[str, str | None]:
    """Each file's digest: the recorded one where its stat is as recorded, else of its bytes now."""
    digests: dict[str, str | None] = {}
    for path, stat in stats.items():
        if path.endswith("/"):
            continue
        if path in rows and _same(rows[path], stat):
            digests[path] = rows[path][4]
            continue
        try:
            with open(f"{root}/{path}", "rb") as source:
                digests[path] = hashlib.blake2b(source.read(), digest_size=16).hexdigest()
        except OSError:
            digests[path] = None
    return digests


def _as_recorded(folder: _Folder, rows: dict) -> bool:
    """The folder holds the recorded files with the recorded bytes (its stats may differ)."""
    return bool(rows) and set(folder.stats) == set(rows) and \
        all(digest is not None and digest == rows[path][4] for path, digest in folder.digests.items())


def _scan(settings: Settings, files: FileChanges, by_slug: dict, recorded: dict[int, dict], report: SyncReport,
          progress: Callable[[int, int], None] | None) -> tuple[list[_Folder], list[Path], set[str]]:
    """The paper folders, each as recorded or parsed; the committed run exports; the folders whose
    ``paper.yaml`` could not be read.

    A folder whose own stat and its recorded sub-folders' (``notes/``, ``runs/``) are as recorded
    holds the recorded files, so only those are looked at; any other folder is listed (and swept
    of what a killed write left in it).
    """
    root = files.root
    with os.scandir(root) as entries:
        names = sorted(entry.name for entry in entries if entry.is_dir() and not entry.name.startswith("."))
    folders, exports, unreadable = [], [], set()
    reader = _Reader(settings, files, len(names))
    looked_at = 0           # folders as recorded, or read and parsed

    def loaded(reads: Iterator[tuple[_Folder, _Read]]) -> None:
        nonlocal looked_at
        for folder, read in reads:
            looked_at += 1
            if progress is not None:
                progress(looked_at, len(names))
            if read.problem is not None:
                report.problems.append(read.problem)
                unreadable.add(folder.name)
                continue
            folder.read, folder.paper_file, folder.key = read, read.paper_file, read.paper_file.key
            folder.digests.update(read.digests)         # of what was parsed
            folders.append(folder)

    for name in names:
        loaded(reader.done())
        looked_at += 1
        if progress is not None:
            progress(looked_at, len(names))
        if name.startswith("_"):
            exports += sorted((root / name / "runs").glob("*.json"))
            continue
        paper = by_slug.get(name)
        rows = recorded.get(paper.id, {}) if paper is not None else {}
        if rows:
            stats = {path: _stat(f"{root}/{path}") for path in rows}
            same = all(_same(rows[path], stat) for path, stat in stats.items())
            if same or all(_same(rows[path], stats[path]) for path in rows if path.endswith("/")):
                # The listings are as recorded, so are the files: a file whose stat moved counts by its bytes.
                folder = _Folder(name, paper.key, stats, {} if same else _digests(root, stats, rows), paper.id, same)
                if same or _as_recorded(folder, rows):
                    folders.append(folder)
                    if f"{name}/runs/" in rows:
                        exports += sorted((root / name / "runs").glob("*.json"))
                    continue
        folder = _listed(files, name, paper, rows, report)
        if folder is None:
            continue
        if f"{name}/runs/" in folder.stats:
            exports += sorted((root / name / "runs").glob("*.json"))
        if _as_recorded(folder, rows):
            folders.append(folder)
            continue
        looked_at -= 1          # counted once read
        reader.add(folder)
    loaded(reader.rest())
    folders.sort(key=lambda folder: folder.name)         # in name order, as they were listed: _claims keeps the first
    return folders, exports, unreadable


def _listed(files: FileChanges, name: str, paper, rows: dict, report: SyncReport) -> _Folder | None:
    """A folder whose listing may have changed, listed: its sub-folders, ``paper.yaml`` and note files
    (``note_names``: what ``read_folder_notes`` reads) with their stats; None without ``paper.yaml``."""
    root = files.root
    listing = os.listdir(f"{root}/{name}")
    inside = os.listdir(f"{root}/{name}/notes") if "notes" in listing else []
    if not listing or "notes" in listing and not inside or \
            any(entry.startswith(".") and entry.endswith(".tmp") for entry in [*listing, *inside]):
        files.sweep(name)       # what a killed write left; the folder itself when nothing else is in it
        if not os.path.isdir(f"{root}/{name}"):
            return None
        listing = os.listdir(f"{root}/{name}")
        inside = os.listdir(f"{root}/{name}/notes") if "notes" in listing else []
    if "paper.yaml" not in listing:
        if set(listing) != {"runs"}:        # only runs/: what kb remove kept
            report.problems.append(f"{files.name(name)}/: no paper.yaml")
        return None
    paths = [f"{name}/"] + [f"{name}/{sub}/" for sub in ("notes", "runs") if sub in listing]
    paths += [f"{name}/paper.yaml"] + [f"{name}/{note}" for note in note_names(listing, inside)]
    stats = {path: stat for path in paths if (stat := _stat(f"{root}/{path}")) is not None}
    folder = _Folder(name, paper.key if paper is not None else "", stats, {}, paper.id if paper is not None else None)
    if rows:        # else none is compared: the files are digested as they are read and parsed
        folder.digests = _digests(root, stats, rows)
    return folder


def _claims(folders: list[_Folder], papers: dict, files: FileChanges, report: SyncReport) -> dict[str, _Folder]:
    """The folder kept for each paper id.

    Two folders with one id: both are named, and the one the catalog has under that id stays
    (on a new catalog, the first slug in order); the other is skipped.
    """
    kept: dict[str, _Folder] = {}
    claims: dict[str, list[_Folder]] = {}     # the ids two or more folders claim
    for folder in folders:
        if folder.key in kept:
            claims.setdefault(folder.key, [kept[folder.key]]).append(folder)
        else:
            kept[folder.key] = folder
    for key in [key for key in kept if key in claims]:      # in the order the folders came
        claimants = claims[key]
        had = papers[key].slug if key in papers else None
        chosen = kept[key] = next((c for c in claimants if c.name == had), claimants[0])
        others = [files.name(f"{c.name}/paper.yaml") for c in claimants if c is not chosen]
        report.problems.append(
            f"{', '.join(others)}: id {key} is also in {files.name(chosen.name + '/paper.yaml')}, which the catalog "
            f"keeps; skipped (give each folder its own paper's id)")
    return kept


def _write_papers(settings: Settings, loaded: list[_Folder], papers: dict, report: SyncReport, *,
                  session: Session) -> dict[str, int]:
    """Insert or update the paper rows of the folders read; returns their ids by key."""
    table = Paper.__table__
    first_seen = FirstSeen(settings)
    old = {}
    known = [papers[f.key].id for f in loaded if f.key in papers]
    for start in range(0, len(known), _CHUNK):
        old.update((row.id, row) for row in session.execute(select(table).where(table.c.id.in_(known[start : start + _CHUNK]))))
    updates, inserts, now = [], [], utcnow()
    for folder in loaded:
        paper_file = folder.paper_file
        values = {"slug": paper_file.slug, "title": paper_file.title, **paper_file.fields}
        row = old.get(papers[folder.key].id) if folder.key in papers else None
        if "added" not in paper_file.fields:       # a hand-written paper.yaml: the day kb first saw it
            seen = first_seen.get(folder.key, row.added if row is not None else now)
            values["added"] = seen if row is None else row.added
        if row is None:
            inserts.append({"key": folder.key, **values})
            continue
        report.updated += any(getattr(row, name) != value for name, value in values.items() if name != "added")
        updates.append({"row_id": row.id, **values})
    if updates:
        session.execute(update(table).where(table.c.id == bindparam("row_id")), updates)
    if inserts:
        session.execute(insert(table), inserts)
    report.added = len(inserts)
    first_seen.save()
    keys = [folder.key for folder in loaded]
    ids = {}
    for start in range(0, len(keys), _CHUNK):
        ids.update(session.execute(select(table.c.key, table.c.id).where(table.c.key.in_(keys[start : start + _CHUNK]))).all())
    return ids


def _write_notes(settings: Settings, loaded: list[_Folder], ids: dict[str, int], report: SyncReport, *,
                 session: Session) -> tuple[set[str], set[int]]:
    """Make the note rows of the folders read equal their note files (an unreadable file's row stays
    as it was); returns the folders whose notes all read, and the papers whose note rows are all
    new, in the order of their files (their index entry is the one worked out from the files)."""
    table = Note.__table__
    paper_ids = [ids[folder.key] for folder in loaded]
    rows: dict[int, dict[str, object]] = {}
    for start in range(0, len(paper_ids), _CHUNK):
        query = select(table.c.id, table.c.paper_id, table.c.path, *(table.c[name] for name in NOTE_IDENTITY))
        for row in session.execute(query.where(table.c.paper_id.in_(paper_ids[start : start + _CHUNK]))):
            rows.setdefault(row.paper_id, {})[row.path] = row
    sound, fresh, inserts, updates, gone, now = set(), set(), [], [], [], utcnow()
    for folder in loaded:
        paper_id = ids[folder.key]
        found, problems = folder.read.notes, folder.read.note_problems
        report.problems += problems
        held = rows.get(paper_id, {})
        if not problems:
            sound.add(folder.name)
            if not held:
                fresh.add(paper_id)
        for path, values in found.items():
            if values is None:
                continue
            row = held.get(path)
            if row is None:
                inserts.append({"paper_id": paper_id, "path": path, **values, "created": now, "updated": now})
            elif any(getattr(row, name) != values[name] for name in NOTE_IDENTITY):
                updates.append({"row_id": row.id, **values, "updated": now})
        gone += [row.id for path, row in held.items() if path not in found]
    for start in range(0, len(gone), _CHUNK):
        session.execute(delete(table).where(table.c.id.in_(gone[start : start + _CHUNK])))
    if updates:
        session.execute(update(table).where(table.c.id == bindparam("row_id")), updates)
    if inserts:
        session.execute(insert(table), inserts)
    papers = Paper.__table__
    most = select(func.max(table.c.star)).where(table.c.paper_id == papers.c.id).scalar_subquery()
    for start in range(0, len(paper_ids), _CHUNK):      # a paper's ★: the most any of its notes gives it
        session.execute(update(papers).where(papers.c.id.in_(paper_ids[start : start + _CHUNK]))
                        .values(star=func.coalesce(most, 0)))
    return sound, fresh


def _record(kept, ids: dict[str, int], sound: set[str], started: int, *, session: Session) -> None:
    """Record the stats of the folders read whose files all loaded, and of those whose stats moved.

    A file modified within ``_RACY_NS`` of the sync's start is recorded with time 0 (see the module
    docstring); a folder with a file that did not load is not recorded, so the next sync reads it again.
    """
    stale, rows = [], []
    for folder in kept:
        if folder.same_stats:
            continue
        paper_id = ids[folder.key] if folder.paper_file is not None else folder.paper_id
        stale.append(paper_id)
        if (folder.paper_file is not None and folder.name not in sound) or None in folder.digests.values():
            continue
        for path, stat in folder.stats.items():
            rows.append({"path": path, "paper_id": paper_id, "size": stat.st_size, "ctime_ns": stat.st_ctime_ns,
                         "mtime_ns": stat.st_mtime_ns if stat.st_mtime_ns < started - _RACY_NS else 0,
                         "inode": stat.st_ino, "digest": folder.digests.get(path, "")})
    table = SourceFile.__table__
    for start in range(0, len(stale), _CHUNK):
        session.execute(delete(table).where(table.c.paper_id.in_(stale[start : start + _CHUNK])))
    if rows:
        session.execute(insert(table), rows)


def _import_committed_runs(settings: Settings, exports: list[Path], report: SyncReport, *, session: Session) -> None:
    """Runs the catalog lacks, from the run folders in ``KB_HOME/runs/`` and the exports in
    ``papers/*/runs/`` (with their regressions), and the schedules of ``KB_HOME/schedules.json``.

    An unreadable file is named in ``report.problems`` and skipped. Run folders that only the
    catalog describes (recorded by an older kb) get their ``record.json`` written from it.
    """
    paths = list(exports)
    if settings.runs_dir.is_dir():
        paths += sorted(p for p in settings.runs_dir.iterdir() if is_run_folder(p))
    report.runs_imported, problems = import_runs(paths, replace=False, session=session)
    write_missing_records(session=session)
    report.schedules_imported, schedule_problems = load_schedules(settings, session=session)
    report.problems += problems + schedule_problems
