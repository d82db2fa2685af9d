"""Feed decisions (added, starred, skipped, later) and the reading log's daily counts.

Decisions are user data, so the file is the truth (design.md): every decision is appended to
``KB_HOME/feed/decisions.jsonl`` and fsynced before the catalog is updated, and ``kb sync``
replays the file into an emptied ``feed_decision`` / ``reading_day`` pair. The catalog is updated
by the same function in both cases (``apply_event``), so a rebuilt catalog equals the live one.

Events, one JSON object a line: ``{"at": ISO time, "action": "seen", "keys": [...]}`` when items are
first listed; ``{"at", "action": added|starred|skipped|later, "key", "tags", "previous"}``;
``{"at", "action": "undo", "key", "undone": <the event undone>}``.
"""

import json
import os
from datetime import datetime
from pathlib import Path

from sqlmodel import Session, delete, select

from kb.errors import BadInput
from kb.models import FeedDecision, FeedItem, ReadingDay, utcnow
from kb.settings import Settings

ACTIONS = ("added", "starred", "skipped", "later")
ADDING = ("added", "starred")


def log_path(settings: Settings) -> Path:
    return settings.home / "feed" / "decisions.jsonl"


def append_events(settings: Settings, events: list[dict]) -> None:
    """Append events to the decisions file and fsync it: a killed process loses nothing written."""
    if not events:
        return
    path = log_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events))
        handle.flush()
        os.fsync(handle.fileno())


def _day_row(at: str, *, session: Session) -> ReadingDay:
    day = at[:10]
    row = session.get(ReadingDay, day)
    if row is None:
        row = ReadingDay(day=day)
        session.add(row)
    return row


def _counts(event: dict) -> tuple[int, int]:
    """(added, starred) an event adds to its day: an item counts as added once, however decided."""
    previous = (event.get("previous") or {}).get("action")
    added = int(event["action"] in ADDING and previous not in ADDING)
    starred = int(event["action"] == "starred" and previous != "starred")
    return added, starred


def apply_event(event: dict, *, session: Session) -> None:
    """Put one event's effect into the catalog (live, or replayed by ``kb sync``)."""
    action = event["action"]
    if action == "seen":
        _day_row(event["at"], session=session).seen += len(event["keys"])
        for key in event["keys"]:
            # Replayed into a rebuilt catalog, an item seen before is known as seen (the next feed fills it in).
            if session.get(FeedItem, key) is None:
                session.add(FeedItem(key=key, title="", announced=event["at"][:10]))
    elif action == "undo":
        undone = event["undone"]
        added, starred = _counts(undone)
        row = _day_row(undone["at"], session=session)
        row.added, row.starred = row.added - added, row.starred - starred
        _set_decision(undone["key"], undone.get("previous"), session=session)
    else:
        added, starred = _counts(event)
        row = _day_row(event["at"], session=session)
        row.added, row.starred = row.added + added, row.starred + starred
        _set_decision(event["key"], {"action": action, "tags": event.get("tags", []), "at": event["at"]}, session=session)
    session.flush()


def _set_decision(key: str, decision: dict | None, *, session: Session) -> None:
    row = session.get(FeedDecision, key)
    if decision is None:
        if row is not None:
            session.delete(row)
        return
    row = row or FeedDecision(key=key, action=decision["action"])
    row.action, row.tags = decision["action"], list(decision.get("tags") or [])
    row.decided = datetime.fromisoformat(decision["at"])
    session.add(row)


def _now() -> str:
    return utcnow().isoformat()


def decide(settings: Settings, keys: list[str], action: str, *, session: Session, tags: list[str] = ()) -> list[dict]:
    """Record one decision about each key: in the file first, then in the catalog."""
    if action not in ACTIONS:
        raise BadInput(f"unknown decision {action!r}; choose one of {', '.join(ACTIONS)}")
    events = []
    for key in dict.fromkeys(keys):
        row = session.get(FeedDecision, key)
        previous = {"action": row.action, "tags": row.tags, "at": row.decided.isoformat()} if row else None
        events.append({"at": _now(), "action": action, "key": key, "tags": list(tags), "previous": previous})
    append_events(settings, events)
    for event in events:
        apply_event(event, session=session)
    return events


def undo(settings: Settings, event: dict, *, session: Session) -> None:
    """Take back one decision event (as ``decide`` returned it)."""
    undo_event = {"at": _now(), "action": "undo", "key": event["key"], "undone": event}
    append_events(settings, [undo_event])
    apply_event(undo_event, session=session)


def mark_seen(settings: Settings, keys: list[str], *, session: Session) -> None:
    if keys:
        event = {"at": _now(), "action": "seen", "keys": list(keys)}
        append_events(settings, [event])
        apply_event(event, session=session)


def record_added(settings: Settings, keys: list[str], *, session: Session) -> None:
    """``kb add`` of papers a feed listed: an "added" decision for each (others are left alone)."""
    listed = [k for k in keys if session.get(FeedItem, k) is not None]
    undecided = [k for k in listed if getattr(session.get(FeedDecision, k), "action", None) not in ADDING]
    if undecided:
        decide(settings, undecided, "added", session=session)


def reload_decisions(settings: Settings, *, session: Session) -> int:
    """Replace the catalog's decisions and daily counts with the file's (``kb sync``); returns events read."""
    session.exec(delete(FeedDecision))
    session.exec(delete(ReadingDay))
    session.flush()
    path = log_path(settings)
    if not path.exists():
        return 0
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for number, line in enumerate(lines, 1):
        try:
            apply_event(json.loads(line), session=session)
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                # A last line cut short by a crash mid-append: its decision never reached the catalog either.
                return number - 1
            raise BadInput(f"{path}: line {number} is not a decision record; fix or remove that line, then `kb sync`") from None
    return len(lines)


def decisions_by_key(*, session: Session) -> dict[str, FeedDecision]:
    return {d.key: d for d in session.exec(select(FeedDecision))}


def reading_log(*, session: Session) -> list[ReadingDay]:
    return list(session.exec(select(ReadingDay).order_by(ReadingDay.day.desc())))


def starred_keys(*, session: Session) -> set[str]:
    """Papers with a ★: starred in triage, or a note marked ``important`` (a ★ in the imported title)."""
    from kb.models import Note, Paper

    starred = {d.key for d in session.exec(select(FeedDecision).where(FeedDecision.action == "starred"))}
    starred |= set(session.exec(select(Paper.key).join(Note, Note.paper_id == Paper.id).where(Note.important)))
    return starred


def reload_feed_files(settings: Settings, *, session: Session) -> None:
    """``kb sync``'s hook: the catalog's feed decisions, daily counts and notes versions from their files."""
    from kb.feed.versions import reload_versions

    reload_decisions(settings, session=session)
    reload_versions(settings, session=session)
