"""Schedules, jobs and workers: kb schedule ..., kb jobs ..., kb worker, kb regressions."""

from typing import Annotated, Optional

import typer

from kb.cli.output import TERMINAL_ROWS, console, escape, print_json, row_limit, say_more, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="On a terminal, show long text whole instead of cut to its width.")]
ExecutorOpt = Annotated[Optional[str], typer.Option(help="local | slurm (default: the worker's).")]

schedule_app = typer.Typer(rich_markup_mode=None, help="Cron schedules that enqueue runs.", no_args_is_help=True)


@schedule_app.command("add")
def schedule_add(
    runner: Annotated[str, typer.Argument(help="Runner name (see kb runners).")],
    cron: Annotated[str, typer.Option("--cron", help='Five-field cron expression, e.g. "0 3 * * *", or @daily.')],
    preset: Annotated[Optional[str], typer.Option("--config", "-c", help="Preset: smoke, default, paper ...")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config field: key=value (repeatable).")] = None,
    tz: Annotated[str, typer.Option("--tz", help="Time zone the expression is read in (IANA name).")] = "UTC",
    executor: ExecutorOpt = None,
    time_limit: Annotated[Optional[int], typer.Option("--time-limit", help="Minutes (default: the runner's).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a runner on a cron schedule."""
    from kb.db import session_scope
    from kb.schedules import add, describe
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        schedule = add(settings, runner, session=session, cron=cron, preset=preset, overrides=tuple(overrides or ()),
                       tz=tz, executor=executor, time_limit_s=time_limit * 60 if time_limit is not None else None)
        row = describe(schedule)
    if as_json:
        print_json(row)
        return
    console().print(f"schedule {row['id']}: {row['runner']} ({row['preset']}) at {escape(row['cron'])} {row['tz']}; "
                    f"next due {row['next_due_local']}")
    if row["executor"] != "slurm":
        from kb.cli.runs import gpu_sized
        from kb.runs.environment import resolve_device
        from kb.runs.registry import load_registry

        sized = gpu_sized(load_registry(settings.runner_paths).get(row["runner"]), row["preset"])
        if sized and resolve_device("auto") == "cpu":
            console(stderr=True).print(f"note: {sized}, and this machine has none: a `kb worker` here would take "
                                       "hours per run; a SLURM worker (`--executor slurm`) runs it on a GPU node",
                                       soft_wrap=True)


@schedule_app.command("list")
def schedule_list(wide: WideOpt = False, as_json: JsonOpt = False) -> None:
    """Schedules with their next due time."""
    from kb.db import session_scope
    from kb.schedules import describe, list_schedules
    from kb.settings import load_settings

    with session_scope(load_settings()) as session:
        rows = [describe(s) for s in list_schedules(session=session)]
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print('no schedules (try `kb schedule add yolo --config smoke --cron "0 3 * * *"`)')
        return
    table(f"{len(rows)} schedules", ["id", "runner", "preset", "cron", "tz", "next due", "state"],
          [[r["id"], r["runner"], r["preset"] + "".join(f" {o}" for o in r["overrides"]), r["cron"], r["tz"],
            f"{r['next_due_local'][:19]} ({r['in']})" if not r["paused"] else r["next_due_local"][:19],
            "paused" if r["paused"] else "active"] for r in rows], whole=("id", "runner", "cron", "tz", "state"), wide=wide)


@schedule_app.command("pause")
def schedule_pause(schedule_id: int) -> None:
    """Stop a schedule from enqueueing jobs."""
    from kb.db import session_scope
    from kb.schedules import pause
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        schedule = pause(settings, schedule_id, session=session)
    console().print(f"schedule {schedule.id} paused")


@schedule_app.command("resume")
def schedule_resume(schedule_id: int) -> None:
    """Start a paused schedule again (due times missed while paused are skipped)."""
    from kb.db import session_scope
    from kb.schedules import describe, resume
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        row = describe(resume(settings, schedule_id, session=session))
    console().print(f"schedule {row['id']} active; next due {row['next_due_local']}")


@schedule_app.command("remove")
def schedule_remove(schedule_id: int) -> None:
    """Delete a schedule (the jobs it enqueued stay)."""
    from kb.db import session_scope
    from kb.schedules import remove
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        schedule = remove(settings, schedule_id, session=session)
    console().print(f"schedule {schedule.id} removed")


@schedule_app.command("tick")
def schedule_tick(as_json: JsonOpt = False) -> None:
    """Enqueue the jobs that have come due (cron or a systemd timer calls this every minute)."""
    from kb.schedules import tick
    from kb.settings import load_settings

    jobs = tick(load_settings())
    if as_json:
        print_json([job.model_dump() for job in jobs])
        return
    for job in jobs:
        missed = f" (stands for {job.missed + 1} due times: this tick came late)" if job.missed else ""
        console().print(f"queued job {job.id}: {job.runner} ({job.preset}) due {job.due.isoformat()}{missed}")
    if not jobs:
        console().print("nothing due")


@schedule_app.command("install")
def schedule_install() -> None:
    """Print a crontab and systemd units that tick the schedules every minute and keep a worker running."""
    import shutil
    import sys

    from kb.schedules import install_files
    from kb.settings import load_settings

    kb_command = shutil.which("kb") or f"{sys.executable} -m kb.cli.main"
    files = install_files(load_settings(), kb_command=kb_command)
    out = console()
    out.print("# crontab (crontab -e): tick every minute, a worker from boot", markup=False)
    out.print(files.crontab, markup=False)
    out.print("# or systemd user units in ~/.config/systemd/user/, then: "
              "systemctl --user enable --now kb-tick.timer kb-worker.service", markup=False)
    for name, text in files.units.items():
        out.print(f"# --- {name}", markup=False)
        out.print(text, markup=False)


jobs_app = typer.Typer(rich_markup_mode=None, help="Queued, running and finished jobs.", invoke_without_command=True)


@jobs_app.callback()
def jobs_list(
    ctx: typer.Context,
    status: Annotated[Optional[str], typer.Option(help="queued | submitted | running | succeeded | failed | cancelled")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many, newest first.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help=f"On a terminal, every job (else the newest {TERMINAL_ROWS}; a pipe gets all).")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first."""
    if ctx.invoked_subcommand is not None:
        return
    from kb.db import session_scope
    from kb.jobs import count_jobs, describe, list_jobs
    from kb.settings import load_settings

    shown = row_limit(limit, show_all, as_json)
    with session_scope(load_settings()) as session:
        rows = [describe(job) for job in list_jobs(session=session, status=status, limit=shown)]
        total = count_jobs(session=session, status=status) if len(rows) == shown else len(rows)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print("no jobs (queue one with `kb reproduce NAME --queue` or `kb schedule add`)")
        return
    table(f"{total} jobs", ["id", "runner", "preset", "run", "status", "note", "attempts", "from", "created"],
          [[r["id"], r["runner"], r["preset"], r["run_id"] or "",
            r["status"] + (f" ({r['heartbeat_age_s']:.0f}s since heartbeat)" if r["heartbeat_age_s"] else ""),
            r["error"] or r["info"].get("note") or "", r["attempts"], f"schedule {r['schedule_id']}" if r["schedule_id"] else "queued",
            r["created"].isoformat(timespec="seconds")[:19]] for r in rows],
          whole=("id", "runner", "preset", "run"), wide=wide)
    say_more(len(rows), total, "kb jobs", "job", "newest")


@jobs_app.command("cancel")
def jobs_cancel(job_id: int) -> None:
    """Cancel a queued job at once, or stop a running one at its next step (its run keeps a checkpoint)."""
    from kb.db import session_scope
    from kb.jobs import Timing, cancel
    from kb.settings import load_settings

    with session_scope(load_settings()) as session:
        job = cancel(job_id, session=session)
    if job.status == "cancelled":
        console().print(f"job {job.id} cancelled; it had not started, so the cancellation took effect at once")
        return
    console().print(f"job {job.id} is running; its run stops at its next step, within about "
                    f"{Timing.from_env().heartbeat_s:g} s (its next heartbeat), and keeps a checkpoint: the run is then "
                    f"interrupted and the job cancelled (`kb jobs` shows it; `kb jobs retry {job.id}` continues the run)")


@jobs_app.command("retry")
def jobs_retry(job_id: int) -> None:
    """Queue a failed or cancelled job again (continuing its last run from a checkpoint if it left one)."""
    from kb.db import session_scope
    from kb.jobs import retry
    from kb.settings import load_settings

    with session_scope(load_settings()) as session:
        job = retry(job_id, session=session)
    console().print(f"job {job.id} queued again")


def worker(
    once: Annotated[bool, typer.Option("--once", help="Exit when the queue is empty instead of waiting for more.")] = False,
    max_jobs: Annotated[Optional[int], typer.Option("--max-jobs", help="Exit after claiming this many jobs.")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at an empty queue.")] = 5.0,
    executor: Annotated[Optional[str], typer.Option(help="local | slurm (default: KB_EXECUTOR, else local).")] = None,
) -> None:
    """Claim queued jobs and run them; SIGTERM stops cleanly (the running job goes back to the queue)."""

    from kb.errors import BadInput
    from kb.jobs import SlurmOptions, Timing, Worker
    from kb.settings import load_settings

    if poll <= 0 or (max_jobs is not None and max_jobs <= 0):
        raise BadInput("--poll and --max-jobs must be positive")
    err = console(stderr=True)
    settings = load_settings()
    runner = Worker(settings, executor=executor or settings.get("KB_EXECUTOR") or "local",
                    timing=Timing.from_env(), slurm=SlurmOptions.from_env(), on_event=lambda line: err.print(escape(line)))
    err.print(f"worker {runner.name} started ({runner.executor})")
    report = runner.run(once=once, max_jobs=max_jobs, poll=poll)
    outcomes = ", ".join(f"{n} {status}" for status, n in sorted(report.outcomes.items())) or "nothing run"
    err.print(f"worker {report.worker} done: {report.claimed} claimed ({outcomes}); {report.recovered} stale recovered")


def regressions(
    runner: Annotated[Optional[str], typer.Option(help="Only this runner.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many, newest first.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help=f"On a terminal, every regression (else the newest {TERMINAL_ROWS}; a pipe gets all).")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Scheduled runs that did worse than the last good run, with what changed between them."""
    from kb.db import session_scope
    from kb.runs.regression import as_document, count_regressions, list_regressions
    from kb.settings import load_settings

    shown = row_limit(limit, show_all, as_json)
    with session_scope(load_settings()) as session:
        rows = [as_document(r) for r in list_regressions(session=session, runner=runner, limit=shown)]
        total = count_regressions(session=session, runner=runner) if len(rows) == shown else len(rows)
    if as_json:
        print_json(rows)
        return
    if not rows:
        console().print("no regressions")
        return
    table(f"{total} regressions", ["run", "baseline", "findings", "changed", "runner", "preset", "created"],
          [[("REGRESSION " + row["run_id"], "bold red"), row["baseline_id"] or "no earlier good run",
            "\n".join([f["message"] for f in row["findings"]] + ([f"notifier failed: {row['notify_error']}"] if row["notify_error"] else [])),
            "\n".join(f"{section} {key}: {before} -> {after}" for section in ("config", "env")
                      for key, (before, after) in row["differences"].get(section, {}).items()),
            row["runner"], row["preset"], row["created"][:19]]
           for row in rows], whole=("run", "baseline"), wide=wide)
    say_more(len(rows), total, "kb regressions", "regression", "newest")


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")
    app.add_typer(jobs_app, name="jobs")
    app.command()(worker)
    app.command()(regressions)
