"""arXiv's RSS 2.0 announcement feeds: fetched once per category and announcement day, cached, parsed.

arXiv announces new submissions at 20:00 US Eastern time, Sunday to Thursday; the feed of a category
holds the last announcement (none on weekends and holidays: an empty feed is normal). Each item's
description reads ``arXiv:<id>vN Announce Type: new|cross|replace|replace-cross Abstract: ...``, and
``dc:creator`` lists the authors. A feed fetched after the last announcement is answered from the cache
until the next one, so a second call the same day makes no request. Requests go through
kb/arxiv_api.py's machine-wide polite limiter.
"""

import re
import time
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from kb.arxiv_api import Metadata, Policy, _polite, _write_bytes
from kb.errors import BadInput, KBError, NetworkError
from kb.ids import parse_id
from kb.settings import Settings

RSS_DEFAULT = "https://rss.arxiv.org/rss/"
CATEGORIES_DEFAULT = "cs.CV"
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
_EASTERN = ZoneInfo("America/New_York")
_ANNOUNCE_HOUR = 20
_ANNOUNCE_WEEKDAYS = {6, 0, 1, 2, 3}          # Sunday to Thursday (Monday is 0)
_DESCRIPTION = re.compile(r"arXiv:(?P<id>\S+?)\s+Announce Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:\s*)?(?P<abstract>.*)",
                          re.S)
_CATEGORY = re.compile(r"^[a-z-]+(\.[A-Za-z-]+)?$")
_STAMP = "%Y%m%dT%H%M%SZ"


@dataclass
class Announcement(Metadata):
    """One item of an announcement feed (or of a ``--since`` query of the arXiv API).

    Its authors keep the affiliations the feed gives (``Ada Lovelace (Univ. of London)``), for triage.
    """

    announce_type: str = "new"                  # new | cross | replace | replace-cross
    announced: str = ""                         # YYYY-MM-DD

    def to_metadata(self) -> Metadata:
        """What ``kb add`` stores, taken from the feed (``kb refresh`` later fills the rest)."""
        values = {f.name: getattr(self, f.name) for f in fields(Metadata)}
        values["authors"] = [re.sub(r"\s*\([^)]*\)", "", a) for a in self.authors]   # the catalog keeps names only
        return Metadata(**values)


@dataclass
class Fetched:
    announcements: list[Announcement] = field(default_factory=list)
    requests: int = 0
    from_cache: bool = False


def categories_of(settings: Settings, given: list[str]) -> list[str]:
    """The categories asked for, or ``KB_FEED_CATEGORIES``; each checked (``cs.CV``, ``hep-th``)."""
    raw = given or re.split(r"[\s,]+", settings.get("KB_FEED_CATEGORIES") or CATEGORIES_DEFAULT)
    categories = [c for c in raw if c]
    bad = [c for c in categories if not _CATEGORY.match(c)]
    if bad:
        raise BadInput(f"not an arXiv category: {', '.join(bad)} (expected e.g. cs.CV or eess.IV)")
    return list(dict.fromkeys(categories))


def next_announcement(after: datetime) -> datetime:
    """The first arXiv announcement (20:00 US Eastern, Sunday to Thursday) strictly after ``after``."""
    local = after.astimezone(_EASTERN)
    candidate = local.replace(hour=_ANNOUNCE_HOUR, minute=0, second=0, microsecond=0)
    while candidate <= local or candidate.weekday() not in _ANNOUNCE_WEEKDAYS:
        candidate = (candidate + timedelta(days=1)).replace(hour=_ANNOUNCE_HOUR)
    return candidate.astimezone(timezone.utc)


def parse_feed(content: bytes, *, fetched: date) -> list[Announcement]:
    """The items of one RSS answer; items that name no arXiv id are left out."""
    import feedparser

    parsed = feedparser.parse(content)
    if parsed.bozo and not parsed.entries and not parsed.feed.get("title"):
        raise NetworkError("the arXiv RSS answer is not a feed; try again later")
    channel_day = _day(parsed.feed.get("published_parsed")) or fetched.isoformat()
    found = []
    for entry in parsed.entries:
        match = _DESCRIPTION.match(" ".join((entry.get("description") or "").split()))
        try:
            pid = parse_id(match["id"] if match else entry.get("link", ""))
        except KBError:
            continue
        announce_type = entry.get("arxiv_announce_type") or (match["type"] if match else "new")
        announced = _day(entry.get("published_parsed")) or channel_day
        day = datetime.fromisoformat(announced).replace(tzinfo=timezone.utc)
        categories = [t["term"] for t in entry.get("tags", []) if t.get("term")]
        found.append(Announcement(
            key=pid.key, version=pid.version, title=" ".join(entry.get("title", "").split()),
            authors=split_authors(entry.get("author", "")),
            abstract=match["abstract"].strip() if match else "", categories=categories,
            primary_category=categories[0] if categories else None,
            # A first version is announced days after submission; a replacement says nothing of v1's date.
            published=day if (pid.version or 1) == 1 else None, updated=day, doi=None, journal_ref=None,
            comment=None, announce_type=announce_type if announce_type in ANNOUNCE_TYPES else "new",
            announced=announced,
        ))
    return found


