"""Jobs: queued runs that workers claim atomically, heartbeat and record (design.md, Jobs and schedules).

A job goes ``queued -> running -> succeeded | failed | cancelled`` (``queued -> submitted ->
running`` when it goes to SLURM). Each claim increments ``attempts``, and every later change of a
claimed job is a compare-and-set on that number, so a process whose claim was taken from it (it
was found stale and the job given to another worker) can never overwrite the newer attempt.

A local worker runs each job in a forked child process, fast because kb and torch are already
imported in the worker:

- the child heartbeats from a thread with its own connection; when the job is cancelled, reaches
  its time limit, its worker is stopping (SIGTERM) or the job was given to another worker, the
  heartbeat asks the run to stop, and the run ends at its next step with a checkpoint;
- the child dies with its worker (``PR_SET_PDEATHSIG``), so a worker killed with SIGKILL leaves a
  job whose heartbeat stops; any worker then finds it stale and requeues it with exponential
  backoff, up to ``max_lost`` times, after which it fails with the reason;
- the worker kills a child that outlives its time limit, or its stop request, by the grace period.

The SLURM executor submits the same attempt through ``submitit``; the node runs the same code.
"""

import gc
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import func
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, select, update

from kb.db import engine_for, session_scope
from kb.errors import BadInput, KBError, NotFound
from kb.models import Job, RunRecord, utcnow
from kb.runs.record_file import write_record
from kb.runs.registry import Resources, RunnerSpec
from kb.settings import Settings, read_environment

ACTIVE = ("submitted", "running")
FINISHED = ("succeeded", "failed", "cancelled")
STATUSES = ("queued", *ACTIVE, *FINISHED)
EXECUTORS = ("local", "slurm")
MAX_LOST = 3


@dataclass(frozen=True)
class Timing:
    """How often a running job proves it is alive, and how the queue reacts when it stops.

    Attributes:
        heartbeat_s: seconds between heartbeats of a running job (``KB_JOB_HEARTBEAT``).
        stale_s: a job without a heartbeat for this long is taken as lost (``KB_JOB_STALE``).
        backoff_s: a lost job waits this long before its retry, doubled at each further loss
            (``KB_JOB_BACKOFF``).
        grace_s: how long a run asked to stop may take to write its checkpoint before it is killed
            (``KB_JOB_GRACE``).
    """

    heartbeat_s: float = 10.0
    stale_s: float = 90.0
    backoff_s: float = 30.0
    grace_s: float = 120.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Timing":
        env = read_environment(env)
        names = {"heartbeat_s": "KB_JOB_HEARTBEAT", "stale_s": "KB_JOB_STALE", "backoff_s": "KB_JOB_BACKOFF",
                 "grace_s": "KB_JOB_GRACE"}
        values = {}
        for key, name in names.items():
            if env.get(name):
                try:
                    values[key] = float(env[name])
                except ValueError:
                    raise BadInput(f"{name}={env[name]!r}: expected a number of seconds") from None
        timing = cls(**values)
        if timing.heartbeat_s <= 0 or timing.stale_s < 3 * timing.heartbeat_s:
            raise BadInput(f"KB_JOB_STALE ({timing.stale_s:g}s) must be at least three heartbeats "
                           f"(KB_JOB_HEARTBEAT {timing.heartbeat_s:g}s)")
        return timing


@dataclass(frozen=True)
class SlurmOptions:
    """Where the SLURM executor sends jobs (``KB_SLURM_PARTITION``, ``KB_SLURM_ACCOUNT``).

    ``cluster`` is submitit's: ``slurm``, or ``local`` / ``debug`` to try the same path without a
    cluster (``KB_SLURM_CLUSTER``).
    """

    partition: str | None = None
    account: str | None = None
    cluster: str = "slurm"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "SlurmOptions":
        env = read_environment(env)
        cluster = env.get("KB_SLURM_CLUSTER") or "slurm"
        if cluster not in ("slurm", "local", "debug"):
            raise BadInput(f"KB_SLURM_CLUSTER={cluster!r}: use slurm, local or debug")
        return cls(partition=env.get("KB_SLURM_PARTITION") or None, account=env.get("KB_SLURM_ACCOUNT") or None,
                   cluster=cluster)


