"""Runner and run commands: runners, reproduce, runs, run show, runs compare/export/import."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kb.cli.output import TERMINAL_ROWS, console, escape, is_terminal, print_json, row_limit, say, say_more, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
WideOpt = Annotated[bool, typer.Option("--wide", help="On a terminal, show long text whole instead of cut to its width.")]


def runners(wide: WideOpt = False, as_json: JsonOpt = False) -> None:
    """List runners with their paper, datasets, presets, claims, headline result and last run.

    A runner package that cannot be loaded is one line on stderr; the others are listed, and the
    exit code is 1.
    """
    from kb.reader import open_catalog
    from kb.runs.overview import runner_overview
    from kb.runs.registry import load_registry
    from kb.settings import load_settings

    settings = load_settings()
    registry = load_registry(settings.runner_paths, cache_dir=settings.cache_dir)
    with open_catalog(settings) as catalog:
        rows = runner_overview(registry, catalog=catalog)
    problems = registry.problems
    for problem in problems:
        say(f"problem: {problem}", err=True)
    if as_json:
        print_json(rows)
    else:
        _runner_table(rows, wide)
    if problems:
        raise typer.Exit(1)


def _runner_table(rows: list[dict[str, Any]], wide: bool) -> None:
    table("runners", ["name", "paper", "headline", "presets", "claims", "title", "datasets", "last run"],
          [[r["name"], r["paper"], _headline(r.get("headline")), ", ".join(r["presets"]),
            "\n".join(f"{c['metric']} {_with_unit(c['value'], c.get('unit', ''))} ({c['dataset']}{_when(c)})" for c in r["claims"]),
            r["paper_title"] or "", ", ".join(r["datasets"]),
            r["last_run"]["id"] if r["last_run"] else "never run"]
           for r in rows], whole=("name", "paper", "last run"), wide=wide)


def _headline(best: dict[str, Any] | None) -> str:
    """A runner's headline result in a few words: "map 94.3 · reproduced", or why it is not comparable."""
    if not best:
        return "no run yet"
    value = f"{best['metric']} {best['value']:.4g}" if best["metric"] and best["value"] is not None else best["run"]
    return f"{value} · {best['label'] or best['verdict']}"


