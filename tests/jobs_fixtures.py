"""Shared pieces of the job, schedule and regression tests (no tests here).

A kb home with the trivial runner (tests/fixtures/runners) and its paper, kb commands and workers
as real processes, and a throwaway PostgreSQL server started from the Debian packages' binaries.
"""

import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlmodel import select

from kb.db import engine_for, session_scope
from kb.ingest.sync import sync
from kb.jobs import Timing, Worker, WorkerReport, enqueue, new_job
from kb.models import Job, RunRecord, Schedule
from kb.runs.execute import Request
from kb.runs.registry import load_registry
from kb.schedules import add, tick
from kb.settings import Settings, load_settings

RUNNERS = Path(__file__).resolve().parent / "fixtures" / "runners"
PAPER_YAML = """\
id: "2401.00001"
slug: trivial
title: "A Trivial Paper for Testing Jobs"
runners: [trivial]
claims:
  - metric: accuracy
    dataset: trivial-set
    value: 0.9
    direction: higher
    tolerance: 0.05
    source: "Table 1"
"""
# Fast enough for tests, with the same relations as the defaults: stale after several heartbeats.
FAST = {"KB_JOB_HEARTBEAT": "0.2", "KB_JOB_STALE": "1.5", "KB_JOB_BACKOFF": "0.3", "KB_JOB_GRACE": "5"}