def check_executor(executor: str | None) -> None:
    if executor is not None and executor not in EXECUTORS:
        raise BadInput(f"executor {executor!r}: use {' or '.join(EXECUTORS)}")


# -- the queue -----------------------------------------------------------------------------


def new_job(spec: RunnerSpec, *, preset: str, overrides: list[str] | tuple[str, ...] = (), seed: int = 0,
            device: str = "auto", data: str | None = None, resume: str | None = None, executor: str | None = None,
            time_limit_s: int | None = None) -> Job:
    """An unsaved queued job; its time limit defaults to the runner's ``resources.time_min``."""
    check_executor(executor)
    return Job(runner=spec.name, preset=preset, overrides=list(overrides), seed=seed, device=device, data=data,
               resume=resume, executor=executor, time_limit_s=time_limit_s or spec.resources.time_min * 60,
               max_lost=MAX_LOST)


def enqueue(settings: Settings, request, *, executor: str | None = None, time_limit_s: int | None = None) -> Job:
    """Queue a run (``kb reproduce ... --queue``); the request is checked now, as ``kb reproduce`` would."""
    from kb.runs.execute import plan

    resolved = plan(settings, request)
    job = new_job(resolved.spec, preset=resolved.preset, overrides=request.overrides, seed=resolved.seed,
                  device=request.device, data=str(resolved.data) if request.data else None,
                  resume=resolved.record.id if resolved.record else None, executor=executor, time_limit_s=time_limit_s)
    with session_scope(settings) as session:
        session.add(job)
        session.flush()
    return job


def list_jobs(*, session: Session, status: str | None = None, limit: int | None = 100) -> list[Job]:
    if status is not None and status not in STATUSES:
        raise BadInput(f"--status {status!r}: use one of {', '.join(STATUSES)}")
    query = select(Job).order_by(Job.id.desc())
    if status:
        query = query.where(Job.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def count_jobs(*, session: Session, status: str | None = None) -> int:
    """How many jobs ``list_jobs`` lists without a limit."""
    query = select(func.count()).select_from(Job)
    if status:
        query = query.where(Job.status == status)
    return session.exec(query).one()


def get_job(job_id: int, *, session: Session) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}; see `kb jobs`")
    return job


def describe(job: Job, *, now: datetime | None = None) -> dict[str, Any]:
    """A job for listings, with the age of its last heartbeat."""
    now = now or utcnow()
    row = job.model_dump()
    row["heartbeat_age_s"] = round((now - job.heartbeat).total_seconds(), 1) if job.heartbeat and job.status in ACTIVE else None
    return row


def cancel(job_id: int, *, session: Session) -> Job:
    """A queued job is cancelled at once; a running one is asked to stop (its run keeps a checkpoint)."""
    now = utcnow()
    waiting = session.exec(update(Job).where(Job.id == job_id, Job.status.in_(("queued", "submitted")))
                           .values(status="cancelled", ended=now, error="cancelled before it ran"))
    if waiting.rowcount != 1:
        session.exec(update(Job).where(Job.id == job_id, Job.status == "running").values(stop="cancelled"))
    job = get_job(job_id, session=session)
    if job.status in FINISHED and job.status != "cancelled":
        raise BadInput(f"job {job_id} already {job.status}; nothing to cancel")
    return job


