"""Creating, running, interrupting, resuming and finishing a run (design.md, Runners).

``reproduce`` is the one path every run takes, from ``kb reproduce`` and from workers alike: it
records the run, seeds, picks the device, captures the environment, calls the runner, and stores
the outcome with its verdicts. A run ends ``succeeded``, ``failed`` (with the error) or
``interrupted`` (with a checkpoint to resume from); never ``running`` once kb has returned.
"""

import dataclasses
import json
import logging
import os
import random
import secrets
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
from kb.queries import claims_of
from kb.runs import config as run_config
from kb.runs.context import Reporter, Run
from kb.runs.record_file import load_metrics, write_record
from kb.runs.registry import RunnerSpec, load_entrypoint, load_registry
from kb.runs.verdict import judge_all
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


def new_run_id(runner: str) -> str:
    return f"{runner}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


@dataclass
class Plan:
    """A resolved request (what ``--dry-run`` shows)."""

    spec: RunnerSpec
    preset: str
    config: Any
    data: Path | None
    seed: int
    device: str
    record: RunRecord | None = None     # set when resuming


def plan(settings: Settings, request: Request) -> Plan:
    registry = load_registry(settings.runner_paths)
    if request.resume:
        with session_scope(settings) as session:
            record = session.get(RunRecord, request.resume)
        if record is None:
            raise NotFound(f"no run {request.resume!r}; see `kb runs`")
        if record.status not in ("interrupted", "failed"):
            raise BadInput(f"run {record.id} is {record.status}; only interrupted or failed runs can be resumed")
        spec = registry.get(record.runner)
        config = run_config.from_dict(spec, record.preset, record.config)
        data = Path(record.info["data_dir"]) if record.info.get("data_dir") else None
        return Plan(spec, record.preset, config, data, record.seed, request.device, record)
    spec = registry.get(request.runner)
    preset, config = run_config.resolve(spec, request.preset, request.overrides)
    data = request.data or settings.data
    if data is not None:
        data = data.expanduser()
        if not data.exists():
            raise BadInput(f"--data {data}: no such file or folder")
        data = data.resolve()
    return Plan(spec, preset, config, data, request.seed, request.device)


def fit_to_machine(settings: Settings, request: Request) -> tuple[Request, str | None]:
    """A foreground request naming no preset, on a machine without a GPU, gets the runner's
    ``cpu_default``; returns (request, the preset it replaced or None)."""
    if request.preset is not None or request.resume:
        return request, None
    spec = load_registry(settings.runner_paths).get(request.runner)
    if not spec.cpu_default or spec.cpu_default == spec.presets[0]:
        return request, None
    from kb.runs.environment import resolve_device

    if resolve_device(request.device) != "cpu":
        return request, None
    return dataclasses.replace(request, preset=spec.cpu_default), spec.presets[0]


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
    """Run a runner in this process and record everything; returns the finished record."""
    resolved = plan(settings, request)
    from kb.runs.environment import capture, git_state, resolve_device

    device = resolve_device(resolved.device)
    spec = resolved.spec
    if resolved.record is not None:
        run_id, run_dir = resolved.record.id, Path(resolved.record.run_dir)
        if not run_dir.is_dir():
            raise KBError(f"run folder {run_dir} of {run_id} is gone; it cannot be resumed")
    else:
        run_id = new_run_id(spec.name)
        run_dir = settings.runs_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    env = capture(device)
    commit, dirty = git_state(settings.project)
    config_dict = run_config.to_dict(resolved.config)
    with session_scope(settings) as session:
        record = session.get(RunRecord, run_id) if resolved.record is not None else None
        if record is None:
            record = RunRecord(id=run_id, runner=spec.name, paper_key=spec.paper, preset=resolved.preset,
                               config=config_dict, status="running", seed=resolved.seed, run_dir=str(run_dir),
                               job_id=request.job_id)
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
    write_atomic(run_dir / "config.json", json.dumps({"runner": spec.name, "preset": resolved.preset, "seed": resolved.seed,
                                                      "config": config_dict}, indent=2) + "\n")
    write_atomic(run_dir / "env.json", json.dumps({**env, "git_commit": commit, "git_dirty": dirty}, indent=2) + "\n")

    logger = _logger(run_dir)
    logger.info("%s run %s: preset %s on %s", "resuming" if resolved.record else "starting", run_id, resolved.preset, device)
    _seed_everything(resolved.seed)
    run = Run(id=run_id, dir=run_dir, device=device, data_dir=resolved.data, seed=resolved.seed,
              config=resolved.config, reporter=_LogReporter(logger, reporter), resuming=resolved.record is not None)
    if not paper_known:
        run.note(f"paper {spec.paper} is not in the catalog, so no claim is judged now; `kb sync` judges this run")
    status, error, final = "failed", None, {}
    try:
        with _Signals(run):
            main = load_entrypoint(spec)
            final = {k: float(v) for k, v in (main(resolved.config, run) or {}).items()}
        status = "succeeded"
    except (RunInterrupted, KeyboardInterrupt):
        status, error = "interrupted", f"interrupted; resume with: kb reproduce --resume {run_id}"
    except KBError as exc:
        error = str(exc)
        logger.error("failed: %s", exc)
    except Exception as exc:  # noqa: BLE001 - a runner's crash is recorded, never lost
        error = f"{type(exc).__name__}: {exc}"
        logger.error("crashed:\n%s", traceback.format_exc())
    finally:
        run.close()
        record = finish(settings, run_id, run, status=status, error=error, final=final)
        logger.info("%s", status)
        for handler in list(logger.handlers):
            handler.close()
            logger.removeHandler(handler)
    return record


def finish(settings: Settings, run_id: str, run: Run, *, status: str, error: str | None,
           final: dict[str, float]) -> RunRecord:
    throughput = final.get("images_per_s") or (run.progress.throughput() or None)
    with session_scope(settings) as session:
        record = session.get(RunRecord, run_id)
        record.status, record.error, record.ended = status, error, utcnow()
        record.final = final
        record.epochs = run.epoch_metrics if not run.resuming else _merge_epochs(record.epochs, run.epoch_metrics)
        record.info = {**record.info, **_jsonable(run.info)}
        record.throughput = throughput
        if run.dataset is not None:
            record.dataset = run.dataset.name
            record.dataset_fingerprint = run.dataset.fingerprint
            record.dataset_synthetic = run.dataset.synthetic
            record.info["dataset_detail"] = run.dataset.detail
        claims = claims_of(session, record.paper_key)
        record.verdicts = judge_all(claims, config=record.config, final=final, dataset=record.dataset,
                                    synthetic=record.dataset_synthetic, device_name=record.device or "") if status == "succeeded" else []
        session.exec(delete(Metric).where(Metric.run_id == run_id))
        session.add_all(load_metrics(Path(record.run_dir), run_id))
        session.add(record)
    write_record(record)
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


def mark_dead_runs(session: Session) -> int:
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
