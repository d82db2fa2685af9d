"""``kb import`` and ``kb note --edit``: notes from files into ``papers/<slug>/notes/`` and the catalog.

Parsing (splitting exports into one note per paper) lives in kb/notes.py; this module links each
parsed note to a paper (front matter, arXiv links, then titles: the catalog's, then arXiv's title
search when online), writes it as a kb note file, and indexes it. Re-importing is idempotent: a
note's file is named after its source file, so the same note lands in the same place.
"""

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlmodel import Session, select

from kb.arxiv_api import Arxiv, Policy
from kb.ingest.add import arxiv_for, upsert_from_metadata
from kb.errors import BadInput, KBError, NetworkError
from kb.files import FileChanges, transaction
from kb.ids import parse_id
from kb.models import Note, Paper, utcnow
from kb.notes import ParsedNote, content_hash, parse_file
from kb.paperfile import note_files
from kb.queries import find_paper, get_paper
from kb.search import index_paper
from kb.settings import Settings

NOTE_SUFFIXES = {".md", ".markdown", ".txt"}
TITLE_MATCH = 0.9


@dataclass
class Imported:
    origin: str
    title: str | None
    paper: str            # slug
    path: str             # under papers/
    action: str           # added | updated | unchanged
    linked_by: str        # front matter | arXiv link | title (catalog) | title (arXiv)


@dataclass
class Unlinked:
    origin: str
    title: str | None
    reason: str


@dataclass
class ImportReport:
    imported: list[Imported] = field(default_factory=list)
    unlinked: list[Unlinked] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    papers_added: list[str] = field(default_factory=list)
    dry_run: bool = False


class _DryRun(Exception):
    """Raised at the end of a dry run so the transaction and the files roll back."""


def normalize_title(title: str) -> str:
    folded = unicodedata.normalize("NFKC", title).lower()
    return re.sub(r"[^0-9a-z\u3040-\u30ff\u4e00-\u9fff]+", " ", folded).strip()


def match_title(title: str, candidates: dict[str, list[str]]) -> str | None:
    """The key whose title (or another title) equals or nearly equals ``title``."""
    # Notes often add a subtitle in brackets ("... Optimization? (No, It Is Not About ...)").
    forms = {normalize_title(title), normalize_title(re.sub(r"\s*[(（\[].*?[)）\]]\s*$", "", title))} - {""}
    best, best_ratio = None, 0.0
    for key, titles in candidates.items():
        for candidate in titles:
            have = normalize_title(candidate)
            for wanted in forms:
                if have == wanted:
                    return key
                ratio = difflib.SequenceMatcher(None, wanted, have).ratio()
                if ratio > best_ratio:
                    best, best_ratio = key, ratio
    return best if best_ratio >= TITLE_MATCH else None


def note_text(note: ParsedNote, paper: Paper) -> str:
    front = {"paper": paper.key, "lang": note.lang}
    for key in ("title", "source", "venue", "date"):
        if getattr(note, key):
            front[key] = getattr(note, key)
    if note.authors:
        front["authors"] = note.authors
    if note.tags:
        front["tags"] = note.tags
    if note.important:
        front["important"] = True
    front["origin"] = note.origin
    return "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n" + note.body.strip() + "\n"


def upsert_note(paper: Paper, note: ParsedNote, path: str, source: str | None, *, session: Session) -> str:
    """Insert or update the catalog row of one note file; returns added/updated/unchanged."""
    digest = content_hash(note)
    row = session.exec(select(Note).where(Note.paper_id == paper.id, Note.path == path)).first()
    if row is not None and (row.content_hash, row.posted, row.important) == (digest, note.date, note.important):
        return "unchanged"
    action = "added" if row is None else "updated"
    row = row or Note(paper_id=paper.id, path=path, lang=note.lang, body="", content_hash="")
    row.lang, row.title, row.body, row.source = note.lang, note.title, note.body, source
    row.posted, row.important = note.date, note.important
    row.content_hash, row.updated = digest, utcnow()
    session.add(row)
    session.flush()
    return action


def load_folder_notes(settings: Settings, paper: Paper, folder: Path, *, session: Session) -> tuple[int, list[str]]:
    """Make the catalog's notes of ``paper`` equal the note files of its folder (``kb sync``)."""
    problems, changed, seen = [], 0, set()
    for path in note_files(folder):
        relative = path.relative_to(settings.papers).as_posix()
        seen.add(relative)              # an unreadable note is skipped: its catalog row stays as it was
        name = f"{settings.papers.name}/{relative}"
        try:
            notes, _skipped = parse_file(path)
        except KBError as exc:
            message = str(exc)
            for named in (f"{path}:", f"{path.name}:"):   # the reader names the file one way or the other
                if message.startswith(named):
                    message = message[len(named):].lstrip()
                    break
            problems.append(f"{name}: {message}")
            continue
        if len(notes) != 1:
            problems.append(f"{name}: expected one note, found {len(notes)}")
            continue
        changed += upsert_note(paper, notes[0], relative, notes[0].source, session=session) != "unchanged"
    for row in session.exec(select(Note).where(Note.paper_id == paper.id)):
        if row.path not in seen:
            session.delete(row)
            changed += 1
    session.flush()
    return changed, problems


