"""Creating, running, interrupting, resuming and finishing a run (design.md, Runners).

``plan`` resolves a request once (one registry load, one config, one device); ``kb reproduce`` shows
that plan (``--dry-run``), queues it (``--queue``) or runs it. ``execute`` is the one path every run
takes, from ``kb reproduce`` and from workers alike: it records the run, seeds, captures the
environment, calls the runner (or, for ``--architecture-only``, measures the model without data), and
stores the outcome with its verdicts. A run ends ``succeeded``, ``failed`` (with the error) or
``interrupted`` (with a checkpoint to resume from); never ``running`` once kb has returned.
"""

import json
import logging
import os
import random
import secrets
import shutil
import signal
import socket
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session, delete, select

from kb.db import session_scope
from kb.errors import BadInput, KBError, NotFound, RunInterrupted
from kb.files import write_atomic
from kb.models import Metric, Paper, RunRecord, utcnow
from kb.runs import config as run_config
from kb.runs.context import Reporter, Run
from kb.runs.record_file import load_metrics, write_record
from kb.runs.records import insert_metrics, rejudged
from kb.runs.registry import Registry, RunnerSpec, load_architecture, load_entrypoint, load_registry
from kb.runs.verdict import reproduce_command
from kb.settings import Settings


@dataclass
class Request:
    """What to run: ``kb reproduce NAME [--config] [--set] [--device] [--data] [--seed]``."""

    runner: str
    preset: str | None = None
    overrides: tuple[str, ...] = ()
    device: str = "auto"
    data: Path | None = None
    seed: int = 0
    resume: str | None = None
    job_id: int | None = None
    architecture_only: bool = False


def new_run_id(runner: str) -> str:
    return f"{runner}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class Plan:
    """A request resolved once: what ``--dry-run`` shows, ``--queue`` enqueues and ``execute`` runs.

    Attributes:
        overrides: the ``--set`` fields with their resolved values (``{"epochs": 2}``).
        device: planned to run here, the torch device (``cpu``, ``cuda:0``); else the one requested
            (``auto``), for the worker's machine to resolve.
        kind: ``train``, or ``architecture`` (``--architecture-only``: the model measured without data).
        record: the run being resumed.
        instead_of: the preset that the runner's CPU-sized one replaced (no GPU here, none named).
    """

    request: Request
    spec: RunnerSpec
    preset: str
    config: Any
    overrides: dict[str, Any]
    data: Path | None
    seed: int
    device: str
    kind: str = "train"
    record: RunRecord | None = None
    instead_of: str | None = None


def plan(settings: Settings, request: Request, *, here: bool = False) -> Plan:
    """Resolve ``request``: the runner, preset, config, overrides and data, and, when it is to run
    ``here`` (on this machine, not queued), the device and the CPU-sized preset when there is no GPU
    and none was named. Bad input (an unknown preset or field, a resume that would change the run)
    raises ``BadInput`` before anything is recorded."""
    registry = load_registry(settings.runner_paths)
    if here:
        from kb.runs.environment import resolve_device

        device = resolve_device(request.device)
    else:
        device = request.device
    if request.resume:
        return _resume_plan(settings, registry, request, device)
    spec = registry.get(request.runner)
    if request.architecture_only and spec.architecture is None:
        raise BadInput(f"runner {spec.name} declares no architecture, so --architecture-only cannot build its model "
                       "(RunnerSpec.architecture='module:function')")
    preset, instead_of = request.preset, None
    if here and preset is None and not request.architecture_only:
        preset = fit_to_machine(spec, device)
        instead_of = spec.presets[0] if preset else None
    preset, config = run_config.resolve(spec, preset, request.overrides)
    data = request.data or settings.data
    if data is not None:
        data = data.expanduser()
        if not data.exists():
            raise BadInput(f"--data {data}: no such file or folder")
        data = data.resolve()
    resolved = run_config.to_dict(config)
    overrides = {key: resolved[key] for key in _override_keys(request.overrides)}
    return Plan(request, spec, preset, config, overrides, data, request.seed, device,
                "architecture" if request.architecture_only else "train", instead_of=instead_of)


def fit_to_machine(spec: RunnerSpec, device: str) -> str | None:
    """The runner's ``cpu_default`` when ``device`` is the CPU and that preset is not the default
    anyway: what a run naming no preset gets on a machine without a GPU. None otherwise."""
    if device != "cpu" or not spec.cpu_default or spec.cpu_default == spec.presets[0]:
        return None
    return spec.cpu_default


