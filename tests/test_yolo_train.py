"""The YOLOv1 runner end to end: smoke training through main(), schedule, backbone (interrupt and resume:
tests/test_runner_registry.py)."""

import json
import random
import time
from dataclasses import replace

import numpy as np
import pytest
import torch

from kb.errors import BadInput
from kb.runs.config import resolve
from kb.runs.context import Run, load_checkpoint
from runners.detection.data import batches, generated_data
from runners.detection.train import checkpoint_due, learning_rate, make_optimizer, train_step
from runners.yolo import RUNNER
from runners.yolo.config import PAPER
from runners.yolo.model import YOLO
from runners.yolo.train import as_detector, load_backbone, main


def _run(tmp_path, overrides=(), resuming=False, name="run", data_dir=None):
    _, config = resolve(RUNNER, "smoke", list(overrides))
    torch.manual_seed(0), random.seed(0), np.random.seed(0)
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    return config, Run(id=name, dir=folder, device="cpu", data_dir=data_dir, seed=0, config=config, resuming=resuming)


def test_smoke_preset_trains_evaluates_and_checkpoints(tmp_path):
    config, run = _run(tmp_path)
    final = main(config, run)
    run.close()
    assert set(final) == {"map", "map_allpoint", "test_loss", "fps", "fps_batch64"}
    assert all(np.isfinite(v) for v in final.values()) and final["fps"] > 0
    assert run.dataset.name == "generated-shapes" and run.dataset.synthetic
    assert run.info["backbone_pretrained"] is False and run.info["parameters"] > 0
    assert set(run.info["ap_per_class"]) <= {"circle", "square", "triangle", "cross"}
    assert [m["epoch"] for m in run.epoch_metrics] == [1, 2]  # smoke evaluates every epoch
    assert (run.dir / "figures" / "training.png").is_file()
    state = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert (state["epoch"], state["batches_done"], state["step"]) == (2, 0, 6)  # 48 images / 16 per batch
    rows = (run.dir / "metrics.csv").read_text().splitlines()
    assert sum(",loss," in r for r in rows) == 6 and sum(",map," in r for r in rows) == 2


def test_yolo_folder_decoded_on_the_fly(tmp_path):
    from PIL import Image

    for i in range(10):
        (tmp_path / "data" / "images").mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / "labels").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (96, 64), (20 * i, 90, 200)).save(tmp_path / "data" / "images" / f"{i}.png")
        (tmp_path / "data" / "labels" / f"{i}.txt").write_text(f"{i % 2} 0.5 0.5 0.4 0.6\n")
    config, run = _run(tmp_path, ["cache_gb=0", "epochs=1", "batch_size=4"], data_dir=tmp_path / "data")
    final = main(config, run)
    run.close()
    assert run.dataset.name == "yolo-folder:data" and not run.dataset.synthetic
    assert "every 5th image" in run.dataset.detail and run.info["test_images"] == 2
    assert np.isfinite(final["test_loss"])


def test_learning_rate_schedule_of_section_2_2():
    # 135 steps stand for 135 epochs: warm-up over 5, 1e-2 until 75, 1e-3 until 105, then 1e-4.
    lr = [learning_rate(step, 135, PAPER) for step in range(135)]
    assert lr[0] == pytest.approx(1e-3) and lr[2] == pytest.approx(1e-3 + 9e-3 * 2 / 5)
    assert lr[5] == lr[74] == pytest.approx(1e-2)
    assert lr[75] == lr[104] == pytest.approx(1e-3)
    assert lr[105] == lr[134] == pytest.approx(1e-4)
    # Scaled with the length of training.
    assert learning_rate(27, 54, PAPER) == pytest.approx(1e-2) and learning_rate(30, 54, PAPER) == pytest.approx(1e-3)


def test_backbone_weights(tmp_path):
    config = replace(PAPER, arch="fast", image_size=64, width=0.125, hidden=16, batch_norm=True)
    source = YOLO(config, 4)
    path = tmp_path / "backbone.pt"
    torch.save({k: v for k, v in source.features.state_dict().items() if k.startswith(("0.", "1."))}, path)
    target = YOLO(config, 4)
    assert load_backbone(target, str(path)) is True
    assert torch.equal(target.features[0].weight, source.features[0].weight)
    assert not torch.equal(target.features[4].weight, source.features[4].weight)  # only what the file holds
    assert load_backbone(target, "") is False

    torch.save({"0.weight": torch.zeros(3, 3, 3, 3)}, path)
    with pytest.raises(BadInput, match=r"0.weight has shape \(3, 3, 3, 3\), this model needs \(2, 3, 3, 3\)"):
        load_backbone(target, str(path))
    torch.save({"head.0.weight": torch.zeros(1)}, path)
    with pytest.raises(BadInput, match="are not conv-layer keys"):
        load_backbone(target, str(path))
    path.write_text(json.dumps({"not": "a state dict"}))
    with pytest.raises(BadInput, match="cannot be loaded as a state_dict"):
        load_backbone(target, str(path))
    with pytest.raises(BadInput, match="no such file"):
        load_backbone(target, str(tmp_path / "missing.pt"))


