"""``kb sync``: the catalog rebuilt from the files under ``papers/`` (no network, idempotent)."""

from dataclasses import dataclass, field

from sqlmodel import Session, select

from kb.errors import BadInput, KBError, NotFound
from kb.files import transaction
from kb.ingest.notes import load_folder_notes
from kb.models import Note, Paper
from kb.paperfile import parse_paper_yaml
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
                 "claims", "version")


def sync(settings: Settings) -> SyncReport:
    """Rebuild the catalog's papers and notes from ``papers/`` (no network, idempotent).

    A broken ``paper.yaml`` or note is named in ``problems``; everything else still loads.
    """
    report = SyncReport()
    root = settings.papers
    if not root.is_dir():
        raise NotFound(f"papers folder {root} does not exist; set KB_PAPERS or run kb inside a kb project")
    parsed = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        yaml_path = folder / "paper.yaml"
        if not yaml_path.exists():
            report.problems.append(f"{folder.name}/: no paper.yaml")
            continue
        try:
            text = yaml_path.read_text(encoding="utf-8")
            paper_file = parse_paper_yaml(text, where=f"{folder.name}/paper.yaml", folder_slug=folder.name)
        except (BadInput, UnicodeDecodeError, OSError) as exc:
            report.problems.append(str(exc) if isinstance(exc, KBError) else f"{folder.name}/paper.yaml: {exc}")
            continue
        if paper_file.key in parsed:
            report.problems.append(f"{folder.name}/paper.yaml: id {paper_file.key} is also in {parsed[paper_file.key][0].name}/")
            continue
        parsed[paper_file.key] = (folder, paper_file)
    with transaction(settings) as (session, _files):
        existing = {p.key: p for p in session.exec(select(Paper))}
        for key, paper in existing.items():
            if key not in parsed:
                unindex_paper(session, paper.id)
                session.delete(paper)
                report.removed += 1
        session.flush()
        for key, (folder, paper_file) in parsed.items():
            paper = existing.get(key)
            fresh = paper_file.to_paper()
            if paper is None:
                paper = fresh
                report.added += 1
            else:
                changed = paper.slug != fresh.slug or any(getattr(paper, f) != getattr(fresh, f) for f in _PAPER_FIELDS)
                paper.slug = fresh.slug
                for name in _PAPER_FIELDS:
                    setattr(paper, name, getattr(fresh, name))
                report.updated += int(changed)
            session.add(paper)
            session.flush()
            _changed, problems = load_folder_notes(session, settings, paper, folder)
            report.problems += problems
            index_paper(session, paper)
            report.papers += 1
        report.notes = len(session.exec(select(Note.id)).all())
        _import_committed_runs(session, settings, report)
        session.flush()
        report.verdicts_updated = rejudge(session)
    return report


def _import_committed_runs(session: Session, settings: Settings, report: SyncReport) -> None:
    """Runs the catalog lacks, from the run folders in ``KB_HOME/runs/`` and the exports in
    ``papers/*/runs/`` (with their regressions), and the schedules of ``KB_HOME/schedules.json``.

    An unreadable file is named in ``report.problems`` and skipped. Run folders that only the
    catalog describes (recorded by an older kb) get their ``record.json`` written from it.
    """
    paths = sorted(settings.papers.glob("*/runs/*.json"))
    if settings.runs_dir.is_dir():
        paths += sorted(p for p in settings.runs_dir.iterdir() if is_run_folder(p))
    report.runs_imported, problems = import_runs(session, paths, replace=False)
    write_missing_records(session)
    report.schedules_imported, schedule_problems = load_schedules(settings, session=session)
    report.problems += problems + schedule_problems
