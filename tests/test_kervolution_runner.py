"""The kervolution runner end to end through main() on small MNIST files (interrupt and resume:
tests/test_runner_registry.py)."""


import pytest

from kb.errors import KBError
from kb.runs.config import resolve
from runners.kervolution import RUNNER
from runners.kervolution.train import main
from tests.test_mnist_data import smoke_through_cli, write_mnist
from tests.test_runner_registry import new_run


def test_smoke_end_to_end(tmp_path):
    write_mnist(tmp_path / "mnist")
    _, config = resolve(RUNNER, "smoke")
    run = new_run(tmp_path / "run", tmp_path / "mnist", config)
    final = main(config, run)
    run.close()
    assert set(final) == {"test_accuracy", "baseline_test_accuracy", "accuracy_gain", "mean_accuracy_gain"}
    assert 0 <= final["test_accuracy"] <= 100 and run.throughput > 0
    assert run.dataset.name == "mnist-test-subset" and not run.dataset.synthetic
    assert (run.figures_dir / "convergence.png").stat().st_size > 0
    assert len(run.info["learned_cp"]) == 2
    assert run.epoch_metrics[-1]["test_accuracy"] == final["test_accuracy"]


def test_missing_data_is_a_clear_error(tmp_path):
    _, config = resolve(RUNNER, "smoke")
    run = new_run(tmp_path / "run", tmp_path / "nowhere", config)
    with pytest.raises(KBError, match="train-images-idx3-ubyte"):
        main(config, run)
    run.close()


def test_smoke_through_kb_reproduce_with_the_shipped_claims(kb, kb_env, tmp_path):
    run = smoke_through_cli(kb, kb_env, tmp_path, "kervolution", "kervolution")
    assert run["verdict"] == "not comparable"          # 128 test images are not the paper's 10k
    assert {v["metric"] for v in run["verdicts"]} == {"accuracy_gain", "mean_accuracy_gain"}
    assert all("mnist-test-subset" in v["reason"] for v in run["verdicts"])
