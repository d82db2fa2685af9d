"""A paper's notes as the catalog holds them, with what reviews and ★ need: language, post date, ★."""

from sqlmodel import Session, select

from kb.models import Note, Paper


def paper_notes(slug: str, *, session: Session) -> list[Note]:
    """The catalog's notes of the paper ``slug`` (``kb sync`` reads them from ``papers/<slug>/``)."""
    return list(session.exec(select(Note).join(Paper, Note.paper_id == Paper.id).where(Paper.slug == slug)
                             .order_by(Note.lang, Note.path)))
