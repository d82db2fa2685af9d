"""Read-side catalog queries: papers by reference, listings, notes, links and claims.

Everything that shows the catalog (CLI listings, the site, runs and runners overviews) reads
through here or through ``kb.search``; nothing here writes (design.md, The flow).
"""

from typing import Any

from sqlmodel import Session, select

from kb.errors import BadInput, NotFound
from kb.ids import parse_id
from kb.models import Note, Paper


def find_paper(ref: str, *, session: Session) -> Paper | None:
    """A paper by slug or by any id form."""
    ref = ref.strip()
    paper = session.exec(select(Paper).where(Paper.slug == ref.lower())).first()
    if paper is not None:
        return paper
    try:
        key = parse_id(ref).key
    except BadInput:
        return None
    return session.exec(select(Paper).where(Paper.key == key)).first()


def get_paper(ref: str, *, session: Session) -> Paper:
    paper = find_paper(ref, session=session)
    if paper is None:
        raise NotFound(f"no paper {ref!r} in the catalog; see `kb list`, or add it with `kb add {ref}`")
    return paper


def notes_of(paper: Paper, *, session: Session) -> list[Note]:
    return list(session.exec(select(Note).where(Note.paper_id == paper.id).order_by(Note.lang, Note.path)))


SORTS = {"added": Paper.added, "year": Paper.year, "title": Paper.title, "slug": Paper.slug}


def list_papers(*, session: Session, tag: str | None = None, year: int | None = None, author: str | None = None,
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


def note_languages(*, session: Session) -> dict[int, list[str]]:
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


def claims_of(paper_key: str, *, session: Session) -> list[dict[str, Any]]:
    """The claimed numbers of one paper, as ``kb sync`` last read them from its ``paper.yaml``."""
    claims = session.exec(select(Paper.claims).where(Paper.key == paper_key)).first()
    return list(claims or [])