def retry(job_id: int, *, session: Session) -> Job:
    """Queue a failed or cancelled job again; its last run is resumed when it left a checkpoint."""
    again = session.exec(update(Job).where(Job.id == job_id, Job.status.in_(("failed", "cancelled")))
                         .values(status="queued", lost=0, stop=None, error=None, ended=None, worker=None,
                                 external_id=None, not_before=utcnow()))
    job = get_job(job_id, session=session)
    if again.rowcount != 1:
        hint = "; enqueue a new run with `kb reproduce ... --queue`" if job.status == "succeeded" else ""
        raise BadInput(f"job {job_id} is {job.status}; only failed or cancelled jobs can be retried{hint}")
    return job


def claim(settings: Settings, *, worker: str) -> Job | None:
    """Take the oldest queued job whose backoff has passed, or None; no two callers get the same job.

    PostgreSQL skips rows another claim holds (``FOR UPDATE SKIP LOCKED``); SQLite has one writer at
    a time, and the conditional update below tells a lost race, after which the next job is tried.
    """
    with session_scope(settings) as session:
        while True:
            now = utcnow()
            found = session.exec(select(Job.id).where(Job.status == "queued", Job.not_before <= now)
                                 .order_by(Job.id).limit(1).with_for_update(skip_locked=True)).first()
            if found is None:
                return None
            taken = session.exec(update(Job).where(Job.id == found, Job.status == "queued")
                                 .values(status="running", worker=worker, claimed=now, heartbeat=now, stop=None,
                                         attempts=Job.attempts + 1))
            if taken.rowcount == 1:
                job = session.get(Job, found)
                session.refresh(job)
                return job


def _backoff_left(settings: Settings) -> float | None:
    """Seconds until the next queued job may be claimed; None when no job is queued."""
    with session_scope(settings) as session:
        due = session.exec(select(func.min(Job.not_before)).where(Job.status == "queued")).first()
    return None if due is None else max((due - utcnow()).total_seconds(), 0.0)


def _change(job: Job, values: dict[str, Any], *conditions, session: Session) -> bool:
    """Compare-and-set on the job's current attempt; False when the attempt is no longer current."""
    changed = session.exec(update(Job).where(Job.id == job.id, Job.attempts == job.attempts, Job.status.in_(ACTIVE),
                                             *conditions).values(**values))
    return changed.rowcount == 1


def _first_stop(reason: str):
    """``stop`` set to ``reason`` unless another reason came first (a cancel, a stopping worker)."""
    return func.coalesce(Job.stop, reason)


def _latest_run(job: Job, *, session: Session) -> RunRecord | None:
    """The newest run of this job. Job ids start again at 1 in a rebuilt catalog while the runs
    rebuilt from files keep theirs, so only runs created since the job count as its own."""
    return session.exec(select(RunRecord).where(RunRecord.job_id == job.id, RunRecord.created >= job.created)
                        .order_by(RunRecord.created.desc())).first()


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _stopped(job: Job, what: str, now: datetime) -> dict[str, Any]:
    """The job's new state when its attempt ended because somebody asked it to stop."""
    if job.stop == "cancelled":
        return {"status": "cancelled", "ended": now, "error": f"cancelled; {what}"}
    if job.stop == "time limit":
        return {"status": "failed", "ended": now,
                "error": f"time limit of {_duration(job.time_limit_s)} reached; {what}; `kb jobs retry {job.id}` resumes it"}
    return {"status": "queued", "not_before": now, "worker": None, "stop": None,
            "error": f"requeued ({job.stop or 'stopped by a signal'}); {what}"}


def _lost(job: Job, reason: str, timing: Timing, now: datetime) -> dict[str, Any]:
    """The job's new state when its attempt ended without a result (a killed worker or process)."""
    if job.stop:  # it was asked to stop: not the job's fault, nothing to back off from
        return _stopped(job, reason, now)
    lost = job.lost + 1
    if lost >= job.max_lost:
        return {"status": "failed", "lost": lost, "ended": now,
                "error": f"gave up after {lost} lost attempts; the last: {reason}"}
    delay = timing.backoff_s * 2 ** (lost - 1)
    return {"status": "queued", "lost": lost, "worker": None, "stop": None, "not_before": now + timedelta(seconds=delay),
            "error": f"attempt {job.attempts} lost ({reason}); retried after {delay:g}s"}