def _override_keys(overrides: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(item.partition("=")[0].strip() for item in overrides))


def _resume_plan(settings: Settings, registry: Registry, request: Request, device: str) -> Plan:
    """A resume continues the run as it was started: another runner, preset or ``--set`` is refused,
    and so is a run that had trained but lost its checkpoint (it would silently start again at 0)."""
    with session_scope(settings) as session:
        record = session.get(RunRecord, request.resume)
    if record is None:
        raise NotFound(f"no run {request.resume!r}; see `kb runs`")
    if record.status not in ("interrupted", "failed"):
        raise BadInput(f"run {record.id} is {record.status}; only interrupted or failed runs can be resumed")
    command = reproduce_command(record.runner, record.preset, record.overrides)
    started = f"run {record.id} was started as `{command}`"
    if request.runner and request.runner != record.runner:
        raise BadInput(f"{started}; --resume continues it as it was: drop the runner name {request.runner!r}")
    if request.preset and request.preset != record.preset:
        raise BadInput(f"{started}; --resume continues it as it was: drop --config {request.preset}, or start a new run")
    if request.architecture_only and record.kind != "architecture":
        raise BadInput(f"{started}; --resume continues it as it was: drop --architecture-only")
    spec = registry.get(record.runner)
    if request.overrides:
        asked = run_config.to_dict(run_config.resolve(spec, record.preset, request.overrides)[1])
        changed = [k for k in _override_keys(request.overrides) if asked[k] != record.config.get(k)]
        if changed:
            raise BadInput(f"{started}; --resume continues it as it was, so it cannot change "
                           f"{', '.join(changed)}: drop those --set, or start a new run")
    run_dir = Path(record.run_dir)
    if not run_dir.is_dir():
        raise KBError(f"run folder {run_dir} of {record.id} is gone; it cannot be resumed")
    trained = _last_step(run_dir)
    checkpoint = run_dir / "checkpoints" / "last.pt"
    if trained and not checkpoint.exists():
        raise KBError(f"run {record.id} had trained to step {trained} but its checkpoint {checkpoint} is missing, so it "
                      f"cannot continue (it would start again at step 0); start a new run: {command}")
    config = run_config.from_dict(spec, record.preset, record.config)
    data = Path(record.info["data_dir"]) if record.info.get("data_dir") else None
    return Plan(request, spec, record.preset, config, dict(record.overrides), data, record.seed, device,
                record.kind, record)


def _last_step(run_dir: Path) -> int:
    """The last step the run folder's metrics.csv logged (0: training never logged a step)."""
    import csv

    path = run_dir / "metrics.csv"
    if not path.exists():
        return 0
    with path.open(encoding="utf-8") as handle:
        steps = [row.get("step") for row in csv.DictReader(handle)]
    return max((int(step) for step in steps if step and step.isdigit()), default=0)


def measure_architecture(spec: RunnerSpec, config: Any) -> tuple[dict[str, float], dict[str, Any]]:
    """The preset's model measured without data: (final metrics, facts for the run's info).

    Parameters and their fp32 bytes (``model_mb`` is bytes / 2**20), and the FLOPs of one forward
    pass on the runner's example input (batch 1) as ``torch.utils.flop_counter`` counts them (a
    multiply-add is 2 FLOPs, so ``mult_adds`` is half of them). The model is built on torch's
    ``meta`` device: shapes without storage, so a 270M-parameter network is measured in a moment and
    without its 1 GB of weights (the counts are the same as on a CPU; tests/test_verdicts.py).

    ``architecture`` may return a third item: further data-free metrics it computes from the
    paper's formulas and the model's structure (a parameter ratio against the paper's baseline, an
    expected depth), judged against claims marked ``data_free: true``.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        built = load_architecture(spec)(config)
    model, example, derived = built if len(built) == 3 else (*built, {})
    parameters = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(example)
    flops = counter.get_total_flops()
    final = {"parameters": float(parameters), "model_bytes": 4.0 * parameters, "model_mb": 4.0 * parameters / 2**20,
             "flops": float(flops), "mult_adds": flops / 2, **{k: float(v) for k, v in derived.items()}}
    return final, {"example_input": list(example.shape), "flops_counted_by": "torch.utils.flop_counter.FlopCounterMode"}


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Signals:
    """Ctrl-C / SIGTERM ask the run to stop at its next step (with a checkpoint); a second Ctrl-C, or one
    before training has started, stops at once."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.previous: dict[int, Any] = {}

    def _handle(self, signum, _frame) -> None:
        # Before training starts (data loading, model set-up) there is nothing to checkpoint: stop at once.
        if not self.run.started or (self.run.stop_requested and signum == signal.SIGINT):
            raise KeyboardInterrupt
        self.run.request_stop()

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False


