"""Schedules: cron expressions that enqueue jobs (design.md, Jobs and schedules).

``tick`` is what cron or a systemd timer calls every minute. It enqueues each due schedule's job
exactly once per due time, on SQLite and PostgreSQL alike: the schedule's ``next_due`` moves on by
compare-and-set in the same transaction that inserts the job, so of two ticks at once only one
wins, and ``(schedule_id, due)`` is unique in the job table besides. A tick that comes late
collapses the due times it missed into one job, which says how many it stands for.

Schedules are written by people, so they live in a file too: every change (add, pause, resume,
remove, and a tick moving ``next_due`` on) rewrites ``KB_HOME/schedules.json`` from inside the
transaction that made it, and ``kb sync`` loads the schedules the catalog lacks from it. The file
is ``{"format": "kb-schedules/1", "schedules": [...]}`` with one object per schedule, a key per
column of the ``schedule`` table (``id``, ``runner``, ``preset``, ``overrides``, ``cron``, ``tz``,
``executor``, ``time_limit_s``, ``paused``, and ``next_due``, ``last_due``, ``created`` in ISO 8601).
Jobs are not in a file: the queue is transient, and a rebuilt catalog starts with an empty one.
"""

import json
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select, update

from kb.db import session_scope
from kb.errors import BadInput, NotFound
from kb.files import write_atomic
from kb.jobs import check_executor, new_job
from kb.models import Job, Schedule, utcnow
from kb.settings import Settings

# A tick weeks late on a every-minute schedule must still finish quickly.
_MAX_COUNTED = 100_000


def zone(name: str):
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"--tz {name!r} is not a time zone; use an IANA name such as UTC, Europe/Berlin or Asia/Tokyo") from None


def _firing(cron: str, tz: str, start: datetime):
    """A croniter over ``cron`` read in zone ``tz``, from ``start``; a bad expression is a ``BadInput``."""
    from croniter import CroniterError, croniter

    fields = cron.split()
    if not (len(fields) == 5 or (len(fields) == 1 and cron.strip().startswith("@"))):
        raise BadInput(f"cron expression {cron!r}: expected five fields (minute hour day month weekday) "
                       "or an alias such as @daily; ticks come once a minute, so there is no seconds field")
    try:
        return croniter(cron, start.astimezone(zone(tz)))
    except (CroniterError, ValueError, KeyError) as exc:
        raise BadInput(f"cron expression {cron!r}: {exc}") from None


def _following(firing, cron: str) -> datetime:
    from croniter import CroniterError

    try:
        return firing.get_next(datetime).astimezone(timezone.utc)
    except (CroniterError, ValueError) as exc:
        raise BadInput(f"cron expression {cron!r} never fires: {exc}") from None


