"""Schedules: cron expressions that enqueue jobs (design.md, Jobs and schedules).

``tick`` is what cron or a systemd timer calls every minute. It enqueues each due schedule's job
exactly once per due time, on SQLite and PostgreSQL alike: the schedule's ``next_due`` moves on by
compare-and-set in the same transaction that inserts the job, so of two ticks at once only one
wins, and ``(schedule_id, due)`` is unique in the job table besides. A tick that comes late
collapses the due times it missed into one job, which says how many it stands for.
"""

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select, update

from kb.db import session_scope
from kb.errors import BadInput, NotFound
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
    session.flush()
    return schedule


def list_schedules(*, session: Session) -> list[Schedule]:
    return list(session.exec(select(Schedule).order_by(Schedule.id)))


def get_schedule(schedule_id: int, *, session: Session) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"no schedule {schedule_id}; see `kb schedule list`")
    return schedule


def pause(schedule_id: int, *, session: Session) -> Schedule:
    schedule = get_schedule(schedule_id, session=session)
    schedule.paused = True
    session.add(schedule)
    return schedule


def resume(schedule_id: int, *, session: Session, now: datetime | None = None) -> Schedule:
    """Unpause; the due times that passed while paused are skipped, not collapsed into a job."""
    schedule = get_schedule(schedule_id, session=session)
    if schedule.paused:
        schedule.paused = False
        schedule.next_due = next_due(schedule.cron, schedule.tz, now or utcnow())
        session.add(schedule)
    return schedule


def remove(schedule_id: int, *, session: Session) -> Schedule:
    """Delete a schedule; the jobs it enqueued stay (with their ``schedule_id``)."""
    schedule = get_schedule(schedule_id, session=session)
    session.delete(schedule)
    return schedule


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
