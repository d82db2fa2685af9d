"""The kervolution runner end to end through main() on small MNIST files, plus interrupt/resume."""

import json

import pytest
import torch

from kb.errors import KBError
from kb.runs.config import resolve
from runners.kervolution import RUNNER
from runners.kervolution.train import main
from tests.test_mnist_data import new_run, smoke_through_cli, whole_and_resumed, write_mnist


def test_presets_resolve_and_first_is_default():
    assert RUNNER.presets[0] == "default"
    for name in RUNNER.presets:
        resolve(RUNNER, name)


def test_smoke_end_to_end(tmp_path):
    write_mnist(tmp_path / "mnist")
    _, config = resolve(RUNNER, "smoke")
    run = new_run(tmp_path / "run", tmp_path / "mnist", config)
    final = main(config, run)
    run.close()
    assert set(final) == {"test_accuracy", "baseline_test_accuracy", "accuracy_gain", "mean_accuracy_gain", "images_per_s"}
    assert 0 <= final["test_accuracy"] <= 100 and final["images_per_s"] > 0
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


def test_interrupted_then_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    write_mnist(tmp_path / "mnist", n_train=192, n_test=64)
    _, config = resolve(RUNNER, "smoke", ["epochs=2", "lr=0.05"])
    # stopping after step 9 interrupts the second epoch
    (expected, whole), (got, resumed) = whole_and_resumed(main, config, tmp_path, stop_after=9)
    for key in ("test_accuracy", "baseline_test_accuracy"):
        assert got[key] == expected[key]
    final_weights = torch.load(tmp_path / "split" / "checkpoints" / "last.pt", weights_only=True)["models"]
    reference_weights = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=True)["models"]
    for name in reference_weights:
        for key, value in reference_weights[name].items():
            assert torch.equal(final_weights[name][key], value), (name, key)
    assert json.dumps(resumed.epoch_metrics[-1]) == json.dumps(whole.epoch_metrics[-1])


def test_smoke_through_kb_reproduce_with_the_shipped_claims(kb, kb_env, tmp_path):
    run = smoke_through_cli(kb, kb_env, tmp_path, "kervolution", "kervolution")
    assert run["verdict"] == "not comparable"          # 128 test images are not the paper's 10k
    assert {v["metric"] for v in run["verdicts"]} == {"accuracy_gain", "mean_accuracy_gain"}
    assert all("mnist-test-subset" in v["reason"] for v in run["verdicts"])
