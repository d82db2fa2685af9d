"""``kb feed``: today's announcements of the chosen categories, ranked, minus what was decided."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

from sqlmodel import Session, select

from kb.db import session_scope
from kb.errors import BadInput, NetworkError
from kb.feed import decisions
from kb.feed.rank import Ranked, load_model, rank
from kb.feed.rss import Announcement, categories_of, fetch_feed, from_metadata, submitted_between
from kb.models import FeedItem, Paper
from kb.settings import Settings


@dataclass
class FeedReport:
    categories: list[str]
    items: list[Ranked] = field(default_factory=list)
    requests: int = 0
    from_cache: bool = False
    ranked: bool = True              # False: an empty catalog, announcement order
    hidden: int = 0                  # decided or already in the catalog


def parse_since(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"--since {text!r} is not a date (YYYY-MM-DD)") from None


def _gather(settings: Settings, categories: list[str], since: date | None, offline: bool,
            step: Callable[[int], None]) -> tuple[list[Announcement], int, bool]:
    """The announcements of each category's feed (and of the API since a day); ``step(n)`` before the n-th download."""
    found: dict[str, Announcement] = {}
    requests, from_cache = 0, False
    for number, category in enumerate(categories):
        step(number)
        fetched = fetch_feed(settings, category, offline=offline)
        requests += fetched.requests
        from_cache |= fetched.from_cache
        for item in fetched.announcements:
            found.setdefault(item.key, item)
    if since is not None:
        from kb.ingest.add import arxiv_for

        # Up to the start of today (UTC): the same request all day, so the cache answers a second call.
        start = datetime.combine(since, time(), tzinfo=timezone.utc)
        end = datetime.combine(datetime.now(timezone.utc).date(), time(), tzinfo=timezone.utc)
        if start >= end:
            raise BadInput(f"--since {since} is not before today; the RSS feed already has today's papers")
        for number, category in enumerate(categories, len(categories)):
            step(number)
            # The cache first (kb.arxiv_api asks the network for any query it is not offline for).
            try:
                client = arxiv_for(settings, offline=True)
                found_since = submitted_between(client, category, start, end)
            except NetworkError:
                if offline:
                    raise
                client = arxiv_for(settings, offline=False)
                found_since = submitted_between(client, category, start, end)
                requests += 1
            from_cache |= client.session.used_cache
            for meta in found_since:
                found.setdefault(meta.key, from_metadata(meta))
    return list(found.values()), requests, from_cache


def _store(settings: Settings, items: list[Announcement], *, session: Session) -> None:
    """Keep the listed items (for triage, ranking negatives, reviews) and count the new ones as seen."""
    new = []
    for item in items:
        row = session.get(FeedItem, item.key)
        if row is None:
            new.append(item.key)
            row = FeedItem(key=item.key, title=item.title, announced=item.announced)
        row.version, row.title, row.authors = item.version, item.title, item.authors
        row.abstract, row.categories, row.announce_type = item.abstract, item.categories, item.announce_type
        row.announced = item.announced
        session.add(row)
    session.flush()
    decisions.mark_seen(settings, new, session=session)


def read_feed(settings: Settings, given: list[str], *, since: date | None = None, show_all: bool = False,
              offline: bool = False, progress: Callable[[int, int], None] | None = None) -> FeedReport:
    """The announcements of ``given`` categories (and since a day), ranked by the catalog.

    ``progress(done, total)`` is called before each download and before the ranking (the CLI's
    progress bar).
    """
    categories = categories_of(settings, given)
    downloads = len(categories) * (2 if since else 1)       # each feed, each --since query; then the ranking

    def step(done: int) -> None:
        if progress is not None:
            progress(done, downloads + 1)

    items, requests, from_cache = _gather(settings, categories, since, offline, step)
    step(downloads)
    report = FeedReport(categories, requests=requests, from_cache=from_cache)
    with session_scope(settings, write=True) as session:
        _store(settings, items, session=session)
        decided = decisions.decisions_by_key(session=session)
        have = {key: version for key, version in session.exec(select(Paper.key, Paper.version))}
        shown = []
        for item in items:
            in_catalog = item.key in have
            replacement = item.announce_type.startswith("replace")
            if not show_all and (item.key in decided or (in_catalog and not replacement)):
                report.hidden += 1
                continue
            shown.append(item)
        model = load_model(settings, session=session)
    report.ranked = model is not None
    report.items = rank(model, shown)
    step(downloads + 1)
    for entry in report.items:
        key = entry.item.key
        if key in have and entry.item.announce_type.startswith("replace"):
            entry.note = "new version of a paper you have" + (f" (you have v{have[key]})" if have[key] else "")
        if key in decided:
            entry.note = ((entry.note + "; ") if entry.note else "") + f"decided: {decided[key].action}"
    return report


def skip(settings: Settings, refs: list[str]) -> list[str]:
    """``kb feed skip ID...``: a "skipped" decision for each id (any id form)."""
    from kb.ids import parse_id

    keys = [parse_id(r).key for r in refs]
    if not keys:
        raise BadInput("give the ids to skip: kb feed skip 2512.01234 ...")
    with session_scope(settings, write=True) as session:
        decisions.decide(settings, keys, "skipped", session=session)
    return keys