@dataclass
class KB:
    """One kb installation for a test: its folders, environment and ways to run it."""

    root: Path
    ledger: Path

    @property
    def settings(self) -> Settings:
        return load_settings()

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """``kb ARGS`` as a user runs it (a new process, errors turned into one line)."""
        done = subprocess.run([sys.executable, "-m", "kb.cli.main", *args], capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kb {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def worker(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "kb.cli.main", "worker", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    def executions(self) -> list[str]:
        """Run ids, one per time the trivial runner's main() started."""
        return [line.split()[0] for line in self.ledger.read_text().splitlines()] if self.ledger.exists() else []

    def drain(self) -> WorkerReport:
        """Run every queued job in this process's worker (fork children), until the queue is empty."""
        return Worker(self.settings, timing=Timing.from_env()).run(once=True, poll=0.1)


def make_kb(root: Path, monkeypatch, database_url: str | None = None) -> KB:
    papers = root / "papers"
    (papers / "trivial").mkdir(parents=True)
    (papers / "trivial" / "paper.yaml").write_text(PAPER_YAML)
    env = {"KB_HOME": str(root / "home"), "KB_PAPERS": str(papers), "KB_RUNNERS": str(RUNNERS),
           "TRIVIAL_LEDGER": str(root / "ledger"), **FAST}
    if database_url:
        env["KB_DATABASE_URL"] = database_url
    else:
        monkeypatch.delenv("KB_DATABASE_URL", raising=False)
    for key in ("KB_ON_REGRESSION", "KB_EXECUTOR", "KB_SLURM_CLUSTER", "KB_SLURM_PARTITION", "KB_SLURM_ACCOUNT", "KB_DATA"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sync(load_settings())          # claims are judged from the catalog
    return KB(root=root, ledger=root / "ledger")


@pytest.fixture
def lab(tmp_path, monkeypatch) -> KB:
    """A kb on a fresh SQLite catalog, with the trivial runner and its paper."""
    return make_kb(tmp_path, monkeypatch)


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def job_row(kb: KB, job_id: int) -> Job:
    with session_scope(kb.settings) as session:
        return session.get(Job, job_id)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
        process.wait()


# -- jobs and schedules of the trivial runner -------------------------------------------------


def at(text: str) -> datetime:
    """An ISO time read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def queue(lab: KB, *overrides: str, **options) -> Job:
    return enqueue(lab.settings, Request(runner="trivial", preset="smoke", overrides=overrides), **options)


def runs_of(lab: KB, job_id: int) -> list[RunRecord]:
    with session_scope(lab.settings) as session:
        return list(session.exec(select(RunRecord).where(RunRecord.job_id == job_id).order_by(RunRecord.created)))


def running_run(lab: KB, job_id: int):
    """The job's run once the trivial runner's main() has started in the job's process."""
    def started():
        runs = runs_of(lab, job_id)
        return runs and runs[-1].status == "running" and runs[-1].id in lab.executions() and runs[-1]
    return wait_for(started, 40, "the job to be running")


def add_schedule(lab: KB, cron: str, now: datetime, **options) -> Schedule:
    with session_scope(lab.settings) as session:
        return add(lab.settings, "trivial", session=session, cron=cron, preset="smoke", now=now, **options)


def schedule_jobs(lab: KB) -> list[Job]:
    with session_scope(lab.settings) as session:
        return list(session.exec(select(Job).order_by(Job.id)))


def _tick_after(barrier, settings, now, results) -> None:
    engine_for(settings).dispose(close=False)
    barrier.wait()
    results.put(len(tick(settings, now=now)))


def concurrent_ticks(lab: KB, processes: int, rounds: int) -> list[int]:
    """``processes`` ticks released at once, ``rounds`` times (each round one new due time)."""
    schedule = add_schedule(lab, "* * * * *", at("2025-01-01T00:00:30"))
    context = multiprocessing.get_context("fork")
    enqueued = []
    for minute in range(1, rounds + 1):
        barrier, results = context.Barrier(processes), context.Queue()
        now = at("2025-01-01T00:00:00") + timedelta(minutes=minute, seconds=5)
        ticks = [context.Process(target=_tick_after, args=(barrier, lab.settings, now, results)) for _ in range(processes)]
        for process in ticks:
            process.start()
        for process in ticks:
            process.join(60)
            assert process.exitcode == 0
        enqueued.append(sum(results.get(timeout=5) for _ in ticks))
    assert [j.due for j in schedule_jobs(lab) if j.schedule_id == schedule.id] == [
        at("2025-01-01T00:00:00") + timedelta(minutes=m) for m in range(1, rounds + 1)]
    return enqueued


# -- PostgreSQL --------------------------------------------------------------------------------


def postgres_bin() -> Path:
    """The folder of initdb and pg_ctl: Debian's /usr/lib/postgresql/<version>/bin, else PATH."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if found:
        return found[-1].parent
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("initdb")).parent
    pytest.fail("PostgreSQL server binaries (initdb, pg_ctl) are not in /usr/lib/postgresql/*/bin or on PATH; "
                "install them with `apt-get install -y postgresql` (the PostgreSQL tests must run, not skip)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres():
    """A PostgreSQL server of its own in a temporary folder; yields the URL of the server."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail("the PostgreSQL driver is missing: pip install 'psycopg[binary]'")
    binaries = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: run the server as the postgres user
        import pwd

        try:
            account = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root and there is no 'postgres' user to run the test server as "
                        "(Debian's postgresql package creates it)")
        os.chown(folder, account.pw_uid, account.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port, data = _free_port(), folder / "data"

    def run(*command: str) -> None:
        done = subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options, "-w", "start")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(server: str, name: str) -> str:
    """A fresh, empty database on ``server``; returns its URL."""
    import psycopg

    with psycopg.connect(server.replace("+psycopg", "") + "/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


@pytest.fixture(scope="session")
def postgres_server():
    with postgres() as url:
        yield url


@pytest.fixture
def pg_lab(postgres_server, tmp_path, monkeypatch) -> KB:
    """A kb whose catalog is a fresh database on the test PostgreSQL server."""
    name = f"kb_{tmp_path.name.lower().replace('-', '_')[:40]}_{os.getpid()}"
    return make_kb(tmp_path, monkeypatch, database_url=new_database(postgres_server, name))


def drain_concurrently(lab: KB, *, jobs: int, workers: int) -> dict:
    """Queue ``jobs`` trivial jobs, drain them with ``workers`` worker processes, and count.

    Returns the counts: executions of the runner (from its ledger), jobs that ran more than once
    (``duplicates``) or never (``lost``), and the throughput.
    """
    spec = load_registry(lab.settings.runner_paths).get("trivial")
    with session_scope(lab.settings) as session:
        session.add_all([new_job(spec, preset="smoke") for _ in range(jobs)])
    started = time.monotonic()
    processes = [lab.worker("--once", "--poll", "0.2") for _ in range(workers)]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    seconds = time.monotonic() - started
    with session_scope(lab.settings) as session:
        rows = list(session.exec(select(Job)))
        runs = list(session.exec(select(RunRecord)))
    executions = lab.executions()
    runs_per_job = Counter(run.job_id for run in runs)
    return {
        "jobs": jobs, "workers": workers, "seconds": round(seconds, 2), "jobs_per_s": round(jobs / seconds, 1),
        "succeeded": sum(job.status == "succeeded" for job in rows),
        "executions": len(executions), "distinct_runs": len(set(executions)),
        "duplicates": sum(n > 1 for n in runs_per_job.values()) + len(executions) - len(set(executions)),
        "lost": sum(job.id not in runs_per_job or job.status != "succeeded" for job in rows),
        "per_worker": sorted(Counter(job.worker for job in rows).values()),
        "exit_codes": [process.returncode for process in processes], "outputs": outputs,
    }
