"""Library functions behind the paper commands: add, sync, list, show, tag, remove, bibtex.

Each takes what it needs explicitly and returns plain results; the CLI only prints them.
"""

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from kb.arxiv_api import Arxiv, Metadata, Policy
from kb.errors import BadInput, KBError, NotFound
from kb.files import FileChanges, transaction
from kb.ids import PaperId, parse_id
from kb.models import Note, Paper
from kb.papers import (
    check_slug, dump_paper_yaml, get_paper, parse_paper_yaml, slugify, unique_slug,
)
from kb.search import index_paper, unindex_paper
from kb.settings import Settings


# -- add ----------------------------------------------------------------------------------


@dataclass
class AddResult:
    added: list[Paper] = field(default_factory=list)
    updated: list[Paper] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)
    from_cache: bool = False


def read_id_file(path: Path) -> list[str]:
    """Ids from a file: one per line (or separated by spaces/commas), ``#`` starts a comment."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"cannot read id file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    items = []
    for line in text.splitlines():
        items += [t for t in re.split(r"[\s,]+", line.split("#", 1)[0]) if t]
    return items


def parse_ids(raw: list[str]) -> list[PaperId]:
    """Every id parsed before any request; all malformed ones named together (none are added)."""
    parsed, bad = [], []
    for item in raw:
        try:
            parsed.append(parse_id(item))
        except BadInput:
            bad.append(item)
    if bad:
        raise BadInput(f"not an arXiv id: {', '.join(repr(b) for b in bad)} (nothing was added; expected e.g. 1506.02640 or https://arxiv.org/abs/1506.02640)")
    return list({p.key: p for p in parsed}.values())


def arxiv_for(settings: Settings, *, offline: bool, policy: Policy | None = None) -> Arxiv:
    policy = policy or Policy(min_interval=settings.arxiv_delay)
    return Arxiv(settings.arxiv_api, settings.cache_dir / "arxiv", offline=offline, policy=policy)


def _taken_slugs(session: Session, settings: Settings) -> set[str]:
    taken = set(session.exec(select(Paper.slug)))
    if settings.papers.is_dir():
        taken |= {p.name for p in settings.papers.iterdir() if p.is_dir()}
    return taken


def apply_metadata(paper: Paper, meta: Metadata) -> None:
    paper.title = meta.title
    paper.authors = meta.authors
    paper.abstract = meta.abstract
    paper.categories = meta.categories
    paper.primary_category = meta.primary_category
    paper.published = meta.published
    paper.updated = meta.updated
    paper.year = meta.published.year if meta.published else paper.year
    paper.doi = meta.doi or paper.doi
    paper.journal_ref = meta.journal_ref
    paper.comment = meta.comment
    if meta.version and (paper.version is None or meta.version >= paper.version):
        paper.version = meta.version


def save_paper(session: Session, files: FileChanges, paper: Paper) -> None:
    """Write the catalog row, its ``paper.yaml`` and its search entry together."""
    session.add(paper)
    session.flush()
    files.write(Path(paper.slug) / "paper.yaml", dump_paper_yaml(paper))
    index_paper(session, paper)


def upsert_from_metadata(session: Session, files: FileChanges, settings: Settings, meta: Metadata,
                         *, slug: str | None = None, tags: list[str] = ()) -> tuple[Paper, bool]:
    """Insert or refresh a paper from arXiv metadata; returns (paper, created)."""
    paper = session.exec(select(Paper).where(Paper.key == meta.key)).first()
    created = paper is None
    if created:
        base = check_slug(slug) if slug else slugify(meta.title)
        taken = _taken_slugs(session, settings)
        if slug and slug in taken:
            raise BadInput(f"slug {slug!r} is taken by another paper; choose another --slug")
        paper = Paper(key=meta.key, slug=unique_slug(base, taken), title=meta.title)
    apply_metadata(paper, meta)
    paper.tags = sorted(set(paper.tags) | {t.strip().lower() for t in tags if t.strip()})
    save_paper(session, files, paper)
    return paper, created


def add_papers(settings: Settings, raw_ids: list[str], *, tags: list[str] = (), slug: str | None = None,
               offline: bool = False, policy: Policy | None = None) -> AddResult:
    ids = parse_ids(raw_ids)
    if not ids:
        raise BadInput("no ids given; pass ids or --from FILE")
    if slug and len(ids) > 1:
        raise BadInput("--slug names one paper; give a single id with it")
    doi_only = [p.key for p in ids if not p.is_arxiv]
    if doi_only:
        raise BadInput(f"{', '.join(doi_only)}: papers without an arXiv id are added by writing papers/<slug>/paper.yaml, then `kb sync`")
    client = arxiv_for(settings, offline=offline, policy=policy)
    found = client.by_ids(ids)
    result = AddResult(from_cache=client.session.used_cache)
    result.not_found = [p.key for p in ids if p.key not in found]
    with transaction(settings) as (session, files):
        for pid in ids:
            meta = found.get(pid.key)
            if meta is None:
                continue
            paper, created = upsert_from_metadata(session, files, settings, meta, slug=slug, tags=tags)
            (result.added if created else result.updated).append(paper)
    return result


# -- sync ---------------------------------------------------------------------------------


@dataclass
class SyncReport:
    papers: int = 0
    notes: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    runs_imported: int = 0
    verdicts_updated: int = 0
    problems: list[str] = field(default_factory=list)


_PAPER_FIELDS = ("title", "other_titles", "authors", "abstract", "summary", "categories", "primary_category",
                 "published", "updated", "year", "doi", "journal_ref", "comment", "venue", "tags", "runners",
                 "claims", "version")


def sync(settings: Settings) -> SyncReport:
    """Rebuild the catalog's papers and notes from ``papers/`` (no network, idempotent).

    A broken ``paper.yaml`` or note is named in ``problems``; everything else still loads.
    """
    from kb.importer import load_folder_notes
    from kb.runs.execute import rejudge

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
        report.runs_imported = _import_committed_runs(session, settings)
        session.flush()
        report.verdicts_updated = rejudge(session, settings)
    return report


def _import_committed_runs(session: Session, settings: Settings) -> int:
    from kb.runs.records import import_run_files

    files = sorted(settings.papers.glob("*/runs/*.json"))
    return import_run_files(session, files, skip_existing=True) if files else 0


# -- browsing -----------------------------------------------------------------------------

SORTS = {"added": Paper.added, "year": Paper.year, "title": Paper.title, "slug": Paper.slug}


def list_papers(session: Session, *, tag: str | None = None, year: int | None = None, author: str | None = None,
                lang: str | None = None, runner: bool | None = None, sort: str = "added", reverse: bool = False,
                limit: int | None = None) -> list[Paper]:
    if sort not in SORTS:
        raise BadInput(f"--sort {sort!r}: choose one of {', '.join(SORTS)}")
    column = SORTS[sort]
    descending = (sort in ("added", "year")) != reverse
    query = select(Paper).order_by(column.desc() if descending else column.asc(), Paper.slug)
    if year is not None:
        query = query.where(Paper.year == year)
    papers = list(session.exec(query))
    if lang is not None:
        with_lang = set(session.exec(select(Note.paper_id).where(Note.lang == lang)))
        papers = [p for p in papers if p.id in with_lang]
    if tag is not None:
        papers = [p for p in papers if tag.lower() in p.tags]
    if author is not None:
        papers = [p for p in papers if any(author.lower() in a.lower() for a in p.authors)]
    if runner is not None:
        papers = [p for p in papers if bool(p.runners) == runner]
    return papers[:limit] if limit else papers


def note_languages(session: Session) -> dict[int, list[str]]:
    langs: dict[int, set[str]] = {}
    for paper_id, lang in session.exec(select(Note.paper_id, Note.lang)):
        langs.setdefault(paper_id, set()).add(lang)
    return {k: sorted(v) for k, v in langs.items()}


def paper_links(paper: Paper) -> dict[str, str]:
    if paper.key.startswith("doi:"):
        return {"doi": f"https://doi.org/{paper.key[4:]}"}
    links = {"abs": f"https://arxiv.org/abs/{paper.key}", "pdf": f"https://arxiv.org/pdf/{paper.key}"}
    if paper.doi:
        links["doi"] = f"https://doi.org/{paper.doi}"
    return links


def retag(settings: Settings, ref: str, changes: list[str]) -> Paper:
    """``+tag`` adds, ``-tag`` removes, a bare ``tag`` adds."""
    with transaction(settings) as (session, files):
        paper = get_paper(session, ref)
        tags = set(paper.tags)
        for change in changes:
            name = change.lstrip("+-").strip().lower()
            if not name or not re.fullmatch(r"[\w][\w\-.]*", name):
                raise BadInput(f"tag {change!r} is not allowed: use letters, digits, '-', '_' or '.'")
            if change.startswith("-"):
                tags.discard(name)
            else:
                tags.add(name)
        paper.tags = sorted(tags)
        save_paper(session, files, paper)
        return paper


def remove_paper(settings: Settings, ref: str) -> Paper:
    """Remove a paper from the catalog and its folder from ``papers/`` (runs are kept)."""
    with transaction(settings) as (session, files):
        paper = get_paper(session, ref)
        unindex_paper(session, paper.id)
        for note in session.exec(select(Note).where(Note.paper_id == paper.id)):
            session.delete(note)
        session.delete(paper)
        files.remove_tree(paper.slug)
        return paper


# -- BibTeX -------------------------------------------------------------------------------

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(value: str) -> str:
    return "".join(_LATEX.get(c, c) for c in value)


def bibtex_key(paper: Paper) -> str:
    """``<first author's surname><year><first title word>``, ASCII lowercase: stable across runs."""
    surname = _ascii(paper.authors[0].split()[-1]) if paper.authors else ""
    stop = {"a", "an", "the", "on", "of", "for", "to", "in", "and"}
    words = [w for w in re.findall(r"[a-z0-9]+", _ascii(paper.title.replace("-", " "), keep=" ")) if w not in stop]
    return f"{surname or 'anon'}{paper.year or ''}{words[0] if words else ''}"