def _settle_lost(settings: Settings, job: Job, reason: str, timing: Timing, *conditions) -> str | None:
    """Record a lost attempt: its run (if any) fails with the reason, the job is requeued or fails."""
    now = utcnow()
    with session_scope(settings) as session:
        run = _latest_run(job, session=session)
        values = _lost(job, reason, timing, now)
        if run is not None:
            values["run_id"] = run.id
        if not _change(job, values, *conditions, session=session):
            return None
        # Each lost run fails in its record file too (the file is the truth; the row is its index).
        for lost in session.exec(select(RunRecord).where(RunRecord.job_id == job.id, RunRecord.status == "running",
                                                         RunRecord.created >= job.created)):
            lost.status, lost.ended = "failed", now
            lost.error = f"job {job.id} attempt {job.attempts} was lost: {reason}"
            session.add(lost)
            write_record(lost)
    if values["status"] == "failed":
        _check_regression(settings, job.id)
    return values["status"]


def recover_stale(settings: Settings, *, timing: Timing, now: datetime | None = None) -> list[tuple[Job, str]]:
    """Requeue (or fail) every active job whose heartbeat is older than ``timing.stale_s``.

    Returns the recovered jobs with their new status. Several workers may call this at once: the
    compare-and-set on the old heartbeat lets exactly one of them handle each job.
    """
    cutoff = (now or utcnow()) - timedelta(seconds=timing.stale_s)
    with session_scope(settings) as session:
        stale = list(session.exec(select(Job).where(Job.status.in_(ACTIVE), Job.heartbeat < cutoff)))
    recovered = []
    for job in stale:
        reason = (f"worker {job.worker} stopped heartbeating (last {job.heartbeat.isoformat(timespec='seconds')}, "
                  f"{job.status})")
        status = _settle_lost(settings, job, reason, timing, Job.heartbeat == job.heartbeat)
        if status is not None:
            recovered.append((job, status))
    return recovered


# -- one attempt, in the process that runs it ------------------------------------------------


class _Heartbeat(threading.Thread):
    """Proves an attempt alive, and asks its run to stop when the attempt must end.

    It must end when the job was cancelled, reached its time limit, its worker is stopping, or the
    job was given to another worker (this process looked dead for too long). The heartbeat is also
    the run's reporter: the stop reaches the run at its next logged step, which then checkpoints
    and ends ``interrupted`` (kb/runs/context.py).
    """

    def __init__(self, settings: Settings, job: Job, every: float) -> None:
        super().__init__(name=f"kb-heartbeat-{job.id}", daemon=True)
        self.settings, self.job, self.every = settings, job, every
        self.deadline = time.monotonic() + job.time_limit_s
        self.done = threading.Event()
        self.stop_wanted = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            try:
                with session_scope(self.settings) as session:
                    values: dict[str, Any] = {"heartbeat": utcnow()}
                    if time.monotonic() >= self.deadline:
                        values["stop"] = _first_stop("time limit")
                    kept = _change(self.job, values, Job.status == "running", session=session)
                    stop = session.exec(select(Job.stop).where(Job.id == self.job.id)).first()
            except SQLAlchemyError:
                continue  # the database is briefly unreachable; the next beat tries again
            if not kept or stop:
                self.stop_wanted.set()

    def update(self, run, _line: dict[str, Any]) -> None:
        if self.stop_wanted.is_set():
            run.request_stop()

    def end(self) -> None:
        self.done.set()
        self.join()


def request_for(job: Job, *, session: Session):
    """The run a job asks for; a retry continues the job's last run when that left a checkpoint."""
    from kb.runs.execute import Request

    resume = job.resume
    last = _latest_run(job, session=session)
    if last is not None and last.status in ("interrupted", "failed") and (Path(last.run_dir) / "checkpoints" / "last.pt").exists():
        resume = last.id
    return Request(runner=job.runner, preset=job.preset, overrides=tuple(job.overrides), device=job.device,
                   data=Path(job.data) if job.data else None, seed=job.seed, resume=resume, job_id=job.id)