def next_due(cron: str, tz: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``cron`` (read in zone ``tz``) fires, in UTC.

    Raises:
        BadInput: the expression is not a five-field cron expression (or an ``@daily`` alias), or
            it never fires (``0 0 30 2 *``).
    """
    return _following(_firing(cron, tz, after), cron)


def add(settings: Settings, runner: str, *, session: Session, cron: str, preset: str | None = None,
        overrides: tuple[str, ...] = (), tz: str = "UTC", executor: str | None = None,
        time_limit_s: int | None = None, now: datetime | None = None) -> Schedule:
    """A new schedule, checked now: the runner, preset, overrides, expression and zone must all resolve."""
    from kb.runs import config as run_config
    from kb.runs.registry import load_registry

    spec = load_registry(settings.runner_paths).get(runner)
    preset, _ = run_config.resolve(spec, preset, overrides)
    check_executor(executor)
    if time_limit_s is not None and time_limit_s <= 0:
        raise BadInput("--time-limit must be a positive number of minutes")
    schedule = Schedule(runner=spec.name, preset=preset, overrides=list(overrides), cron=" ".join(cron.split()), tz=tz,
                        executor=executor, time_limit_s=time_limit_s, next_due=next_due(cron, tz, now or utcnow()))
    session.add(schedule)
    save_schedules(settings, session=session)
    return schedule


def list_schedules(*, session: Session) -> list[Schedule]:
    return list(session.exec(select(Schedule).order_by(Schedule.id)))


def get_schedule(schedule_id: int, *, session: Session) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}; see `kb schedule list`")
    return schedule


def pause(settings: Settings, schedule_id: int, *, session: Session) -> Schedule:
    schedule = get_schedule(schedule_id, session=session)
    schedule.paused = True
    session.add(schedule)
    save_schedules(settings, session=session)
    return schedule


def resume(settings: Settings, schedule_id: int, *, session: Session, now: datetime | None = None) -> Schedule:
    """Unpause; the due times that passed while paused are skipped, not collapsed into a job."""
    schedule = get_schedule(schedule_id, session=session)
    if schedule.paused:
        schedule.paused = False
        schedule.next_due = next_due(schedule.cron, schedule.tz, now or utcnow())
        session.add(schedule)
        save_schedules(settings, session=session)
    return schedule


def remove(settings: Settings, schedule_id: int, *, session: Session) -> Schedule:
    """Delete a schedule; the jobs it enqueued stay (with their ``schedule_id``)."""
    schedule = get_schedule(schedule_id, session=session)
    session.delete(schedule)
    save_schedules(settings, session=session)
    return schedule


SCHEDULES_FORMAT = "kb-schedules/1"
_TIMES = ("next_due", "last_due", "created")


def schedules_file(settings: Settings) -> Path:
    return settings.home / "schedules.json"


def save_schedules(settings: Settings, *, session: Session) -> None:
    """Write every schedule, as this transaction sees them, to ``KB_HOME/schedules.json``.

    Called after a change is flushed, so the transaction holds SQLite's write lock; on PostgreSQL
    an advisory lock does the same: two changes at once write the file one after the other, and the
    later sees the earlier's committed schedule.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.exec(text("SELECT pg_advisory_xact_lock(2718281830)"))
    session.flush()
    rows = []
    for schedule in session.exec(select(Schedule).order_by(Schedule.id).execution_options(populate_existing=True)):
        row = schedule.model_dump()
        rows.append({**row, **{key: row[key].isoformat() if row[key] else None for key in _TIMES}})
    write_atomic(schedules_file(settings), json.dumps({"format": SCHEDULES_FORMAT, "schedules": rows}, indent=1,
                                                      ensure_ascii=False) + "\n")


def load_schedules(settings: Settings, *, session: Session) -> tuple[int, list[str]]:
    """Add the schedules of ``KB_HOME/schedules.json`` that the catalog lacks, with their ids;
    then write the file from the catalog (a catalog older than the file gets one). Returns
    (how many were added, problems); an unreadable file is a problem and changes nothing."""
    path = schedules_file(settings)
    if not path.exists():
        if list_schedules(session=session):
            save_schedules(settings, session=session)
        return 0, []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != SCHEDULES_FORMAT:
            raise ValueError(f"not a kb schedules file (expected format {SCHEDULES_FORMAT})")
        stored = []
        for row in data["schedules"]:
            times = {key: datetime.fromisoformat(row[key]) if row.get(key) else None for key in _TIMES}
            stored.append(Schedule.model_validate({**row, **times}))
    except (OSError, UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        return 0, [f"{path}: cannot read the schedules ({exc}); they were not loaded"]
    known = {schedule.id for schedule in list_schedules(session=session)}
    added = [schedule for schedule in stored if schedule.id not in known]
    session.add_all(added)
    session.flush()
    if added and session.get_bind().dialect.name == "postgresql":
        # Explicit ids leave the id sequence behind; the next `kb schedule add` must not reuse one.
        session.exec(text("SELECT setval(pg_get_serial_sequence('schedule', 'id'), (SELECT max(id) FROM schedule))"))
    save_schedules(settings, session=session)
    return len(added), []


def due_times(schedule: Schedule, now: datetime) -> tuple[list[datetime], datetime]:
    """The due times from ``schedule.next_due`` up to ``now``, oldest first, and the first one after ``now``."""
    firing = _firing(schedule.cron, schedule.tz, schedule.next_due)
    times, following = [schedule.next_due], _following(firing, schedule.cron)
    while following <= now:
        if len(times) == _MAX_COUNTED:
            return times, next_due(schedule.cron, schedule.tz, now)
        times.append(following)
        following = _following(firing, schedule.cron)
    return times, following


def tick(settings: Settings, *, now: datetime | None = None) -> list[Job]:
    """Enqueue one job for every schedule that has come due; returns the jobs this tick enqueued."""
    from kb.runs.registry import load_registry

    now = now or utcnow()
    with session_scope(settings) as session:
        due = [(s.id, s.next_due) for s in session.exec(
            select(Schedule).where(Schedule.paused == False, Schedule.next_due <= now).order_by(Schedule.id))]  # noqa: E712
    registry = load_registry(settings.runner_paths)
    enqueued = []
    for schedule_id, seen_due in due:
        try:
            with session_scope(settings) as session:
                schedule = session.get(Schedule, schedule_id)
                if schedule is None:
                    continue
                times, following = due_times(schedule, now)
                # Compare-and-set: a tick that read the same next_due and got here first wins.
                moved = session.exec(update(Schedule).where(Schedule.id == schedule_id, Schedule.next_due == seen_due)
                                     .values(next_due=following, last_due=times[-1]))
                if moved.rowcount != 1:
                    continue
                job = new_job(registry.get(schedule.runner), preset=schedule.preset, overrides=schedule.overrides,
                              executor=schedule.executor, time_limit_s=schedule.time_limit_s)
                job.schedule_id, job.due, job.missed = schedule_id, times[-1], len(times) - 1
                if job.missed:
                    job.info = {"missed": [t.isoformat() for t in times[:-1][-20:]],
                                "note": f"this tick came late: {job.missed} earlier due time(s) since "
                                        f"{times[0].isoformat()} are collapsed into this job"}
                session.add(job)
                session.flush()
                save_schedules(settings, session=session)
                enqueued.append(job)
        except IntegrityError:
            continue  # the unique (schedule_id, due): another tick enqueued this due time
    return enqueued


@dataclass(frozen=True)
class InstallFiles:
    """What ``kb schedule install`` prints: a crontab and systemd units calling tick and a worker."""

    crontab: str
    units: dict[str, str]


def install_files(settings: Settings, *, kb_command: str) -> InstallFiles:
    """A crontab (tick every minute, a worker at boot) and systemd units doing the same.

    Args:
        settings: where the catalog and papers are; written into the files so they need no shell.
        kb_command: how to call kb (an absolute path).

    Every setting a worker needs (``kb.settings.VARIABLES``) that is set here is written into the
    files, so a tick or worker started by cron or systemd sees what this shell sees.
    """
    values = settings.passed_on()
    exports = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in values.items())
    project, log = shlex.quote(str(settings.project)), shlex.quote(str(settings.home / "schedule.log"))
    crontab = (f"* * * * * cd {project} && {exports} {kb_command} schedule tick >> {log} 2>&1\n"
               f"@reboot cd {project} && {exports} {kb_command} worker >> {shlex.quote(str(settings.home / 'worker.log'))} 2>&1\n")
    environment = "".join(f'Environment="{k}={v}"\n' for k, v in values.items())
    units = {
        "kb-tick.service": ("[Unit]\nDescription=kb: enqueue the scheduled runs that are due\n\n"
                            f"[Service]\nType=oneshot\nWorkingDirectory={settings.project}\n{environment}"
                            f"ExecStart={kb_command} schedule tick\n"),
        "kb-tick.timer": ("[Unit]\nDescription=kb: tick the schedules every minute\n\n"
                          "[Timer]\nOnCalendar=*-*-* *:*:00\nAccuracySec=1s\nPersistent=true\n\n"
                          "[Install]\nWantedBy=timers.target\n"),
        "kb-worker.service": ("[Unit]\nDescription=kb: run queued jobs\nAfter=network-online.target\n\n"
                              f"[Service]\nWorkingDirectory={settings.project}\n{environment}"
                              f"ExecStart={kb_command} worker\nRestart=always\nRestartSec=10\n"
                              # SIGTERM lets the running job stop at a checkpoint and go back to the queue.
                              "KillSignal=SIGTERM\nKillMode=mixed\nTimeoutStopSec=300\n\n"
                              "[Install]\nWantedBy=default.target\n"),
    }
    return InstallFiles(crontab=crontab, units=units)


def describe(schedule: Schedule) -> dict[str, Any]:
    """A schedule for listings: its next due time in UTC and in its own zone."""
    local = schedule.next_due.astimezone(zone(schedule.tz))
    return {"id": schedule.id, "runner": schedule.runner, "preset": schedule.preset, "overrides": schedule.overrides,
            "cron": schedule.cron, "tz": schedule.tz, "executor": schedule.executor, "paused": schedule.paused,
            "time_limit_s": schedule.time_limit_s, "next_due": schedule.next_due.isoformat(),
            "next_due_local": local.isoformat(), "last_due": schedule.last_due.isoformat() if schedule.last_due else None,
            "in": None if schedule.paused else _until(schedule.next_due)}


def _until(when: datetime) -> str:
    seconds = int((when - utcnow()).total_seconds())
    if seconds <= 0:
        return "due now"
    return f"in {timedelta(seconds=seconds)}"
