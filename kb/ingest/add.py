"""``kb add``: arXiv metadata into ``papers/<slug>/paper.yaml`` and the catalog."""

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from kb.arxiv_api import Arxiv, Metadata, Policy
from kb.errors import BadInput
from kb.feed.decisions import record_added
from kb.files import FileChanges, transaction
from kb.ids import PaperId, parse_id
from kb.models import Paper
from kb.paperfile import (
    check_slug,
    dump_paper_yaml,
    edit_paper_yaml,
    paper_values,
    slugify,
    unique_slug,
)
from kb.search import index_paper
from kb.settings import Settings


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


def _taken_slugs(settings: Settings, *, session: Session) -> set[str]:
    taken = set(session.exec(select(Paper.slug)))
    if settings.papers.is_dir():
        taken |= {p.name for p in settings.papers.iterdir() if p.is_dir()}
    return taken


# What a refresh from arXiv may change in an existing paper.yaml (plus tags given with --tag).
ARXIV_FIELDS = ("title", "authors", "abstract", "categories", "primary_category", "published", "updated",
                "year", "doi", "journal_ref", "comment", "version")


def _day(moment: dt.datetime | None) -> dt.datetime | None:
    return dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.timezone.utc) if moment else None


def apply_metadata(paper: Paper, meta: Metadata) -> None:
    paper.title = meta.title
    paper.authors = meta.authors
    paper.abstract = meta.abstract
    paper.categories = meta.categories
    paper.primary_category = meta.primary_category
    # paper.yaml keeps the day: the catalog holds what a rebuild from the file gives back.
    paper.published, paper.updated = _day(meta.published), _day(meta.updated)
    paper.year = paper.year or (meta.published.year if meta.published else None)   # a venue's year stays
    paper.doi = meta.doi or paper.doi
    paper.journal_ref = meta.journal_ref
    paper.comment = meta.comment
    if meta.version and (paper.version is None or meta.version >= paper.version):
        paper.version = meta.version


def save_paper(files: FileChanges, paper: Paper, changed: tuple[str, ...], *, session: Session) -> None:
    """Write the catalog row, its ``paper.yaml`` and its search entry together.

    A new paper gets kb's full layout; in an existing ``paper.yaml`` only the ``changed`` fields'
    lines change, and only where their value differs (no difference, no write).
    """
    session.add(paper)
    session.flush()
    relative = Path(paper.slug) / "paper.yaml"
    old = files.read(relative)
    if old is None:
        text = dump_paper_yaml(paper)
    else:
        values = paper_values(paper)
        text = edit_paper_yaml(old, {key: values[key] for key in changed}, where=files.name(relative),
                               folder_slug=paper.slug)
    files.write(relative, text)
    index_paper(paper, session=session)


def upsert_from_metadata(files: FileChanges, settings: Settings, meta: Metadata,
                         *, session: Session, slug: str | None = None, tags: list[str] = ()) -> tuple[Paper, bool]:
    """Insert or refresh a paper from arXiv metadata; returns (paper, created)."""
    paper = session.exec(select(Paper).where(Paper.key == meta.key)).first()
    created = paper is None
    if created:
        base = check_slug(slug) if slug else slugify(meta.title)
        taken = _taken_slugs(settings, session=session)
        if slug and slug in taken:
            raise BadInput(f"slug {slug!r} is taken by another paper; choose another --slug")
        paper = Paper(key=meta.key, slug=unique_slug(base, taken), title=meta.title)
    apply_metadata(paper, meta)
    paper.tags = sorted(set(paper.tags) | {t.strip().lower() for t in tags if t.strip()})
    save_paper(files, paper, (*ARXIV_FIELDS, "tags"), session=session)
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
            paper, created = upsert_from_metadata(files, settings, meta, slug=slug, tags=tags, session=session)
            (result.added if created else result.updated).append(paper)
        record_added(settings, [p.key for p in result.added], session=session)     # a feed item added: decided
    return result
