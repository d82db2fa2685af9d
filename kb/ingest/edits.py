"""Edits of one paper: ``kb tag`` and ``kb remove``."""

import re
from pathlib import Path

from sqlmodel import select

from kb.errors import BadInput
from kb.files import transaction
from kb.ingest.add import save_paper
from kb.models import Note, Paper
from kb.paperfile import parse_paper_yaml
from kb.queries import get_paper
from kb.search import unindex_paper
from kb.settings import Settings


def retag(settings: Settings, ref: str, changes: list[str]) -> Paper:
    """``+tag`` adds, ``-tag`` removes, a bare ``tag`` adds; ``paper.yaml`` changes on its tags line only.

    The changes apply to the tags ``paper.yaml`` has (the truth, even when edited since the last
    ``kb sync``); the catalog's tags become the same.
    """
    with transaction(settings) as (session, files):
        paper = get_paper(ref, session=session)
        relative = f"{paper.slug}/paper.yaml"
        text = files.read(relative)
        tags = set(paper.tags if text is None else
                   parse_paper_yaml(text, where=files.name(relative), folder_slug=paper.slug).fields["tags"])
        for change in changes:
            name = change.lstrip("+-").strip().lower()
            if not name or not re.fullmatch(r"[\w][\w\-.]*", name):
                raise BadInput(f"tag {change!r} is not allowed: use letters, digits, '-', '_' or '.'")
            if change.startswith("-"):
                tags.discard(name)
            else:
                tags.add(name)
        paper.tags = sorted(tags)
        save_paper(files, paper, ("tags",), session=session)
        return paper


def run_exports(settings: Settings, paper: Paper) -> list[Path]:
    """The paper's committed run exports, ``papers/<slug>/runs/*.json``."""
    return sorted((settings.papers / paper.slug / "runs").glob("*.json"))


def remove_paper(settings: Settings, ref: str, *, with_runs: bool = False) -> Paper:
    """Remove a paper from the catalog and its folder from ``papers/``.

    Its committed run exports (``runs/``) stay in the folder unless ``with_runs``; the catalog's
    runs and the run folders under ``KB_HOME`` are kept either way.
    """
    with transaction(settings) as (session, files):
        paper = get_paper(ref, session=session)
        unindex_paper(paper.id, session=session)
        for note in session.exec(select(Note).where(Note.paper_id == paper.id)):
            session.delete(note)
        session.delete(paper)
        folder = settings.papers / paper.slug
        if with_runs or not run_exports(settings, paper):
            files.remove_tree(paper.slug)
        else:
            for path in sorted(folder.iterdir()):
                if path.name != "runs":
                    files.remove_tree(Path(paper.slug) / path.name)
        return paper
