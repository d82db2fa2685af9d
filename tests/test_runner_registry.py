"""One test body over every registered runner, as timm's tests/test_models.py runs one over its models.

For each runner: its presets come from its config module and resolve, its ``smoke`` preset runs through
``kb reproduce`` into a complete record, an interrupted and resumed run ends exactly like an
uninterrupted one, and ``architecture(config)`` of every preset builds and runs forward. A new runner
gets these tests by existing. Also here: the layering of ``runners/`` (imports only go downward), one
problem line per broken runner package, and kb's own throughput measurement.
"""

import ast
import dataclasses
import json
import math
import platform
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kb.errors import RunInterrupted
from kb.runs.config import presets, resolve, to_dict
from kb.runs.context import Run
from kb.runs.registry import load_architecture, load_entrypoint, load_registry
from tests.conftest import ROOT
from tests.test_classification_data import write_cifar10
from tests.test_language_model_data import write_ptb
from tests.test_mnist_data import write_mnist

REGISTRY = load_registry()
RUNNERS = REGISTRY.names()
PRESETS = [(name, preset) for name in RUNNERS for preset in REGISTRY.get(name).presets]


def mnist_files(folder: Path) -> Path:
    write_mnist(folder, n_train=400, n_test=128)
    return folder


def cifar10_files(folder: Path) -> Path:
    write_cifar10(folder, per_batch=20, n_test=50)
    return folder


# Test data for each dataset kind a runner may read (RunnerSpec.datasets): a folder writer, or None for a
# runner that generates its own data when no --data is given.
TEST_DATA = {"mnist": mnist_files, "cifar10": cifar10_files, "ptb": write_ptb, "generated": None}


def data_for(spec, folder: Path) -> Path | None:
    """``--data`` for the runner's first dataset kind that the tests can provide."""
    for kind in spec.datasets:
        if kind in TEST_DATA:
            return TEST_DATA[kind](folder) if TEST_DATA[kind] else None
    pytest.fail(f"runner {spec.name} reads {spec.datasets}; add test data for one of them to TEST_DATA")


def git_head() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


def timed(metric: str) -> bool:
    """Final metrics measured with a clock (frame rates, images per second) differ between runs."""
    return "fps" in metric or metric.endswith("_per_s")


def new_run(path, data_dir, config, resuming=False, stop_after=None):
    """A Run as kb builds it (seeded); ``stop_after`` asks it to stop once that step is logged."""
    torch.manual_seed(0)
    random.seed(0)
    np.random.seed(0)

    class StoppingRun(Run):
        def log(self, step, **kwargs):
            super().log(step, **kwargs)
            if stop_after is not None and step >= stop_after:
                self.request_stop()

    path.mkdir(parents=True, exist_ok=True)
    return StoppingRun(id=path.name, dir=path, device="cpu", data_dir=data_dir, seed=0, config=config,
                       resuming=resuming)


def whole_and_resumed(main, config, tmp_path, data_dir, stop_after: int | None = None):
    """Train once straight through, and once stopped after ``stop_after`` steps (None: just past half
    of the run) and resumed, in ``tmp_path/whole`` and ``tmp_path/split``. Returns (final, run) of each,
    after checking that the resumed run continued from the stop instead of starting over."""
    whole = new_run(tmp_path / "whole", data_dir, config)
    expected = main(config, whole)
    whole.close()
    stop_after = stop_after or whole.progress.total_steps // 2 + 1
    interrupted = new_run(tmp_path / "split", data_dir, config, stop_after=stop_after)
    with pytest.raises(RunInterrupted):
        main(config, interrupted)
    interrupted.close()
    resumed = new_run(tmp_path / "split", data_dir, config, resuming=True)
    got = main(config, resumed)
    resumed.close()
    assert resumed.progress.resumed_step == stop_after
    return (expected, whole), (got, resumed)