def _ascii(value: str, keep: str = "") -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum() or c in keep)


def bibtex_entry(paper: Paper, key: str) -> str:
    fields = [("title", "{" + _latex(paper.title) + "}"), ("author", _latex(" and ".join(paper.authors)))]
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.key.startswith("doi:"):
        kind = "article"
        if paper.venue:
            fields.append(("journal", _latex(paper.venue)))
        fields.append(("doi", paper.key[4:]))
    else:
        kind = "misc"
        fields += [("eprint", paper.key), ("archivePrefix", "arXiv")]
        if paper.primary_category:
            fields.append(("primaryClass", paper.primary_category))
        if paper.doi:
            fields.append(("doi", paper.doi))
        if paper.venue:
            fields.append(("note", _latex(paper.venue)))
        fields.append(("url", f"https://arxiv.org/abs/{paper.key}"))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def export_bibtex(session: Session, refs: list[str]) -> str:
    papers = [get_paper(session, r) for r in refs] if refs else list(session.exec(select(Paper).order_by(Paper.slug)))
    entries, used = [], {}
    for paper in sorted(papers, key=lambda p: p.key):
        base = bibtex_key(paper)
        used[base] = used.get(base, 0) + 1
        key = base if used[base] == 1 else f"{base}{chr(ord('a') + used[base] - 1)}"
        entries.append(bibtex_entry(paper, key))
    return "\n".join(entries)



def sync_paper_notes(settings: Settings, ref: str) -> Paper:
    """Re-read one paper's note files (after ``kb note --edit``)."""
    from kb.importer import load_folder_notes

    with transaction(settings) as (session, _files):
        paper = get_paper(session, ref)
        _changed, problems = load_folder_notes(session, settings, paper, settings.papers / paper.slug)
        if problems:
            raise BadInput("; ".join(problems))
        index_paper(session, paper)
        return paper
