"""The runner registry: names to specs, without importing torch.

A runner package (``runners/<name>/__init__.py``) defines ``RUNNER = RunnerSpec(...)``. Listing
imports only those ``__init__`` modules and the config modules (plain dataclasses), so
``kb runners`` stays instant. The training entrypoint is imported only when a run starts.

A package that fails to import, or whose ``RUNNER`` is malformed, becomes one line in
``Registry.problems`` naming it; the other runners load and work (design.md, Runners).

Importing every runner's ``config.py`` (and its family's) still costs ``kb runners`` more than the
rest of its start (issue 21), so ``load_registry(..., cache_dir=...)`` keeps the specs of a registry
without problems in ``KB_HOME/cache`` and reads them back while no runner file changed.
"""

import dataclasses
import importlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kb import cache
from kb.cache import file_stats
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
        presets: preset names, the first is the default for ``kb reproduce NAME``. Leave it out: it is
            read from the keys of the config module's ``PRESETS``, in order, so presets are declared
            once. (Runner folders written before that may still list them here.)
        entrypoint: ``module:function`` called as ``function(config, run)`` (required: the empty default
            only keeps the field order, and the registry refuses it).
        config: module holding ``Config`` (a frozen dataclass) and ``PRESETS`` (name -> Config); required.
        resources: per-run needs for cluster executors.
        cpu_presets: presets sized for a CPU; the others get a note when they run without a GPU.
        cpu_default: the preset ``kb reproduce NAME`` runs when no preset is named and no GPU is
            found (None: the first preset, wherever it runs).
        architecture: ``module:function`` called as ``function(config)``, returning the preset's
            ``torch.nn.Module`` and an example input of the paper's size (batch 1), built without data,
            and optionally a third item: ``{metric: value}`` of further data-free metrics (claims on
            them are marked ``data_free: true`` in ``paper.yaml``).
    """

    name: str
    paper: str
    summary: str
    datasets: tuple[str, ...]
    presets: tuple[str, ...] = ()
    entrypoint: str = ""
    config: str = ""
    resources: Resources = field(default_factory=Resources)
    cpu_presets: tuple[str, ...] = ("smoke",)
    cpu_default: str | None = None
    architecture: str | None = None

    def __post_init__(self) -> None:
        if not self.presets:
            object.__setattr__(self, "presets", _preset_names(self.config))


class MalformedRunner(KBError):
    """A ``RUNNER`` that kb cannot use as declared."""


def _preset_names(config: str) -> tuple[str, ...]:
    """The keys of ``PRESETS`` in the config module (plain dataclasses: importing it is cheap)."""
    if not isinstance(config, str) or not config:
        raise MalformedRunner(f"RUNNER.config must name the module holding PRESETS, got {config!r}")
    table = getattr(importlib.import_module(config), "PRESETS", None)
    if not isinstance(table, dict) or not table or not all(
            isinstance(k, str) and dataclasses.is_dataclass(v) for k, v in table.items()):
        raise MalformedRunner(f"{config}.PRESETS must be a non-empty dict of preset name -> Config")
    return tuple(table)


class Registry:
    """Runners by name, and one line for each runner package that could not be loaded.

    Attributes:
        problems: ``runner NAME (where): error`` for each package that failed to import or declares a
            malformed ``RUNNER``, in discovery order.
    """

    def __init__(self) -> None:
        self._specs: dict[str, RunnerSpec] = {}
        self._broken: dict[str, str] = {}
        self.problems: list[str] = []

    def register(self, spec: RunnerSpec) -> None:
        if spec.name in self._specs:
            raise KBError(f"two runners are named {spec.name!r}; runner names must be unique")
        self._specs[spec.name] = spec

    def report(self, name: str, problem: str) -> None:
        """Record that the runner package ``name`` cannot be used, and why (one line)."""
        self._broken.setdefault(name, problem)
        self.problems.append(problem)

    def get(self, name: str) -> RunnerSpec:
        try:
            return self._specs[name]
        except KeyError:
            if name in self._broken:
                raise NotFound(self._broken[name]) from None
            import difflib

            close = difflib.get_close_matches(name, self._specs, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known runners: {', '.join(sorted(self._specs)) or 'none'}"
            raise NotFound(f"no runner named {name!r}; {hint}") from None

    def names(self) -> list[str]:
        return sorted(self._specs)

    def specs(self) -> list[RunnerSpec]:
        return [self._specs[n] for n in self.names()]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _check_target(spec: RunnerSpec, field_name: str) -> None:
    """``module:function`` in form only: the module is imported when it is called (it imports torch)."""
    value = getattr(spec, field_name)
    module, sep, function = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not (module and sep and function):
        raise MalformedRunner(f"RUNNER.{field_name} must be 'module:function', got {value!r}")


def _check(spec: object) -> RunnerSpec:
    """The spec, after checking what it declares."""
    if not isinstance(spec, RunnerSpec):
        raise MalformedRunner(f"RUNNER is {spec!r:.40} ({type(spec).__name__}), not a RunnerSpec")
    for name in ("name", "paper", "summary", "config"):
        if not isinstance(getattr(spec, name), str) or not getattr(spec, name):
            raise MalformedRunner(f"RUNNER.{name} must be a non-empty string, got {getattr(spec, name)!r}")
    if not isinstance(spec.datasets, tuple) or not all(isinstance(d, str) for d in spec.datasets):
        raise MalformedRunner(f"RUNNER.datasets must be a tuple of names, got {spec.datasets!r}")
    _check_target(spec, "entrypoint")
    if spec.architecture is not None:
        _check_target(spec, "architecture")
    named = (*spec.cpu_presets, *([spec.cpu_default] if spec.cpu_default else []))
    unknown = [p for p in named if p not in spec.presets]
    if unknown:
        raise MalformedRunner(f"RUNNER names preset(s) {', '.join(map(repr, unknown))} that {spec.config} does not "
                              f"define (presets: {', '.join(spec.presets)})")
    return spec


def _discover(package_dir: Path, prefix: str, registry: Registry) -> None:
    import pkgutil

    for info in pkgutil.iter_modules([str(package_dir)]):
        if not info.ispkg:
            continue
        where = package_dir / info.name
        try:
            module = importlib.import_module(prefix + info.name)
            if not hasattr(module, "RUNNER"):
                continue  # a family or shared package (runners/common, runners/mnist ...)
            spec = _check(module.RUNNER)
            registry.register(spec)
        except KBError as exc:  # a malformed RUNNER, a duplicate name
            registry.report(info.name, f"runner {info.name} ({where}): {exc}")
        except Exception as exc:  # noqa: BLE001 - a broken runner package never hides the others
            registry.report(info.name, f"runner {info.name} ({where}) cannot be imported: {_one_line(exc)}")


_CACHE = "runners.marshal"


def _files_key(roots: list[Path]) -> tuple:
    """What the specs are read from: every Python file under the runner folders and the kb modules
    their ``__init__`` and config modules import (``kb.cache.file_stats``), and the Python that imports
    them. A runner added, removed or edited changes it."""
    here = Path(__file__)
    files = [here, here.with_name("config.py"), here.parents[1] / "errors.py"]
    for root in roots:
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d != "__pycache__" and not d.startswith("."))
            files += sorted(Path(folder, name) for name in names if name.endswith(".py"))
    return sys.version, tuple(map(str, roots)), file_stats(files)


def _registry_of(specs: list[dict]) -> Registry:
    registry = Registry()
    for fields in specs:
        registry.register(RunnerSpec(**{**fields, "resources": Resources(**fields["resources"])}))
    return registry


def load_registry(extra_paths: tuple[Path, ...] = (), *, cache_dir: Path | None = None) -> Registry:
    """Every runner under the ``runners`` package plus those in ``extra_paths`` (``KB_RUNNERS``).

    Packages that cannot be loaded are listed in ``problems`` instead of raising. With ``cache_dir``
    (``kb runners``, ``kb sync``: they read the specs only), a registry without problems is kept
    there and read back while every runner file is as it was; one with problems is never kept, so
    a broken package is imported, and named, on every call until it loads.
    """
    import runners

    roots = [Path(path) for path in runners.__path__]
    for path in extra_paths:
        if path.is_dir() and str(path) not in sys.path:
            sys.path.insert(0, str(path))
    key = _files_key([*roots, *extra_paths]) if cache_dir is not None else None
    if key is not None and (specs := cache.read(cache_dir / _CACHE, key)) is not None:
        return _registry_of(specs)
    registry = Registry()
    for root in roots:
        _discover(root, "runners.", registry)
    for path in extra_paths:
        if not path.is_dir():
            registry.report(str(path), f"KB_RUNNERS names {path}, which is not a folder")
            continue
        _discover(path, "", registry)
    if key is not None and not registry.problems:
        cache.write(cache_dir / _CACHE, key, [dataclasses.asdict(spec) for spec in registry.specs()])
    return registry


def _target(value: str):
    module_name, _, func = value.partition(":")
    return getattr(importlib.import_module(module_name), func)


def load_entrypoint(spec: RunnerSpec):
    return _target(spec.entrypoint)


def load_architecture(spec: RunnerSpec):
    """The runner's ``architecture(config) -> (model, example_input)``.

    Raises:
        KBError: the runner declares no ``architecture``.
    """
    if spec.architecture is None:
        raise KBError(f"runner {spec.name} declares no architecture (RunnerSpec.architecture='module:function')")
    return _target(spec.architecture)