class _LiveProgress:
    """Shows epoch/step, loss, throughput and ETA on one live line; on a terminal, a pulsing bar
    while the run prepares its data and model, before its first step. When stderr is a pipe or a
    log there is no bar: a plain line for each evaluation (and one a minute between them), whole."""

    LOG_EVERY_S = 60.0

    def __init__(self, name: str) -> None:
        import time

        self.clock = time.monotonic
        self.progress = None
        self.task = None
        self.preparing = None
        self.logged = None              # in a log: when the last line was written
        if not is_terminal(sys.stderr):
            return
        from rich.progress import BarColumn, Progress, TextColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                 console=console(stderr=True), transient=False)
        self.progress.start()
        self.preparing = self.progress.add_task(f"{name}: preparing data and model", total=None, info="")

    def update(self, run, line: dict[str, Any]) -> None:
        if "note" in line:
            self._print(line["note"])
            return
        p = run.progress
        if self.task is None and self.logged is None:
            if run.dataset is not None:
                synthetic = " (generated: not comparable with the paper's benchmarks)" if run.dataset.synthetic else ""
                self._print(f"data: {run.dataset.name}{synthetic} {run.dataset.detail}".rstrip())
            if self.progress is None:
                self.logged = self.clock()
            else:
                self.progress.remove_task(self.preparing)
                self.preparing = None
                self.task = self.progress.add_task(run.id, total=p.total_steps or None, info="")
        eta = p.eta_seconds()
        shown = [f"epoch {p.epoch}" + (f"/{p.epochs}" if p.epochs else ""), f"step {p.step}" + (f"/{p.total_steps}" if p.total_steps else "")]
        shown += [f"{k} {v:.4g}" for k, v in line.items() if k not in ("step", "epoch", "eval", "started") and isinstance(v, (int, float))][:4]
        shown.append(f"{p.throughput():.0f} samples/s")
        if eta is not None:
            shown.append(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
        if self.progress is not None:
            self.progress.update(self.task, completed=p.step, total=p.total_steps or None, info=" · ".join(shown))
        elif line.get("eval") or self.clock() - self.logged >= self.LOG_EVERY_S:
            self.logged = self.clock()
            sys.stderr.write(f"{run.id} " + " · ".join(shown) + "\n")
            sys.stderr.flush()

    def _print(self, text: str) -> None:
        if self.progress is None:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        else:
            self.progress.console.print(escape(text), soft_wrap=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def gpu_sized(spec, preset: str) -> str | None:
    """A few words when ``preset`` of the runner is sized for a GPU, naming the presets sized for a CPU."""
    if not spec.resources.gpus or preset in spec.cpu_presets:
        return None
    sized = " or ".join(f"`--config {p}`" for p in spec.cpu_presets)
    return (f"{spec.name} '{preset}' is sized for a GPU ({sized} {'is' if len(spec.cpu_presets) == 1 else 'are'} "
            "sized for a CPU)")


def reproduce(
    name: Annotated[Optional[str], typer.Argument(help="Runner name (see kb runners).")] = None,
    preset: Annotated[Optional[str], typer.Option("--config", "-c", help="Preset: smoke, default, paper ...")] = None,
    overrides: Annotated[Optional[list[str]], typer.Option("--set", help="Override a config field: key=value (repeatable).")] = None,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    data: Annotated[Optional[Path], typer.Option(help="Dataset folder (else the runner's default data).")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    resume: Annotated[Optional[str], typer.Option(help="Continue an interrupted or failed run, as it was started.")] = None,
    architecture_only: Annotated[bool, typer.Option(
        "--architecture-only", help="Build the preset's model without data or training: parameters, size, FLOPs.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the resolved run; run nothing.")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Enqueue as a job for `kb worker` instead of running now.")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a paper's runner and record the result next to the paper's claims."""
    from kb.errors import BadInput, KBError
    from kb.runs.execute import Request
    from kb.settings import load_settings

    if not name and not resume:
        raise BadInput("name a runner (kb reproduce yolo) or give --resume RUN_ID; see `kb runners`")
    if queue and architecture_only:
        raise BadInput("--architecture-only takes seconds on a CPU and needs no worker; drop --queue")
    settings = load_settings()
    request = Request(runner=name or "", preset=preset, overrides=tuple(overrides or ()), device=device, data=data,
                      seed=seed, resume=resume, architecture_only=architecture_only)
    if queue:
        from kb.jobs import enqueue

        job = enqueue(settings, request)      # planned there, once, for the worker's machine
        if as_json:
            print_json(job.model_dump())
        else:
            console().print(f"queued job {job.id}: {job.runner} ({job.preset}); run `kb worker` to execute it")
        return
    from kb.runs.execute import execute, plan

    resolved = plan(settings, request, here=True)
    if resolved.instead_of and not as_json:
        console(stderr=True).print(
            f"no GPU found: running {resolved.spec.name}'s CPU preset '{resolved.preset}' instead of '{resolved.instead_of}' "
            f"(sized for one GPU; `--config {resolved.instead_of}` runs it here anyway)", soft_wrap=True)
    if dry_run:
        from kb.runs.config import to_dict

        shown = {"runner": resolved.spec.name, "paper": resolved.spec.paper, "preset": resolved.preset, "kind": resolved.kind,
                 "seed": resolved.seed, "device": resolved.device,
                 "data": str(resolved.data) if resolved.data else "the runner's default data",
                 "resume": resolved.record.id if resolved.record else None, "overrides": resolved.overrides,
                 "config": to_dict(resolved.config)}
        if as_json:
            print_json(shown)
        else:
            for key, value in shown.items():
                console().print(f"{key}: {escape(str(value))}")
        return
    sized = gpu_sized(resolved.spec, resolved.preset)
    if sized and resolved.device == "cpu" and resolved.kind == "train":
        console(stderr=True).print(
            f"note: {sized} and will be slow on this CPU (the ETA is shown); Ctrl-C "
            f"stops with a checkpoint, `kb reproduce --resume RUN_ID` continues", soft_wrap=True)
    live = None if as_json else _LiveProgress(resolved.spec.name)
    try:
        record = execute(settings, resolved, reporter=live)
    finally:
        if live is not None:
            live.close()
    if as_json:
        print_json(record.model_dump())
    elif record.status == "failed":
        # The error line below says what went wrong; the record is kept for `kb run show`.
        console(stderr=True).print(f"run {record.id} failed and is recorded (kb run show {record.id})", soft_wrap=True)
    else:
        _show_run(record, wide)
    if record.status == "interrupted":
        raise KBError(f"run {record.id} interrupted; resume with: kb reproduce --resume {record.id}")
    if record.status != "succeeded":
        raise KBError(record.error or f"run {record.id} failed")


def _show_run(record, wide: bool = False) -> None:
    from kb.runs.verdict import summary

    out = console()
    kind = " · architecture only (no data, no training)" if record.kind == "architecture" else ""
    out.print(f"[bold]{record.id}[/bold]  {record.runner} · preset {record.preset}{kind} · {record.status}")
    out.print(f"overrides: {escape(overrides_text(record.overrides))}")
    out.print(f"dataset: {record.dataset or 'unknown'}" + (" (synthetic)" if record.dataset_synthetic else "")
              + (f" · fingerprint {record.dataset_fingerprint}" if record.dataset_fingerprint else ""))
    out.print(f"device: {escape(record.device or '')} · host {record.host} · seed {record.seed}")
    out.print(f"code: {record.git_commit or 'not a git checkout'}" + (" (dirty)" if record.git_dirty else ""))
    env = record.env
    out.print(f"python {env.get('python')} · torch {env.get('torch')} · cuda {env.get('cuda')} · cudnn {env.get('cudnn')}")
    if record.started:
        ended = record.ended.isoformat(timespec="seconds") if record.ended else "-"
        out.print(f"started {record.started.isoformat(timespec='seconds')} · ended {ended}" + (f" · resumed {record.resumed}x" if record.resumed else ""))
    for number, segment in enumerate(record.info.get("earlier_segments", []), 1):
        out.print(f"segment {number} before a resume: code {segment.get('git_commit')}" + (" (dirty)" if segment.get("git_dirty") else "")
                  + f" · {escape(segment.get('device') or '')} · host {segment.get('host')} · torch {segment.get('torch')}")
    if record.throughput:
        out.print(f"throughput: {record.throughput:.1f} samples/s")
    if record.final:
        out.print("final: " + ", ".join(f"{k}={v:.4g}" for k, v in record.final.items()))
    if record.error:
        out.print(f"[red]error:[/red] {escape(record.error)}")
    if record.verdicts:
        table(f"claims: {summary(record.verdicts)}", ["metric", "dataset", "claimed", "ours", "verdict", "why"],
              [[v["metric"], v["dataset"], _with_unit(v["claimed"], v.get("unit", "")), "" if v["ours"] is None else f"{v['ours']:.4g}",
                v["verdict"], v.get("reason", "")] for v in record.verdicts],
              whole=("metric", "dataset", "claimed", "ours"), wide=wide)
    out.print(f"run folder: {record.run_dir}")


def overrides_text(overrides: dict[str, Any]) -> str:
    """``--set epochs=2 --set lr=0.1``, or ``none`` (the preset as it is)."""
    from kb.runs.verdict import override_flags

    return override_flags(overrides) or "none (the preset as it is)"


def _when(claim: dict) -> str:
    from kb.runs.verdict import condition

    return "".join(f", {condition(k, v)}" for k, v in (claim.get("when") or {}).items())


def _with_unit(value: float, unit: str) -> str:
    from kb.runs.verdict import unit_suffix

    return f"{value:g}{unit_suffix(unit)}"


RUN_STATUSES = ("queued", "running", "succeeded", "failed", "interrupted")
runs_app = typer.Typer(rich_markup_mode=None, help="Run records: list, compare, export, import.", invoke_without_command=True)


@runs_app.callback()
def runs_list(
    ctx: typer.Context,
    runner: Annotated[Optional[str], typer.Option(help="Only runs of this runner.")] = None,
    status: Annotated[Optional[str], typer.Option(help=" | ".join(RUN_STATUSES))] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many, newest first.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help=f"On a terminal, every run (else the newest {TERMINAL_ROWS}; a pipe gets all).")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List runs, newest first (regressions first when there are any)."""
    if ctx.invoked_subcommand is not None:
        return
    if status is not None and status not in RUN_STATUSES:
        from kb.errors import BadInput

        raise BadInput(f"--status {status!r}: use one of {', '.join(RUN_STATUSES)}")
    from kb.reader import open_catalog
    from kb.runs.overview import runs_table
    from kb.settings import load_settings

    shown = row_limit(limit, show_all, as_json)
    settings = load_settings()
    with open_catalog(settings) as catalog:
        running = catalog.has_running_runs()
    if running:
        _mark_dead_runs(settings)
    with open_catalog(settings) as catalog:
        rows = runs_table(runner=runner, status=status, limit=shown, catalog=catalog)
        total = catalog.count_runs(runner=runner, status=status) if len(rows) == shown else len(rows)
    if as_json:
        print_json(rows)
        return
    if not rows:
        say("no runs yet (try `kb reproduce yolo --config smoke`)")
        return
    table(f"{total} runs", ["run", "runner", "preset", "status", "dataset", "final", "verdict", "started"],
          [[r["id"], r["runner"], r["preset"], ("REGRESSION", "bold red") if r["regression"] else r["status"],
            (r["dataset"] or "") + (" (synthetic)" if r["dataset_synthetic"] else ""),
            ", ".join(f"{k}={v:.4g}" for k, v in list(r["final"].items())[:3]), r["verdict"], (r["started"] or "")[:19]]
           for r in rows], whole=("run", "runner", "preset"), wide=wide)
    say_more(len(rows), total, "kb runs", "run", "newest")


@runs_app.command("compare")
def runs_compare(a: str, b: str, as_json: JsonOpt = False) -> None:
    """Config, environment and metric differences between two runs."""
    from kb.db import session_scope
    from kb.runs.records import compare, get_run
    from kb.settings import load_settings

    with session_scope(load_settings()) as session:
        run_a, run_b = get_run(a, session=session), get_run(b, session=session)
        result = compare(run_a, run_b)
    # How each run was started (preset, kind, --set), beside the config they resolved to.
    result["started_as"] = {key: (getattr(run_a, key), getattr(run_b, key)) for key in ("preset", "kind", "overrides")}
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(f"A = {result['a']}\nB = {result['b']}")
    started = result["started_as"]
    table("started as", ["", "A", "B"], [["preset", *started["preset"]], ["kind", *started["kind"]],
                                         ["overrides", *(overrides_text(o) for o in started["overrides"])]], whole=("",))
    for section in ("config", "env"):
        if result[section]:
            table(f"{section} differences", ["key", "A", "B"], [[k, str(x), str(y)] for k, (x, y) in result[section].items()],
                  whole=("key",))
        else:
            out.print(f"{section}: identical")
    table("metrics", ["metric", "A", "B", "B - A"],
          [[k, v["a"], v["b"], "" if v["difference"] is None else f"{v['difference']:+.4g}"] for k, v in result["metrics"].items()],
          whole=("metric", "A", "B", "B - A"))


@runs_app.command("export")
def runs_export(
    run_ids: Annotated[Optional[list[str]], typer.Argument(help="Runs to export; all when none.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Folder (default papers/<slug>/runs/).")] = None,
    max_points: Annotated[int, typer.Option(help="Values kept per step metric (every k-th step and the last); 0 = all.")] = 1000,
) -> None:
    """Write run records to JSON files that can be committed (step curves thinned to --max-points)."""
    from kb.db import session_scope
    from kb.runs.records import export_runs
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        written = export_runs(settings.papers, run_ids or [], out, max_points=max_points, session=session)
    for path in written:
        console().print(f"wrote {path}")


@runs_app.command("import")
def runs_import(items: Annotated[list[Path], typer.Argument(
        help="Exported run files (JSON), run folders (.kb/runs/ID), or folders of either.")]) -> None:
    """Load runs into the catalog (replacing runs with the same id); an unreadable file is named and skipped."""
    from kb.db import session_scope
    from kb.errors import BadInput
    from kb.runs.records import import_runs, run_paths
    from kb.settings import load_settings

    paths = run_paths(items)
    with session_scope(load_settings()) as session:
        count, problems = import_runs(paths, replace=True, session=session)
    console().print(f"imported {count} runs")
    for problem in problems:
        console(stderr=True).print(f"problem: {escape(problem)}", soft_wrap=True)
    if problems:
        raise BadInput(f"{len(problems)} run file(s) could not be loaded (listed above); the rest were imported")


run_app = typer.Typer(rich_markup_mode=None, help="One run: kb run show RUN_ID.", no_args_is_help=True)


def _mark_dead_runs(settings) -> None:
    """Runs whose process died show as failed; a catalog this user cannot write is listed as it is."""
    from kb.db import read_only_url, session_scope
    from kb.runs.execute import mark_dead_runs

    if read_only_url(settings.database_url) is not None:
        return
    with session_scope(settings) as session:
        mark_dead_runs(session=session)


@run_app.command("show")
def run_show(run_id: str, wide: WideOpt = False, as_json: JsonOpt = False) -> None:
    """Everything recorded about one run."""
    from kb.db import session_scope
    from kb.runs.records import get_run
    from kb.settings import load_settings

    settings = load_settings()
    _mark_dead_runs(settings)
    with session_scope(settings) as session:
        record = get_run(run_id, session=session)
    if as_json:
        print_json(record.model_dump())
        return
    _show_run(record, wide)
    if record.epochs:
        keys = [k for k in record.epochs[-1] if k != "epoch"][:6]
        table("per-epoch", ["epoch", *keys], [[e["epoch"], *(f"{e.get(k, float('nan')):.4g}" for k in keys)] for e in record.epochs],
              whole=("epoch", *keys))


def register(app: typer.Typer) -> None:
    app.command()(runners)
    app.command()(reproduce)
    app.add_typer(runs_app, name="runs")
    app.add_typer(run_app, name="run")
