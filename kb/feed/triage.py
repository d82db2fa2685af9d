"""Decisions taken on feed items, with the paper added or removed as they say (``kb triage``)."""

from dataclasses import dataclass

from kb.feed import decisions
from kb.feed.rss import Announcement
from kb.files import transaction
from kb.ingest.add import upsert_from_metadata
from kb.settings import Settings


@dataclass
class Taken:
    """One decision as taken, enough to take it back."""

    event: dict
    created: str | None          # the slug of the paper the decision added to the catalog


def take(settings: Settings, item: Announcement, action: str, *, tags: list[str] = ()) -> Taken:
    """Store the decision at once; ``added``/``starred`` also add the paper from the feed's metadata."""
    with transaction(settings) as (session, files):
        created = None
        if action in decisions.ADDING:
            paper, is_new = upsert_from_metadata(files, settings, item.to_metadata(), tags=list(tags), session=session)
            created = paper.slug if is_new else None
        [event] = decisions.decide(settings, [item.key], action, tags=tags, session=session)
    return Taken(event, created)


def take_back(settings: Settings, taken: Taken) -> None:
    """Undo: the earlier decision comes back, and a paper the decision added leaves the catalog."""
    from kb.db import session_scope

    with session_scope(settings, write=True) as session:
        decisions.undo(settings, taken.event, session=session)
    if taken.created:
        from kb.ingest.edits import remove_paper

        remove_paper(settings, taken.created)