def logged(run_dir: Path) -> dict[tuple[str, str, str], float]:
    """metrics.csv as (kind, step, name) -> value, without the wall-clock column."""
    rows = (run_dir / "metrics.csv").read_text(encoding="utf-8").splitlines()[1:]
    return {(kind, step, name): float(value) for kind, step, _, name, value, _ in (r.split(",") for r in rows)}


def assert_same_state(a, b, where: str = "checkpoint") -> None:
    """Checkpoint contents equal bit for bit (kb's own ``_rng``/``_progress`` entries aside)."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        keys = {k for k in a if not str(k).startswith("_")}
        assert keys == {k for k in b if not str(k).startswith("_")}, where
        for key in keys:
            assert_same_state(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_state(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, where


def test_the_shipped_runners_load_without_problems():
    assert REGISTRY.problems == []
    assert {"bnn", "kervolution", "yolo"} <= set(RUNNERS)


@pytest.mark.parametrize("name", RUNNERS)
def test_presets_are_declared_once_in_the_config_and_override_flat(name):
    spec = REGISTRY.get(name)
    table = presets(spec)
    assert spec.presets == tuple(table) and "smoke" in table
    assert set(spec.cpu_presets) <= set(table) and spec.cpu_default in (None, *table)
    assert resolve(spec, None) == (spec.presets[0], table[spec.presets[0]])
    for preset, config in table.items():
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(config, dataclasses.fields(config)[0].name, None)
        # Every field, the family's included, is settable by --set from its own text form.
        same = [f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in vars(config).items()]
        assert resolve(spec, preset, same) == (preset, config)


@pytest.mark.parametrize("name", RUNNERS)
def test_smoke_through_kb_reproduce_has_a_complete_record(name, kb, kb_env, tmp_path):
    from sqlmodel import select

    from kb.db import session_scope
    from kb.models import Metric

    spec = REGISTRY.get(name)
    data = data_for(spec, tmp_path / "data")
    commits = {git_head()}
    result = kb("reproduce", name, "--config", "smoke", "--device", "cpu", *(["--data", str(data)] if data else []))
    commits.add(git_head())  # (a commit made meanwhile in a shared checkout)
    assert result.code == 0, result.err
    (row,) = json.loads(kb("runs", "--runner", name, "--json").out)
    run = json.loads(kb("run", "show", row["id"], "--json").out)
    assert run["status"] == "succeeded" and run["preset"] == "smoke" and run["seed"] == 0
    assert run["config"] == json.loads(json.dumps(to_dict(presets(spec)["smoke"])))
    assert run["git_commit"] in commits
    assert run["env"]["torch"] == torch.__version__ and run["env"]["python"] == platform.python_version()
    assert run["device"] and run["device"] == run["env"]["device_name"]
    assert run["dataset"] and run["dataset_fingerprint"]
    assert run["final"] and all(math.isfinite(v) for v in run["final"].values())
    assert "images_per_s" not in run["final"]            # kb measures throughput itself
    assert run["throughput"] > 0
    assert run["epochs"]
    with session_scope(kb_env) as session:
        steps = {m.step for m in session.exec(select(Metric).where(Metric.run_id == run["id"], Metric.kind == "step"))}
    assert steps and min(steps) >= 1
    folder = Path(run["run_dir"])
    assert {"config.json", "env.json", "metrics.csv", "final.json"} <= {p.name for p in folder.iterdir()}
    assert json.loads((folder / "final.json").read_text())["metrics"] == run["final"]


@pytest.mark.parametrize("name", RUNNERS)
def test_interrupted_then_resumed_run_ends_like_an_uninterrupted_one(name, tmp_path):
    spec = REGISTRY.get(name)
    config = presets(spec)["smoke"]
    data = data_for(spec, tmp_path / "data")
    (expected, whole), (got, resumed) = whole_and_resumed(load_entrypoint(spec), config, tmp_path, data)
    assert {k: v for k, v in got.items() if not timed(k)} == {k: v for k, v in expected.items() if not timed(k)}
    assert resumed.epoch_metrics[-1] == whole.epoch_metrics[-1]
    assert logged(tmp_path / "split") == logged(tmp_path / "whole")
    assert_same_state(torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True),
                      torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True))
    # kb's throughput counts every segment: as many samples as the uninterrupted run.
    assert resumed.progress.samples == whole.progress.samples > 0 and resumed.throughput > 0


@pytest.mark.parametrize("name, preset", PRESETS)
def test_architecture_of_every_preset_builds_and_runs_forward_without_data(name, preset):
    from torch.utils.flop_counter import FlopCounterMode

    from kb.runs.execute import measure_architecture

    spec = REGISTRY.get(name)
    config = presets(spec)[preset]
    measured, _ = measure_architecture(spec, config)        # built on torch's meta device
    assert measured["parameters"] > 0 and measured["flops"] > 0
    if measured["parameters"] > 20e6:
        return  # a paper-sized network: its smaller presets run the same code for real below
    model, example = load_architecture(spec)(config)[:2]   # a third item: further data-free metrics
    inputs = example if isinstance(example, tuple) else (example,)
    assert isinstance(model, torch.nn.Module) and inputs[0].shape[0] == 1
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        out = model(*inputs)
    assert out.shape[0] == 1 and torch.isfinite(out).all()
    # The reference for the meta-device counts: the same model with real weights on a CPU.
    assert measured["parameters"] == sum(p.numel() for p in model.parameters())
    assert measured["flops"] == counter.get_total_flops()


def _runner_packages() -> dict[str, str]:
    """Each package under runners/ -> its layer: "common", "family" or "paper" (it declares RUNNER)."""
    layers = {}
    for init in sorted((ROOT / "runners").glob("*/__init__.py")):
        tree = ast.parse(init.read_text(encoding="utf-8"))
        declares = any(isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "RUNNER" for t in n.targets)
                       for n in tree.body)
        package = init.parent.name
        layers[package] = "common" if package == "common" else "paper" if declares else "family"
    return layers


def test_runner_imports_only_go_downward():
    """common <- family <- paper: never upward, never from one paper's folder into another's."""
    layers = _runner_packages()
    assert {"common", "mnist", "detection"} <= set(layers) and layers["common"] == "common"
    allowed = {"common": {"common"}, "family": {"common", "family"}, "paper": {"common", "family"}}
    wrong = []
    for path in sorted((ROOT / "runners").rglob("*.py")):
        parts = path.relative_to(ROOT / "runners").parts
        if len(parts) < 2:
            continue
        own = parts[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            for module in names:
                if module.split(".")[0] != "runners" or len(module.split(".")) < 2:
                    continue
                target = module.split(".")[1]
                if target != own and layers.get(target) not in allowed[layers[own]]:
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
                if layers[own] == "family" and layers.get(target) == "family" and target != own:
                    wrong.append(f"{path.relative_to(ROOT)} imports another family: {module}")
    assert not wrong, wrong


LIST_AND_REPORT = """
import sys
from kb.cli.main import main
try:
    main(["runners"])