@pytest.mark.parametrize("override, complaint", [
    ("image_size=100", "image_size=100: must be a multiple of 64"),
    ("batch_size=0", "batch_size=0: must be at least 1"),
    ("grid=0", "grid=0: must be at least 1"),
    ("arch=resnet", "arch='resnet': expected one of 'yolo', 'fast'"),
    ("dropout=1", "dropout=1.0: must be less than 1"),
    ("decay_fractions=0.5,1.5", "decay_fractions=1.5: must be at most 1"),
    ("width=0", "width=0.0: must be greater than 0"),
])
def test_a_config_out_of_range_is_refused_before_any_run(override, complaint):
    with pytest.raises(BadInput) as caught:
        resolve(RUNNER, "smoke", [override])
    assert str(caught.value).startswith(complaint)


def test_a_set_kept_on_the_device_trains_exactly_like_the_loader():
    """The GPU path (whole set moved by DetectionSet.to, batches gathered there) changes no number: here
    it is exercised on the CPU, against the DataLoader path, over three SGD steps."""
    _, config = resolve(RUNNER, "smoke", [])
    data = generated_data(config)
    moved = data.train.to(torch.device("cpu"))
    assert moved.on_device and not data.train.on_device
    plan = [[5, 0, 17, 3], [40, 41, 2, 9], [1, 30, 22, 47]]
    for (a_img, a_box, a_lab), (b_img, b_box, b_lab) in zip(batches(data.train, plan, 0, False), batches(moved, plan, 0, False)):
        assert torch.equal(a_img, b_img)
        assert b_lab.shape[1] >= a_lab.shape[1] and (b_lab[:, a_lab.shape[1]:] == -1).all()
        assert torch.equal(a_lab, b_lab[:, : a_lab.shape[1]]) and torch.equal(a_box, b_box[:, : a_box.shape[1]])

    def train(dataset):
        torch.manual_seed(0)
        model = YOLO(config, dataset.num_classes)
        optimizer = make_optimizer(model, config)
        loss = as_detector(model, config).loss
        losses = [train_step(model, optimizer, batch, torch.Generator().manual_seed(i), config, torch.device("cpu"),
                             loss=loss, amp=False, memory_format=torch.contiguous_format)
                  for i, batch in enumerate(batches(dataset, plan, 0, False))]
        return torch.stack([torch.stack(list(step.values())) for step in losses]), model.state_dict()

    (loader_losses, loader_state), (moved_losses, moved_state) = train(data.train), train(moved)
    torch.testing.assert_close(moved_losses, loader_losses, rtol=1e-6, atol=1e-6)
    for key, value in loader_state.items():
        torch.testing.assert_close(moved_state[key], value, rtol=1e-6, atol=1e-6)


def test_checkpoint_cadence_keeps_saving_cheap():
    assert checkpoint_due(since_last=5.0, last_save=0.0, minutes=10)  # nothing saved yet: save, and time it
    assert checkpoint_due(since_last=5.0, last_save=0.1, minutes=10)  # a small model: every epoch
    assert not checkpoint_due(since_last=100.0, last_save=4.0, minutes=10)  # 1.9 GB in 4 s: every 200 s
    assert checkpoint_due(since_last=200.0, last_save=4.0, minutes=10)
    assert checkpoint_due(since_last=600.0, last_save=60.0, minutes=10)  # at least every `minutes`
    assert not checkpoint_due(since_last=599.0, last_save=60.0, minutes=10)


@pytest.mark.parametrize(("minutes", "saves"), [(10.0, [1, 3]), (1e-9, [1, 2, 3])])
def test_a_slow_save_is_skipped_until_due_and_the_last_epoch_always_saves(tmp_path, minutes, saves):
    config, run = _run(tmp_path, [f"checkpoint_minutes={minutes}", "epochs=3"])
    save, saved = run.checkpoint, []

    def slow_save(state):  # 0.2 s: the next save is due 10 s later (unless `minutes` is shorter)
        saved.append(state["epoch"])
        time.sleep(0.2)
        return save(state)

    run.checkpoint = slow_save
    main(config, run)
    run.close()
    assert saved == saves
