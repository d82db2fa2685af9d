"""The runner registry: names to specs, without importing torch.

A runner package (``runners/<name>/__init__.py``) defines ``RUNNER = RunnerSpec(...)``. Listing
imports only those ``__init__`` modules and the config modules (plain dataclasses), so
``kb runners`` stays instant. The training entrypoint is imported only when a run starts.
"""

import difflib
import importlib
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import KBError, NotFound


@dataclass(frozen=True)
class Resources:
    """What one run needs, used by the SLURM executor."""

    gpus: int = 1
    cpus: int = 8
    mem_gb: int = 32
    time_min: int = 24 * 60


@dataclass(frozen=True)
class RunnerSpec:
    """What kb knows of a runner before importing any of its heavy code.

    Attributes:
        name: registry name, used on the command line (``kb reproduce yolo``).
        paper: the paper's key (arXiv id without version, or ``doi:...``).
        summary: one line saying what the runner trains.
        datasets: dataset kinds the runner reads (``voc``, ``mnist``, ``generated`` ...).
        presets: preset names, the first is the default for ``kb reproduce NAME``.
        entrypoint: ``module:function`` called as ``function(config, run)``.
        config: module holding ``Config`` (a frozen dataclass) and ``PRESETS`` (name -> Config).
        resources: per-run needs for cluster executors.
        cpu_presets: presets sized for a CPU; the others get a note when they run without a GPU.
        cpu_default: the preset ``kb reproduce NAME`` runs when no preset is named and no GPU is
            found (None: the first preset, wherever it runs).
    """

    name: str
    paper: str
    summary: str
    datasets: tuple[str, ...]
    presets: tuple[str, ...]
    entrypoint: str
    config: str
    resources: Resources = field(default_factory=Resources)
    cpu_presets: tuple[str, ...] = ("smoke",)
    cpu_default: str | None = None


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, RunnerSpec] = {}

    def register(self, spec: RunnerSpec) -> None:
        if spec.name in self._specs:
            raise KBError(f"two runners are named {spec.name!r}; runner names must be unique")
        self._specs[spec.name] = spec

    def get(self, name: str) -> RunnerSpec:
        try:
            return self._specs[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._specs, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known runners: {', '.join(sorted(self._specs)) or 'none'}"
            raise NotFound(f"no runner named {name!r}; {hint}") from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[RunnerSpec]:
        return [self._specs[n] for n in self.names()]


def _discover(package_dir: Path, prefix: str, registry: Registry) -> None:
    for info in pkgutil.iter_modules([str(package_dir)]):
        if not info.ispkg:
            continue
        module = importlib.import_module(prefix + info.name)
        spec = getattr(module, "RUNNER", None)
        if isinstance(spec, RunnerSpec):
            registry.register(spec)


def load_registry(extra_paths: tuple[Path, ...] = ()) -> Registry:
    """Every runner under the ``runners`` package plus those in ``extra_paths`` (``KB_RUNNERS``)."""
    import runners

    registry = Registry()
    for path in runners.__path__:
        _discover(Path(path), "runners.", registry)
    for path in extra_paths:
        if not path.is_dir():
            raise KBError(f"KB_RUNNERS names {path}, which is not a folder")
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
        _discover(path, "", registry)
    return registry


def load_entrypoint(spec: RunnerSpec):
    module_name, _, func = spec.entrypoint.partition(":")
    return getattr(importlib.import_module(module_name), func)
