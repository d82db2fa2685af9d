"""Read-side catalog queries: papers by reference, listings, notes, links and claims.

Everything that shows the catalog (CLI listings, the site, runs and runners overviews) reads
through here or through ``kb.search``; nothing here writes (design.md, The flow). The ORM is
imported inside the functions: ``kb.reader`` shares this module's filters and messages without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kb.errors import BadInput, NotFound

if TYPE_CHECKING:
    from sqlmodel import Session

    from kb.models import Note, Paper


def find_paper(ref: str, *, session: Session) -> Paper | None:
    """A paper by slug or by any id form."""
    from sqlmodel import select

    from kb.ids import parse_id
    from kb.models import Paper

    ref = ref.strip()
    paper = session.exec(select(Paper).where(Paper.slug == ref.lower())).first()
    if paper is not None:
        return paper
    try:
        key = parse_id(ref).key
    except BadInput:
        return None
    return session.exec(select(Paper).where(Paper.key == key)).first()


def not_found(ref: str) -> NotFound:
    return NotFound(f"no paper {ref!r} in the catalog; see `kb list`, or add it with `kb add {ref}`")


def get_paper(ref: str, *, session: Session) -> Paper:
    paper = find_paper(ref, session=session)
    if paper is None:
        raise not_found(ref)
    return paper


def notes_of(paper: Paper, *, session: Session) -> list[Note]:
    from sqlmodel import select

    from kb.models import Note

    return list(session.exec(select(Note).where(Note.paper_id == paper.id).order_by(Note.lang, Note.path)))


SORTS = ("added", "year", "title", "slug")


def check_sort(sort: str) -> bool:
    """Whether ``sort`` orders newest (largest) first; raises on a sort kb does not know."""
    if sort not in SORTS:
        raise BadInput(f"--sort {sort!r}: choose one of {', '.join(SORTS)}")
    return sort in ("added", "year")


def list_papers(*, session: Session, tag: str | None = None, year: int | None = None, author: str | None = None,
                lang: str | None = None, runner: bool | None = None, star: bool = False, sort: str = "added",
                reverse: bool = False, limit: int | None = None) -> list[Paper]:
    from sqlmodel import select

    from kb.models import Note, Paper

    descending = check_sort(sort) != reverse
    column = getattr(Paper, sort)
    query = select(Paper).order_by(column.desc() if descending else column.asc(), Paper.slug)
    if year is not None:
        query = query.where(Paper.year == year)
    papers = list(session.exec(query))
    if lang is not None:
        with_lang = set(session.exec(select(Note.paper_id).where(Note.lang == lang)))
        papers = [p for p in papers if p.id in with_lang]
    return filter_papers(papers, tag=tag, author=author, runner=runner, star=star, limit=limit)


def filter_papers(papers: list, *, tag: str | None, author: str | None, runner: bool | None, limit: int | None,
                  star: bool = False) -> list:
    """The filters a listing applies after its query (ORM papers and ``kb.reader`` rows alike);
    ``star`` keeps the papers a note gave a ★."""
    if star:
        papers = [p for p in papers if p.star]
    if tag is not None:
        papers = [p for p in papers if tag.lower() in p.tags]
    if author is not None:
        papers = [p for p in papers if any(author.lower() in a.lower() for a in p.authors)]
    if runner is not None:
        papers = [p for p in papers if bool(p.runners) == runner]
    return papers[:limit] if limit else papers


def note_languages(*, session: Session, paper_ids: list[int] | None = None) -> dict[int, list[str]]:
    """Paper id -> the languages of its notes, of every paper or of ``paper_ids``."""
    from sqlmodel import select

    from kb.models import Note

    query = select(Note.paper_id, Note.lang)
    return languages_by_paper(session.exec(query if paper_ids is None else query.where(Note.paper_id.in_(paper_ids))))


def languages_by_paper(pairs) -> dict[int, list[str]]:
    """``(paper_id, lang)`` pairs as paper id -> its note languages, sorted."""
    langs: dict[int, set[str]] = {}
    for paper_id, lang in pairs:
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
    from sqlmodel import select

    from kb.models import Paper

    claims = session.exec(select(Paper.claims).where(Paper.key == paper_key)).first()
    return list(claims or [])
