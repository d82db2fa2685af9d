"""``kb sync``: the catalog rebuilt from the files under ``papers/`` (no network, idempotent)."""

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, select

from kb.errors import KBError, NotFound
from kb.feed.decisions import reload_feed_files
from kb.files import FileChanges, transaction, write_atomic
from kb.ingest.notes import load_folder_notes
from kb.models import Note, Paper
from kb.paperfile import PaperFile, parse_paper_yaml
from kb.runs.record_file import is_run_folder
from kb.runs.records import import_runs, rejudge, write_missing_records
from kb.schedules import load_schedules
from kb.search import index_paper, unindex_paper
from kb.settings import Settings


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


_PAPER_FIELDS = ("title", "other_titles", "authors", "abstract", "summary", "categories", "primary_category",
                 "published", "updated", "year", "doi", "journal_ref", "comment", "venue", "tags", "runners",
                 "claims", "code", "version")


def sync(settings: Settings) -> SyncReport:
    """Rebuild the catalog's papers and notes from ``papers/`` (no network, idempotent).

    The folders are read inside the write transaction, so a ``kb add`` or ``kb tag`` running at
    the same time lands wholly before or after this sync, never half in its view. A broken
    ``paper.yaml`` or note is named in ``problems`` and skipped (a paper already in the catalog
    stays as it was); everything else still loads.
    """
    report = SyncReport()
    if not settings.papers.is_dir():
        raise NotFound(f"papers folder {settings.papers} does not exist; set KB_PAPERS or run kb inside a kb project")
    with transaction(settings) as (session, files):
        existing = {p.key: p for p in session.exec(select(Paper))}
        parsed, unreadable = _scan(files, existing, report)
        first_seen = FirstSeen(settings)
        for key, paper in existing.items():
            if key not in parsed and paper.slug not in unreadable:
                unindex_paper(paper.id, session=session)
                session.delete(paper)
                report.removed += 1
        session.flush()
        for key, (folder, paper_file) in parsed.items():
            paper = existing.get(key)
            fresh = paper_file.to_paper()
            if "added" not in paper_file.fields:   # a hand-written paper.yaml: the day kb first saw it
                fresh.added = first_seen.get(key, paper.added if paper is not None else fresh.added)
            if paper is None:
                paper = fresh
                report.added += 1
            else:
                changed = paper.slug != fresh.slug or any(getattr(paper, f) != getattr(fresh, f) for f in _PAPER_FIELDS)
                paper.slug = fresh.slug
                for name in _PAPER_FIELDS:
                    setattr(paper, name, getattr(fresh, name))
                if "added" in paper_file.fields:
                    paper.added = fresh.added
                report.updated += int(changed)
            session.add(paper)
            session.flush()
            _changed, problems = load_folder_notes(settings, paper, folder, session=session)
            report.problems += problems
            index_paper(paper, session=session)
            report.papers += 1
        first_seen.save()
        report.notes = len(session.exec(select(Note.id)).all())
        _import_committed_runs(settings, report, session=session)
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


def _scan(files: FileChanges, existing: dict[str, Paper], report: SyncReport
          ) -> tuple[dict[str, tuple[Path, PaperFile]], set[str]]:
    """Every readable ``paper.yaml`` by key, and the folders whose ``paper.yaml`` could not be read.

    Two folders with one id: both are named, and the one the catalog has under that id stays
    (on a new catalog, the first slug in order); the other is skipped.
    """
    claims: dict[str, list[tuple[Path, PaperFile]]] = {}
    unreadable = set()
    for folder in sorted(p for p in files.root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        relative = f"{folder.name}/paper.yaml"
        files.sweep(folder.name)
        if not folder.exists():
            continue
        if not (folder / "paper.yaml").exists():
            if {p.name for p in folder.iterdir()} != {"runs"}:   # only runs/: what kb remove kept
                report.problems.append(f"{files.name(folder.name)}/: no paper.yaml")
            continue
        try:
            text = files.read(relative)
            paper_file = parse_paper_yaml(text, where=files.name(relative), folder_slug=folder.name)
        except KBError as exc:
            report.problems.append(str(exc))
            unreadable.add(folder.name)
            continue
        claims.setdefault(paper_file.key, []).append((folder, paper_file))
    parsed = {}
    for key, claimants in claims.items():
        had = existing[key].slug if key in existing else None
        kept = next((c for c in claimants if c[0].name == had), claimants[0])
        parsed[key] = kept
        if len(claimants) > 1:
            others = [files.name(f"{c[0].name}/paper.yaml") for c in claimants if c is not kept]
            report.problems.append(
                f"{', '.join(others)}: id {key} is also in {files.name(kept[0].name + '/paper.yaml')}, which the catalog "
                f"keeps; skipped (give each folder its own paper's id)")
    return parsed, unreadable


def _import_committed_runs(settings: Settings, report: SyncReport, *, session: Session) -> None:
    """Runs the catalog lacks, from the run folders in ``KB_HOME/runs/`` and the exports in
    ``papers/*/runs/`` (with their regressions), and the schedules of ``KB_HOME/schedules.json``.

    An unreadable file is named in ``report.problems`` and skipped. Run folders that only the
    catalog describes (recorded by an older kb) get their ``record.json`` written from it.
    """
    paths = sorted(settings.papers.glob("*/runs/*.json"))
    if settings.runs_dir.is_dir():
        paths += sorted(p for p in settings.runs_dir.iterdir() if is_run_folder(p))
    report.runs_imported, problems = import_runs(paths, replace=False, session=session)
    write_missing_records(session=session)
    report.schedules_imported, schedule_problems = load_schedules(settings, session=session)
    report.problems += problems + schedule_problems