except SystemExit as exc:
    assert not exc.code, exc.code
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def test_listing_runners_imports_no_torch(kb_env):
    result = subprocess.run([sys.executable, "-c", LIST_AND_REPORT], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    imported = result.stderr.split()
    assert {"runners.yolo", "runners.bnn.config", "runners.mnist.config"} <= set(imported)
    assert not [m for m in imported if m.split(".")[0] == "torch"]


SPEC = ("from kb.runs.registry import RunnerSpec\n"
        "RUNNER = RunnerSpec(name='{0}', paper='1', summary='s', datasets=(), entrypoint='{0}.train:main',"
        " config='{0}.config'{1})\n")
CONFIG = "from dataclasses import dataclass\n@dataclass(frozen=True)\nclass Config:\n    steps: int = 1\n"

# Runner packages broken in each way kb must survive: (__init__.py, other files).
BROKEN = {
    "syntaxerror": ("def (\n", {}),
    "notaspec": ("RUNNER = 'yolo'\n", {}),
    "missingdep": ("import no_such_module_kb_test\n", {}),
    "badconfig": (SPEC.format("badconfig", ""), {"config.py": "PRESETS = {'smoke': 3}\n"}),
    "badpreset": (SPEC.format("badpreset", ", cpu_default='cpu'"),
                  {"config.py": CONFIG + "PRESETS = {'smoke': Config()}\n"}),
}


def test_a_broken_runner_package_is_one_line_and_hides_no_other(kb, kb_env, tmp_path, monkeypatch):
    for package, (init, files) in BROKEN.items():
        (tmp_path / "extra" / package).mkdir(parents=True)
        (tmp_path / "extra" / package / "__init__.py").write_text(init, encoding="utf-8")
        for file, text in files.items():
            (tmp_path / "extra" / package / file).write_text(text, encoding="utf-8")
    monkeypatch.setenv("KB_RUNNERS", str(tmp_path / "extra"))
    listed = kb("runners")
    assert listed.code == 1
    lines = listed.err.strip().splitlines()
    assert len(lines) == len(BROKEN)
    for package, line in zip(sorted(BROKEN), lines):
        assert line.startswith(f"problem: runner {package} ("), line
    assert "SyntaxError" in lines[sorted(BROKEN).index("syntaxerror")]
    assert "no_such_module_kb_test" in lines[sorted(BROKEN).index("missingdep")]
    assert "'cpu'" in lines[sorted(BROKEN).index("badpreset")]
    for name in RUNNERS:
        assert name in listed.out
    listing = kb("runners", "--json")
    assert listing.code == 1 and {r["name"] for r in json.loads(listing.out)} == set(RUNNERS)
    run = kb("reproduce", "syntaxerror")
    assert run.code != 0 and "runner syntaxerror (" in run.err and "SyntaxError" in run.err
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1
    # kb sync and kb site build do their work and name each broken runner on a line of its own.
    for command in (("sync",), ("site", "build", "--out", str(tmp_path / "site"))):
        done = kb(*command)
        problems = [line for line in done.err.splitlines() if line.startswith("problem: runner ")]
        assert done.code == 1 and len(problems) == len(BROKEN) and "Traceback" not in done.err, done.err
    assert (tmp_path / "site" / "index.html").is_file()


def test_throughput_is_samples_over_training_time_across_resume(tmp_path, monkeypatch):
    """kb's throughput from what the loop logs: time between logs counts, evaluation (before
    ``log_epoch``) and saving do not, and a resumed run adds to what its checkpoint holds."""
    import time
    import types

    import kb.runs.context as context

    clock = iter([0.0, 1.0, 3.0, 10.0, 11.0, 20.0, 25.0, 100.0])
    monkeypatch.setattr(context, "time", types.SimpleNamespace(perf_counter=lambda: next(clock), time=time.time,
                                                               monotonic=time.monotonic))
    run = Run(id="r", dir=tmp_path, device="cpu", data_dir=None, seed=0, config=None)
    run.start(total_steps=4)                       # t = 0
    run.log(1, samples=8)                          # t = 1: 1 s of training
    run.log(2, samples=8)                          # t = 3: 2 s
    run.log_epoch(1, accuracy=0.5)                 # t = 10: evaluation, not training
    run.log(3, samples=8)                          # t = 11: 1 s
    run.checkpoint({"step": 3})                    # t = 20: saving, not training
    assert run.throughput == 24 / 4
    run.close()
    resumed = Run(id="r", dir=tmp_path, device="cpu", data_dir=None, seed=0, config=None, resuming=True)
    assert resumed.resume_state() == {"step": 3}
    resumed.start(total_steps=4, step=3)           # t = 25
    resumed.log(4, samples=8)                      # t = 100: 75 s
    assert resumed.throughput == 32 / 79
    resumed.close()