def run_attempt(settings: Settings, job_id: int, attempt: int, *, heartbeat_s: float) -> str | None:
    """Run a claimed attempt in this process and record its outcome; returns the job's new status.

    None means the attempt was no longer the job's (it was found stale and given to another worker).
    """
    from kb.runs.execute import reproduce

    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        if job is None or job.attempts != attempt or job.status != "running":
            return None
        request = request_for(job, session=session)
    beat = _Heartbeat(settings, job, heartbeat_s)
    beat.start()
    run, error = None, None
    try:
        run = reproduce(settings, request, reporter=beat)
    except KBError as exc:  # it could not start: the runner, preset or data is gone
        error = str(exc)
    finally:
        beat.end()
    now = utcnow()
    with session_scope(settings) as session:
        current = session.get(Job, job_id)
        if run is None:
            values = {"status": "failed", "ended": now, "error": error}
        elif run.status in ("succeeded", "failed"):
            values = {"status": run.status, "ended": now, "error": run.error, "run_id": run.id}
        else:
            values = {**_stopped(current, f"run {run.id} was interrupted with a checkpoint", now), "run_id": run.id}
        if not _change(job, values, session=session):
            return None
    if values["status"] in ("succeeded", "failed"):
        _check_regression(settings, job_id)
    return values["status"]


def run_submitted(settings: Settings, job_id: int, attempt: int, heartbeat_s: float) -> str | None:
    """What a SLURM task runs: the attempt starts unless it was given to someone else meanwhile."""
    with session_scope(settings) as session:
        started = session.exec(update(Job).where(Job.id == job_id, Job.attempts == attempt, Job.status == "submitted")
                               .values(status="running", heartbeat=utcnow()))
        if started.rowcount != 1:
            return None
    return run_attempt(settings, job_id, attempt, heartbeat_s=heartbeat_s)


def _check_regression(settings: Settings, job_id: int) -> None:
    """A finished scheduled job's run is compared with the last good one (kb/runs/regression.py)."""
    from kb.runs.regression import Policy, check_job

    check_job(settings, job_id, policy=Policy.from_env(), command=settings.get("KB_ON_REGRESSION"))


def _die_with(parent: int) -> None:
    """Make this process die when the worker that forked it dies (Linux), so a killed worker's job
    stops heartbeating and is retried instead of running on unseen."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _child(settings: Settings, job_id: int, attempt: int, heartbeat_s: float, parent: int) -> None:
    _die_with(parent)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    # The pooled connections are the worker's; this process opens its own.
    engine_for(settings).dispose(close=False)
    run_attempt(settings, job_id, attempt, heartbeat_s=heartbeat_s)


# -- the worker ------------------------------------------------------------------------------


def slurm_parameters(resources: Resources, job: Job, options: SlurmOptions) -> dict[str, Any]:
    """submitit parameters for one job: the runner's needs, the job's time limit (plus the grace
    period to checkpoint), and the lab's partition and account."""
    values = {"name": f"kb-{job.runner}-{job.id}", "timeout_min": math.ceil(job.time_limit_s / 60) + 5,
              "gpus_per_node": resources.gpus, "cpus_per_task": resources.cpus, "mem_gb": resources.mem_gb,
              "slurm_partition": options.partition, "slurm_account": options.account}
    return {k: v for k, v in values.items() if v is not None}