def collect_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder")
    return files


class _Linker:
    """Finds the paper a parsed note is about, adding it from arXiv when online."""

    def __init__(self, session: Session, files: FileChanges, settings: Settings, client: Arxiv | None,
                 report: ImportReport) -> None:
        self.session, self.files, self.settings = session, files, settings
        self.client = client
        self.report = report
        self.titles = {p.key: [p.title, *p.other_titles] for p in session.exec(select(Paper))}

    def _add_from_arxiv(self, fetch) -> Paper | None:
        if self.client is None:
            return None
        try:
            meta = fetch(self.client)
        except NetworkError as exc:
            self.report.problems.append(f"arXiv lookups stopped: {exc}")
            self.client = None
            return None
        if meta is None:
            return None
        paper, created = upsert_from_metadata(self.files, self.settings, meta, session=self.session)
        if created:
            self.report.papers_added.append(paper.slug)
            self.titles[paper.key] = [paper.title]
        return paper

    def link(self, note: ParsedNote) -> tuple[Paper | None, str]:
        if note.paper_ref:
            paper = find_paper(str(note.paper_ref), session=self.session)
            if paper is not None:
                return paper, "front matter"
            try:
                pid = parse_id(str(note.paper_ref))
            except BadInput:
                return None, f"front matter names {note.paper_ref!r}, which is neither a slug in the catalog nor an id"
            paper = self._add_from_arxiv(lambda c: c.by_ids([pid]).get(pid.key))
            return (paper, "front matter") if paper else (None, f"{pid.key} is not in the catalog (kb add {pid.key})")
        for key in note.arxiv_ids:
            paper = self.session.exec(select(Paper).where(Paper.key == key)).first()
            if paper is not None:
                return paper, "arXiv link"
        if note.arxiv_ids:
            key = note.arxiv_ids[0]
            paper = self._add_from_arxiv(lambda c: c.by_ids([parse_id(key)]).get(key))
            if paper is not None:
                return paper, "arXiv link"
        if note.title:
            key = match_title(note.title, self.titles)
            if key is not None:
                return self.session.exec(select(Paper).where(Paper.key == key)).first(), "title (catalog)"

            def by_title(client: Arxiv):
                candidates = client.by_title(note.title)
                best = match_title(note.title, {m.key: [m.title] for m in candidates})
                return next((m for m in candidates if m.key == best), None)

            paper = self._add_from_arxiv(by_title)
            if paper is not None:
                return paper, "title (arXiv)"
        if note.arxiv_ids:
            return None, f"arXiv {note.arxiv_ids[0]} is not in the catalog and could not be fetched (kb add {note.arxiv_ids[0]})"
        if note.title:
            return None, "title not found in the catalog" + ("" if self.client else " (offline: arXiv title search not tried)")
        return None, "names no paper (no front matter, arXiv link or title)"


def _note_path(paper: Paper, source_file: Path, lang: str, used: set[str]) -> str:
    stem = re.sub(r"[^a-z0-9\-]+", "-", source_file.stem.lower()).strip("-") or "note"
    name, n = f"{paper.slug}/notes/{stem}.{lang}.md", 2
    while name in used:
        name, n = f"{paper.slug}/notes/{stem}-{n}.{lang}.md", n + 1
    used.add(name)
    return name


def import_notes(settings: Settings, paths: list[Path], *, dry_run: bool = False, offline: bool = False,
                 policy: Policy | None = None) -> ImportReport:
    report = ImportReport(dry_run=dry_run)
    files_in = collect_files(paths)
    client = None if offline else arxiv_for(settings, offline=False, policy=policy)
    papers_root = settings.papers.resolve()
    try:
        with transaction(settings) as (session, files):
            linker = _Linker(session, files, settings, client, report)
            used: set[str] = set()
            touched: dict[int, Paper] = {}
            for source_file in files_in:
                if source_file.resolve().is_relative_to(papers_root):
                    report.problems.append(f"{source_file}: already inside papers/; use `kb sync` for those")
                    continue
                try:
                    notes, skipped = parse_file(source_file)
                except KBError as exc:
                    report.problems.append(str(exc))
                    continue
                report.skipped += skipped
                for note in notes:
                    paper, how = linker.link(note)
                    if paper is None:
                        report.unlinked.append(Unlinked(note.origin, note.title, how))
                        continue
                    path = _note_path(paper, source_file, note.lang, used)
                    source = note.source or str(source_file)
                    files.write(path, note_text(note, paper))
                    action = upsert_note(paper, note, path, source, session=session)
                    touched[paper.id] = paper
                    report.imported.append(Imported(note.origin, note.title, paper.slug, path, action, how))
            for paper in touched.values():
                index_paper(paper, session=session)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def sync_paper_notes(settings: Settings, ref: str) -> Paper:
    """Re-read one paper's note files (after ``kb note --edit``)."""
    with transaction(settings) as (session, _files):
        paper = get_paper(ref, session=session)
        _changed, problems = load_folder_notes(settings, paper, settings.papers / paper.slug, session=session)
        if problems:
            raise BadInput("; ".join(problems))
        index_paper(paper, session=session)
        return paper