def _logger(run_dir: Path) -> logging.Logger:
    logger = logging.getLogger(f"kb.run.{run_dir.name}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(run_dir / "log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


class _LogReporter:
    """Forwards progress to the run's log file (every 50 steps and every evaluation)."""

    def __init__(self, logger: logging.Logger, inner: Reporter | None) -> None:
        self.logger, self.inner = logger, inner

    def update(self, run: Run, line: dict[str, Any]) -> None:
        if line.get("eval") or (line.get("step") or 0) % 50 == 0:
            shown = " ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in line.items() if v is not None)
            self.logger.info(shown)
        if self.inner is not None:
            self.inner.update(run, line)


def reproduce(settings: Settings, request: Request, *, reporter: Reporter | None = None) -> RunRecord:
    """Plan ``request`` to run here and run it in this process; returns the finished record."""
    return execute(settings, plan(settings, request, here=True), reporter=reporter)


def execute(settings: Settings, resolved: Plan, *, reporter: Reporter | None = None) -> RunRecord:
    """Run a plan made with ``here=True`` in this process and record everything; returns the finished record."""
    from kb.runs.environment import capture, git_state

    device = resolved.device
    spec = resolved.spec
    if resolved.record is not None:
        run_id, run_dir = resolved.record.id, Path(resolved.record.run_dir)
    else:
        run_id = new_run_id(spec.name)
        run_dir = settings.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    env = capture(device)
    commit, dirty = git_state(settings.project)
    request = resolved.request
    config_dict = run_config.to_dict(resolved.config)
    with session_scope(settings) as session:
        record = session.get(RunRecord, run_id) if resolved.record is not None else None
        if record is None:
            record = RunRecord(id=run_id, runner=spec.name, paper_key=spec.paper, preset=resolved.preset,
                               kind=resolved.kind, config=config_dict, overrides=resolved.overrides, status="running",
                               seed=resolved.seed, run_dir=str(run_dir), job_id=request.job_id)
        else:
            record.resumed += 1
            record.status, record.error, record.ended = "running", None, None
            # The record describes the last segment; earlier ones keep their code and machine here.
            earlier = {"git_commit": record.git_commit, "git_dirty": record.git_dirty, "device": record.device,
                       "host": record.host, "torch": record.env.get("torch"), "torch_threads": record.env.get("torch_threads")}
            record.info = {**record.info, "earlier_segments": [*record.info.get("earlier_segments", []), earlier]}
        record.started = record.started or utcnow()
        record.env, record.device, record.host = env, env["device_name"], socket.gethostname()
        record.git_commit, record.git_dirty = commit, dirty
        record.info = {**record.info, "data_dir": str(resolved.data) if resolved.data else None, "pid": os.getpid()}
        if request.job_id is not None:
            record.job_id = request.job_id
        session.add(record)
        paper_known = session.exec(select(Paper.id).where(Paper.key == spec.paper)).first() is not None
    write_record(record)
    write_atomic(run_dir / "config.json", json.dumps({"runner": spec.name, "preset": resolved.preset, "kind": resolved.kind,
                                                      "seed": resolved.seed, "overrides": resolved.overrides,
                                                      "config": config_dict}, indent=2) + "\n")
    write_atomic(run_dir / "env.json", json.dumps({**env, "git_commit": commit, "git_dirty": dirty}, indent=2) + "\n")

    logger = _logger(run_dir)
    logger.info("%s run %s: preset %s on %s", "resuming" if resolved.record else "starting", run_id, resolved.preset, device)
    _seed_everything(resolved.seed)
    run = Run(id=run_id, dir=run_dir, device=device, data_dir=resolved.data, seed=resolved.seed,
              config=resolved.config, reporter=_LogReporter(logger, reporter), resuming=resolved.record is not None)
    if not paper_known:
        run.note(f"paper {spec.paper} is not in the catalog, so no claim is judged now; `kb sync` judges this run")
    status, error, final, refused = "failed", None, {}, None
    try:
        with _Signals(run):
            if resolved.kind == "architecture":
                measured, facts = measure_architecture(spec, resolved.config)
                run.record(**facts)
            else:
                measured = load_entrypoint(spec)(resolved.config, run) or {}
            final = {k: float(v) for k, v in measured.items()}
        status = "succeeded"
    except (RunInterrupted, KeyboardInterrupt):
        status, error = "interrupted", f"interrupted; resume with: kb reproduce --resume {run_id}"
    except BadInput as exc:
        # Refused before training began (a --data folder without the files the runner reads): bad input,
        # not a failed run. A new run leaves no record; a resumed one keeps its record as it was.
        if run.started or resolved.record is not None:
            error = str(exc)
            logger.error("failed: %s", exc)
        else:
            refused = exc
    except KBError as exc:
        error = str(exc)
        logger.error("failed: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a runner's crash is recorded, never lost
        error = f"{type(exc).__name__}: {exc}"
        logger.error("crashed:\n%s", traceback.format_exc())
    finally:
        run.close()
        if refused is None:
            record = finish(settings, run_id, run, status=status, error=error, final=final)
        logger.info("%s", "refused" if refused is not None else status)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    if refused is not None:
        _discard(settings, run_id, run_dir)
        raise refused
    return record


def _discard(settings: Settings, run_id: str, run_dir: Path) -> None:
    """Remove a run that was refused before it trained: its catalog row and its folder."""
    with session_scope(settings) as session:
        session.exec(delete(Metric).where(Metric.run_id == run_id))
        record = session.get(RunRecord, run_id)
        if record is not None:
            session.delete(record)
    shutil.rmtree(run_dir, ignore_errors=True)


def finish(settings: Settings, run_id: str, run: Run, *, status: str, error: str | None,
           final: dict[str, float]) -> RunRecord:
    """Store the run's outcome, and judge it and the other seeds of its experiment (their mean
    changes with this run) against the paper's claims."""
    with session_scope(settings) as session:
        record = session.get(RunRecord, run_id)
        record.status, record.error, record.ended = status, error, utcnow()
        record.final = final
        record.epochs = run.epoch_metrics if not run.resuming else _merge_epochs(record.epochs, run.epoch_metrics)
        record.info = {**record.info, **_jsonable(run.info)}
        record.throughput = run.throughput or None
        if run.dataset is not None:
            record.dataset = run.dataset.name
            record.dataset_fingerprint = run.dataset.fingerprint
            record.dataset_synthetic = run.dataset.synthetic
            record.info["dataset_detail"] = run.dataset.detail
        record.verdicts = []
        session.exec(delete(Metric).where(Metric.run_id == run_id))
        insert_metrics(load_metrics(Path(record.run_dir), run_id), session=session)
        session.add(record)
        session.flush()
        others = [r for r in rejudged(paper_key=record.paper_key, session=session) if r.id != run_id] if status == "succeeded" else []
    write_record(record)
    for other in others:            # earlier seeds of this run's experiment, judged on a new mean
        write_record(other)
    if status == "succeeded":
        write_atomic(Path(record.run_dir) / "final.json", json.dumps(
            {"metrics": final, "verdicts": record.verdicts, "dataset": record.dataset,
             "dataset_fingerprint": record.dataset_fingerprint}, indent=2) + "\n")
    return record


def _merge_epochs(before: list[dict], after: list[dict]) -> list[dict]:
    kept = {int(e["epoch"]): e for e in before}
    kept.update({int(e["epoch"]): e for e in after})
    return [kept[k] for k in sorted(kept)]


def _jsonable(info: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(info, default=str))


def mark_dead_runs(*, session: Session) -> int:
    """Runs left ``running`` by a process that no longer exists on this host become ``failed``."""
    host, count = socket.gethostname(), 0
    for record in session.exec(select(RunRecord).where(RunRecord.status == "running")):
        pid = record.info.get("pid")
        if record.host != host or not pid or _alive(int(pid)):
            continue
        record.status, record.ended = "failed", utcnow()
        record.error = "the process running it ended without recording a result (killed?); resume with kb reproduce --resume " + record.id
        session.add(record)
        write_record(record)
        count += 1
    return count


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