def submit(settings: Settings, job: Job, *, slurm: SlurmOptions, heartbeat_s: float):
    """Send a claimed job to SLURM through submitit (or submitit's local or debug executor).

    Returns the submitit job, or None when the claim is no longer current or sbatch refused the
    job (then the job is failed with sbatch's reason).
    """
    import submitit

    from kb.runs.registry import load_registry

    spec = load_registry(settings.runner_paths).get(job.runner)
    executor = submitit.AutoExecutor(folder=settings.home / "slurm" / "%j", cluster=slurm.cluster)
    executor.update_parameters(**slurm_parameters(spec.resources, job, slurm))
    with session_scope(settings) as session:
        if not _change(job, {"status": "submitted", "heartbeat": utcnow()}, session=session):
            return None
    try:
        submitted = executor.submit(run_submitted, settings, job.id, job.attempts, heartbeat_s)
    except Exception as exc:  # noqa: BLE001 - sbatch fails in many ways; the job records why
        with session_scope(settings) as session:
            _change(job, {"status": "failed", "ended": utcnow(), "error": f"could not submit to SLURM: {exc}"}, session=session)
        return None
    with session_scope(settings) as session:
        _change(job, {"external_id": str(submitted.job_id), "info": {**job.info, "slurm_state": "SUBMITTED"}}, session=session)
    return submitted


@dataclass
class WorkerReport:
    worker: str
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)   # the job's status after each attempt
    recovered: int = 0

    def count(self, status: str | None) -> None:
        key = status or "taken over"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1