def split_authors(creators: str) -> list[str]:
    """``dc:creator`` names: ``A, B and C`` (affiliations, when arXiv gives them, in parentheses)."""
    names, depth, current = [], 0, ""
    for char in " ".join(creators.split()):
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            names.append(current)
            current = ""
        else:
            current += char
    names.append(current)
    split = [part for name in names for part in re.split(r"\s+and\s+(?![^()]*\))", name)]
    return [n.strip() for n in split if n.strip()]


def _day(struct) -> str | None:
    return time.strftime("%Y-%m-%d", struct) if struct else None


def _cache_dir(settings: Settings, category: str) -> Path:
    return settings.cache_dir / "feed" / "rss" / category


def _cached(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.xml")) if folder.is_dir() else []


def fetch_feed(settings: Settings, category: str, *, offline: bool, now: datetime | None = None) -> Fetched:
    """One category's current announcement feed: from the cache while no announcement came since."""
    now = now or datetime.now(timezone.utc)
    folder = _cache_dir(settings, category)
    cached = _cached(folder)
    latest = cached[-1] if cached else None
    if latest is not None:
        fetched_at = datetime.strptime(latest.stem, _STAMP).replace(tzinfo=timezone.utc)
        if offline or now < next_announcement(fetched_at):
            return Fetched(parse_feed(latest.read_bytes(), fetched=fetched_at.date()), 0, True)
    if offline:
        raise NetworkError(f"offline and no {category} feed is cached; run `kb feed {category}` once with network")
    content = _get(settings, (settings.get("KB_ARXIV_RSS") or RSS_DEFAULT).rstrip("/") + "/" + category, latest)
    if content is None:
        return Fetched(parse_feed(latest.read_bytes(), fetched=now.date()), 1, True)
    announcements = parse_feed(content, fetched=now.date())
    folder.mkdir(parents=True, exist_ok=True)
    _write_bytes(folder / f"{now.strftime(_STAMP)}.xml", content)
    return Fetched(announcements, 1, False)


def _get(settings: Settings, url: str, fallback: Path | None) -> bytes | None:
    """The feed's bytes; None when arXiv cannot be reached but an older copy is cached."""
    import requests

    policy = Policy(min_interval=settings.arxiv_delay)
    try:
        with _polite(settings.cache_dir / "arxiv", policy.min_interval):
            response = requests.get(url, timeout=policy.timeout)
    except (requests.ConnectionError, requests.Timeout):
        if fallback is not None:
            return None
        raise NetworkError(f"cannot reach {url} and no copy is cached; check the network or KB_ARXIV_RSS") from None
    if response.status_code != 200:
        if fallback is not None:
            return None
        raise NetworkError(f"{url} answered HTTP {response.status_code}; check the category and KB_ARXIV_RSS, or try later")
    return response.content


def submitted_between(client, category: str, start: datetime, end: datetime, *, limit: int = 2000) -> list[Metadata]:
    """The papers of ``category`` submitted in ``[start, end)``, through the arXiv API's date query.

    An adapter over kb/arxiv_api.py's ``Arxiv`` (its client, limiter and cache): that module looks
    papers up by id and title only.
    """
    query = f"submittedDate:[{start:%Y%m%d%H%M} TO {end:%Y%m%d%H%M}] AND cat:{category}"
    return client.query(search_query=query, max_results=limit, sort_by="submittedDate")


def from_metadata(meta: Metadata) -> Announcement:
    day = (meta.published or datetime.now(timezone.utc)).date().isoformat()
    return Announcement(**vars(meta), announce_type="new" if (meta.version or 1) == 1 else "replace", announced=day)
