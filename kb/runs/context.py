"""The object a runner's ``main(config, run)`` talks to.

A runner never touches the catalog: it logs metrics, checkpoints and says which data it used
through this object, and kb turns that into the run record (design.md, Runners).
"""

import base64
import csv
import json
import logging
import os
import random
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from kb.errors import KBError, RunInterrupted


@dataclass
class DatasetInfo:
    """The data a run used. ``name`` is compared with a claim's ``dataset`` (e.g. ``mnist-test``)."""

    name: str
    fingerprint: str
    synthetic: bool = False
    detail: str = ""


class Reporter(Protocol):
    """Receives progress; the CLI shows it live, a worker logs it."""

    def update(self, run: "Run", line: dict[str, Any]) -> None: ...


@dataclass
class Progress:
    """Where training stands, and its throughput measured by kb from what the loop logs.

    ``samples`` and ``train_seconds`` cover every segment of a resumed run (they are checkpointed).
    ``train_seconds`` adds up the time from one ``Run.log`` to the next; ``Run.start``, ``log_epoch``
    and ``checkpoint`` restart that clock, so evaluation, saving and set-up are not training time.
    """

    total_steps: int = 0
    epochs: int = 0
    step: int = 0
    epoch: int = 0
    samples: int = 0
    train_seconds: float = 0.0
    started: float = field(default_factory=time.monotonic)
    resumed_step: int = 0

    def throughput(self) -> float:
        """Training samples per second (0 before anything was logged)."""
        return self.samples / self.train_seconds if self.train_seconds > 0 else 0.0

    def eta_seconds(self) -> float | None:
        done = self.step - self.resumed_step
        if not self.total_steps or done <= 0:
            return None
        elapsed = time.monotonic() - self.started
        return elapsed / done * (self.total_steps - self.step)