class Worker:
    """Claims jobs and runs them, one at a time locally or many at once through SLURM.

    Args:
        settings: the catalog and folders.
        executor: ``local`` (a child process per job) or ``slurm`` (submitit); a job's own
            executor, set by its schedule, wins.
        timing: heartbeats, staleness, backoff and grace.
        slurm: where SLURM jobs go.
        on_event: called with one line per thing worth telling (the CLI prints it).
    """

    def __init__(self, settings: Settings, *, executor: str = "local", timing: Timing = Timing(),
                 slurm: SlurmOptions = SlurmOptions(), on_event: Callable[[str], None] | None = None) -> None:
        check_executor(executor)
        self.settings, self.executor, self.timing, self.slurm = settings, executor, timing, slurm
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.report = WorkerReport(worker=self.name)
        self.tracked: dict[int, tuple[Job, Any]] = {}
        self._on_event = on_event
        self._stop = threading.Event()

    def _event(self, message: str) -> None:
        if self._on_event is not None:
            self._on_event(message)

    def _stop_requested(self, _signum, _frame) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Finish cleanly: the running job stops at a checkpoint and goes back to the queue."""
        self._stop.set()

    def run(self, *, once: bool = False, max_jobs: int | None = None, poll: float = 5.0) -> WorkerReport:
        """Work until stopped; ``once``: until the queue is empty; ``max_jobs``: after that many claims."""
        previous = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                previous[signum] = signal.signal(signum, self._stop_requested)
        try:
            if self.executor == "local":
                self._preload()
            while not self._stop.is_set():
                for job, status in recover_stale(self.settings, timing=self.timing):
                    self.report.recovered += 1
                    self._event(f"job {job.id}: {job.status} without a heartbeat since {job.heartbeat:%H:%M:%S}; now {status}")
                self._track()
                job = None
                if max_jobs is None or self.report.claimed < max_jobs:
                    job = claim(self.settings, worker=self.name)
                if job is None:
                    claimed_enough = max_jobs is not None and self.report.claimed >= max_jobs
                    if (once or claimed_enough) and not self.tracked:
                        # --once drains the queue: a job requeued after a lost attempt (maybe just
                        # now, by recover_stale) is still in it, waiting out its backoff.
                        backoff = None if claimed_enough else _backoff_left(self.settings)
                        if backoff is None:
                            break
                        self._event(f"waiting {backoff:.1f}s for a requeued job's retry backoff before exiting")
                        self._stop.wait(backoff)
                        continue
                    self._stop.wait(min(poll, 5.0) if self.tracked else poll)
                    continue
                self.report.claimed += 1
                self._event(f"job {job.id}: {job.runner} ({job.preset}), attempt {job.attempts}")
                if (job.executor or self.executor) == "slurm":
                    self._submit(job)
                else:
                    self._run_local(job)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.report

    def _preload(self) -> None:
        """Import what every run needs once, so each forked child starts in milliseconds."""
        import torch  # noqa: F401

        import kb.runs.execute  # noqa: F401
        from kb.runs.registry import load_registry

        load_registry(self.settings.runner_paths)

    def _finished(self, job: Job, status: str | None) -> None:
        self.report.count(status)
        with session_scope(self.settings) as session:
            fresh = session.get(Job, job.id)
        shown = f"; {fresh.error}" if fresh.error and status != "succeeded" else ""
        self._event(f"job {job.id}: {status or 'taken over by another worker'}" + (f" (run {fresh.run_id})" if fresh.run_id else "") + shown)

    def _run_local(self, job: Job) -> None:
        import multiprocessing

        child = multiprocessing.get_context("fork").Process(
            target=_child, args=(self.settings, job.id, job.attempts, self.timing.heartbeat_s, os.getpid()),
            name=f"kb-job-{job.id}")
        # Objects the child inherits are left out of its garbage collections: a collection would
        # touch every page of the worker's heap (torch included) and copy it into the child.
        gc.freeze()
        child.start()
        kill_at = time.monotonic() + job.time_limit_s + self.timing.grace_s
        asked = False
        while True:
            child.join(0.5)
            if not child.is_alive():
                break
            if self._stop.is_set() and not asked:
                asked = True
                self._ask_stop(job, "worker stopping")
                kill_at = min(kill_at, time.monotonic() + self.timing.heartbeat_s + self.timing.grace_s)
            if time.monotonic() >= kill_at:
                self._ask_stop(job, "time limit")  # kept only when no reason was given before
                child.kill()
        code = child.exitcode
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        self._finished(job, self._ended(job, f"its process ended with {how} before recording a result"))

    def _ask_stop(self, job: Job, reason: str) -> None:
        with session_scope(self.settings) as session:
            _change(job, {"stop": _first_stop(reason)}, session=session)

    def _ended(self, job: Job, reason: str) -> str | None:
        """The job's status once the process running ``job``'s attempt is gone: what that process
        recorded, or lost for ``reason`` when it recorded nothing; None when another worker has it."""
        with session_scope(self.settings) as session:
            current = session.get(Job, job.id)
        if current.attempts != job.attempts:
            return None
        if current.status not in ACTIVE:
            return current.status
        return _settle_lost(self.settings, current, reason, self.timing)

    def _submit(self, job: Job) -> None:
        submitted = submit(self.settings, job, slurm=self.slurm, heartbeat_s=self.timing.heartbeat_s)
        if submitted is None:
            self._finished(job, self._ended(job, "it was never submitted"))
            return
        self._event(f"job {job.id}: submitted as {self.slurm.cluster} job {submitted.job_id}")
        self.tracked[job.id] = (job, submitted)
        if self.slurm.cluster == "debug":
            submitted.result()  # submitit's debug executor runs the job here, when its result is asked for

    def _track(self) -> None:
        """Copy each submitted job's SLURM state into its record; settle those that ended unrecorded."""
        for job_id, (job, submitted) in list(self.tracked.items()):
            state, done = submitted.state, submitted.done()
            with session_scope(self.settings) as session:
                current = session.get(Job, job_id)
                if current.attempts == job.attempts and current.status == "cancelled" and not done:
                    submitted.cancel(check=False)
                values: dict[str, Any] = {"info": {**current.info, "slurm_state": state}}
                if current.status == "submitted":
                    values["heartbeat"] = utcnow()  # waiting in SLURM's queue, watched by a live worker
                session.exec(update(Job).where(Job.id == job_id, Job.attempts == job.attempts).values(**values))
            if not done:
                continue
            del self.tracked[job_id]
            problem = submitted.exception()
            self._finished(job, self._ended(job, f"SLURM job {submitted.job_id} ended ({state}) without recording a result"
                                                 + (f": {problem}" if problem else "")))