class Run:
    """One execution of a runner.

    Attributes:
        id: the run id (also the run folder's name).
        dir: the run folder (config.json, env.json, metrics.csv, final.json, checkpoints/, log).
        device: a torch device string (``cpu``, ``cuda:0``), chosen by kb.
        data_dir: the ``--data`` folder, or None for the runner's default data.
        seed: the seed; kb has already seeded python, numpy and torch with it.
        config: the resolved frozen config.
    """

    def __init__(self, *, id: str, dir: Path, device: str, data_dir: Path | None, seed: int,
                 config: Any, reporter: Reporter | None = None, resuming: bool = False) -> None:
        self.id = id
        self.dir = dir
        self.device = device
        self.data_dir = data_dir
        self.seed = seed
        self.config = config
        self.resuming = resuming
        self.dataset: DatasetInfo | None = None
        self.info: dict[str, Any] = {}
        self.epoch_metrics: list[dict[str, float]] = []
        self.progress = Progress()
        self.started = False                   # set by start(): training has begun
        self._clock: float | None = None       # when the current stretch of training time began
        self._reporter = reporter
        self._stop = threading.Event()
        self._metrics_file = (dir / "metrics.csv").open("a", newline="", encoding="utf-8")
        self._metrics = csv.writer(self._metrics_file)
        if self._metrics_file.tell() == 0:
            self._metrics.writerow(["kind", "step", "epoch", "name", "value", "time"])
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.figures_dir.mkdir(parents=True, exist_ok=True)

    # -- what the runner calls -------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def figures_dir(self) -> Path:
        return self.dir / "figures"

    def set_dataset(self, name: str, *, fingerprint: str, synthetic: bool = False, detail: str = "") -> None:
        """Say which data the run trains and is evaluated on (compared with the claims' datasets)."""
        self.dataset = DatasetInfo(name=name, fingerprint=fingerprint, synthetic=synthetic, detail=detail)

    def record(self, **info: Any) -> None:
        """Extra facts a reviewer needs (``backbone_pretrained=False``, ``parameters=...``)."""
        self.info.update(info)

    def plot(self, title: str, series: dict[str, tuple[Any, Any]], *, xlabel: str, ylabel: str = "",
             log: bool | None = None) -> None:
        """A figure of the run's own, beside its step and epoch curves: a loss against the optimizee's
        step, an accuracy against a shared weight. ``series`` is {label: (xs, ys)}; ``log`` None lets the
        site choose (a log axis when the values span decades). Kept in the record (``info["plots"]``) and
        drawn on the run's page; a second plot with the same title replaces the first (a resumed run)."""
        entry = {"title": str(title), "xlabel": str(xlabel), "ylabel": str(ylabel), "log": log,
                 "series": [[str(label), [float(x) for x in xs], [float(y) for y in ys]]
                            for label, (xs, ys) in series.items()]}
        for label, xs, ys in entry["series"]:
            if len(xs) != len(ys):
                raise ValueError(f"plot {title!r}: series {label!r} has {len(xs)} x values and {len(ys)} y values")
        kept = [p for p in self.info.get("plots", []) if p["title"] != entry["title"]]
        self.info["plots"] = [*kept, entry]

    def image(self, title: str, pixels: Any) -> None:
        """A small grayscale picture (samples of a generative model): ``pixels`` is an (H, W) array of
        uint8 (or of floats in [0, 1]), at most 1024 on a side. Kept in the record as PNG
        (``info["images"]``, base64) and shown on the run's page."""
        import numpy as np

        array = np.asarray(pixels)
        if array.ndim != 2 or max(array.shape) > 1024 or min(array.shape) < 1:
            raise ValueError(f"image {title!r}: expected an (H, W) array of at most 1024x1024, got shape {array.shape}")
        if array.dtype != np.uint8:
            array = (np.clip(array.astype(np.float64), 0.0, 1.0) * 255).round().astype(np.uint8)
        kept = [i for i in self.info.get("images", []) if i["title"] != str(title)]
        self.info["images"] = [*kept, {"title": str(title), "png": base64.b64encode(gray_png(array)).decode("ascii")}]

    def note(self, text: str) -> None:
        """Say what a long set-up phase is doing (generating data, compiling), before ``start``."""
        self._emit({"note": text})

    def start(self, *, total_steps: int, epochs: int = 0, step: int = 0) -> None:
        """Announce the length of training (for the ETA); ``step`` > 0 when resuming.

        From here on Ctrl-C stops at the next step with a checkpoint; before it, at once.
        """
        self.progress = Progress(total_steps=total_steps, epochs=epochs, step=step, resumed_step=step,
                                 samples=self.progress.samples, train_seconds=self.progress.train_seconds)
        self.started = True
        self._clock = time.perf_counter()
        self._emit({"started": True, "step": step})

    def log(self, step: int, *, epoch: int | None = None, samples: int = 0, **metrics: float) -> None:
        """Per-step metrics; ``samples`` is how many examples were trained on since the last ``log``
        (kb's throughput: samples over the time between logs)."""
        self.progress.step = step
        if epoch is not None:
            self.progress.epoch = epoch
        self.progress.samples += samples
        self._count_training_time()
        now = round(time.time(), 3)
        for name, value in metrics.items():
            self._metrics.writerow(["step", step, "" if epoch is None else epoch, name, float(value), now])
        self._emit({"step": step, "epoch": epoch, **metrics})

    def log_epoch(self, epoch: int, **metrics: float) -> None:
        """Per-epoch metrics (evaluation results), kept in the run record."""
        self.progress.epoch = epoch
        now = round(time.time(), 3)
        for name, value in metrics.items():
            self._metrics.writerow(["epoch", self.progress.step, epoch, name, float(value), now])
        self._metrics_file.flush()
        self.epoch_metrics.append({"epoch": epoch, **{k: float(v) for k, v in metrics.items()}})
        self._emit({"epoch": epoch, **metrics, "eval": True})
        self._clock = time.perf_counter()  # the evaluation before this call was not training

    def checkpoint(self, state: dict[str, Any]) -> Path:
        """Save ``state`` (tensors, numbers, strings) with the RNG states, atomically."""
        import numpy as np
        import torch

        payload = dict(state)
        payload["_rng"] = {
            "torch": torch.get_rng_state(),
            "python": json.dumps(random.getstate()),
            "numpy": json.dumps(np.random.get_state(legacy=True), default=_numpy_json),
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            # Dropout and augmentation on the GPU draw from the CUDA generators: without them a
            # resumed GPU run would take different random draws from the uninterrupted one.
            payload["_rng"]["cuda"] = torch.cuda.get_rng_state_all()
        payload["_progress"] = {"samples": self.progress.samples, "train_seconds": self.progress.train_seconds}
        path = self.checkpoint_dir / "last.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, path)
        self._metrics_file.flush()
        if self._clock is not None:
            self._clock = time.perf_counter()  # saving is not training either
        return path

    def resume_state(self) -> dict[str, Any] | None:
        """The last checkpoint with RNG states restored, or None when starting fresh."""
        path = self.checkpoint_dir / "last.pt"
        if not self.resuming or not path.exists():
            return None
        state = load_checkpoint(path)
        rng = state.pop("_rng", None)
        if rng:
            import numpy as np
            import torch

            torch.set_rng_state(rng["torch"])
            random.setstate(_tuplify(json.loads(rng["python"])))
            kind, keys, pos, has_gauss, cached = json.loads(rng["numpy"])
            np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
            cuda = rng.get("cuda")
            if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
                torch.cuda.set_rng_state_all(cuda)
            elif cuda:
                logging.getLogger("kb.runs").warning(
                    "the checkpoint holds the random state of %d CUDA devices and this machine has %d; "
                    "GPU random draws after the resume differ from an uninterrupted run",
                    len(cuda), torch.cuda.device_count() if torch.cuda.is_available() else 0)
        progress = state.pop("_progress", {})
        if "train_seconds" in progress:  # a checkpoint from before kb timed training counts this segment alone
            self.progress.samples, self.progress.train_seconds = progress["samples"], progress["train_seconds"]
        return state

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def check_interrupt(self, state_fn: Callable[[], dict[str, Any]]) -> None:
        """Call at a step boundary: on Ctrl-C/SIGTERM, checkpoint ``state_fn()`` and stop."""
        if self._stop.is_set():
            self.checkpoint(state_fn())
            raise RunInterrupted(f"run {self.id} interrupted; resume with: kb reproduce --resume {self.id}")

    @property
    def throughput(self) -> float:
        """Training samples per second over every segment of the run, evaluation and saving excluded."""
        return self.progress.throughput()

    # -- what kb calls -----------------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._metrics_file.close()

    def _count_training_time(self) -> None:
        now = time.perf_counter()
        if self._clock is not None:
            self.progress.train_seconds += now - self._clock
        self._clock = now

    def _emit(self, line: dict[str, Any]) -> None:
        if self._reporter is not None:
            self._reporter.update(self, line)


def _numpy_json(value):
    return value.tolist()


def _tuplify(value):
    return tuple(_tuplify(v) for v in value) if isinstance(value, list) else value


def gray_png(pixels: Any) -> bytes:
    """An (H, W) uint8 array as an 8-bit grayscale PNG (PNG spec: signature, IHDR, one IDAT of
    zlib-compressed scanlines each led by filter byte 0, IEND; each chunk length, type, data, CRC-32)."""
    height, width = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    rows = b"".join(b"\x00" + pixels[row].tobytes() for row in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a kb checkpoint safely (``weights_only=True``); a broken file gives a clear error."""
    import pickle
    import zipfile

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KBError(f"checkpoint {path} cannot be loaded (corrupt or not a kb checkpoint): {first}") from None
    if not isinstance(state, dict):
        raise KBError(f"checkpoint {path} is not a kb checkpoint (expected a dict of state)")
    return state
