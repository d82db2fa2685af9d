"""The classification family's loop and augmentation: the crop-and-flip against a direct reference, the
learning-rate schedules at hand-computed steps, top-1/top-5 counting, validation-epoch selection,
sub-network evaluation, divergence, and the file-backed ImageNet path resuming exactly."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kb.errors import KBError
from kb.runs.context import Run
from runners.classification.augment import (
    crop_flip,
    crop_flip_draws,
    random_resized_box,
)
from runners.classification.config import Config
from runners.classification.train import evaluate, fit, learning_rate
from tests.test_classification_data import write_imagenet


def tiny_net(classes: int = 10) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, classes))


def new_run(path: Path, config, data_dir=None, resuming=False) -> Run:
    path.mkdir(parents=True, exist_ok=True)
    return Run(id=path.name, dir=path, device="cpu", data_dir=data_dir, seed=0, config=config, resuming=resuming)


GENERATED = Config(dataset="generated", epochs=2, batch_size=16, generated_train=64, generated_test=32,
                   generated_size=8, eval_batch_size=32, log_every=1)


def test_crop_flip_matches_padding_cropping_and_mirroring_each_image():
    images = torch.randn(6, 3, 5, 7)
    draws = crop_flip_draws(6, torch.Generator().manual_seed(1), pad=2)
    draws[0] = torch.tensor([0, 4, 1])  # a corner crop, flipped
    draws[1] = torch.tensor([2, 2, 0])  # the identity
    out = crop_flip(images, draws, pad=2)
    for i, (top, left, flip) in enumerate(draws.tolist()):
        padded = np.pad(images[i].numpy(), ((0, 0), (2, 2), (2, 2)))
        expected = padded[:, top:top + 5, left:left + 7]
        if flip:
            expected = expected[:, :, ::-1]
        assert np.array_equal(out[i].numpy(), expected), i
    assert torch.equal(out[1], images[1])


def test_crop_flip_draws_cover_the_offsets_and_repeat_from_a_seed():
    draws = crop_flip_draws(4000, torch.Generator().manual_seed(5))
    assert set(draws[:, 0].tolist()) == set(range(9)) and set(draws[:, 2].tolist()) == {0, 1}
    assert 0.45 < draws[:, 2].float().mean() < 0.55
    assert torch.equal(draws, crop_flip_draws(4000, torch.Generator().manual_seed(5)))


def test_random_resized_box_stays_inside_with_the_allowed_area_and_aspect():
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        left, top, right, bottom = random_resized_box(500, 375, generator)
        assert 0 <= left < right <= 500 and 0 <= top < bottom <= 375
        area, aspect = (right - left) * (bottom - top) / (500 * 375), (right - left) / (bottom - top)
        assert 0.08 - 0.01 <= area <= 1.0 and 3 / 4 - 0.02 <= aspect <= 4 / 3 + 0.02


def test_step_schedule_divides_by_ten_at_half_and_three_quarters_of_the_epochs():
    config = Config()  # DenseNet Sec. 4.2: 300 epochs, lr 0.1, /10 at 50% and 75%
    steps = 782  # ceil(50000 / 64)
    assert learning_rate(config, 150 * steps - 1, steps) == pytest.approx(0.1)
    assert learning_rate(config, 150 * steps, steps) == pytest.approx(0.01)
    assert learning_rate(config, 225 * steps - 1, steps) == pytest.approx(0.01)
    assert learning_rate(config, 225 * steps, steps) == pytest.approx(0.001)
    imagenet = replace(config, epochs=90, lr_milestones=(30 / 90, 60 / 90))
    assert learning_rate(imagenet, 30 * 10 - 1, 10) == pytest.approx(0.1)
    assert learning_rate(imagenet, 60 * 10, 10) == pytest.approx(0.001)


def test_cosine_poly_and_warmup_schedules():
    cosine = Config(schedule="cosine", epochs=10)
    assert learning_rate(cosine, 0, 100) == pytest.approx(0.1)
    assert learning_rate(cosine, 500, 100) == pytest.approx(0.05)
    assert learning_rate(cosine, 750, 100) == pytest.approx(0.1 * (1 + np.cos(0.75 * np.pi)) / 2)
    poly = Config(schedule="poly", epochs=10)
    assert learning_rate(poly, 250, 100) == pytest.approx(0.075)
    warm = Config(schedule="cosine", epochs=10, warmup_epochs=2)
    assert learning_rate(warm, 0, 100) == pytest.approx(0.01)
    assert learning_rate(warm, 100, 100) == pytest.approx(0.055)
    assert learning_rate(warm, 200, 100) == pytest.approx(0.1)
    assert learning_rate(warm, 600, 100) == pytest.approx(0.05)  # halfway through the 800 steps after it


class FixedScores(nn.Module):
    """Scores read from a table: image i (its first pixel holds i) gets row i."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.table[x[:, 0, 0, 0].round().long()]


def test_top1_and_top5_errors_are_counted_per_image():
    classes = 8
    table = torch.arange(classes, dtype=torch.float32).repeat(4, 1)  # class 7 first, then 6, 5, 4, 3 ...
    labels = torch.tensor([7, 3, 2, 5])  # top-1 right for image 0 only; top-5 (7..3) right for 0, 1, 3
    images = torch.arange(4, dtype=torch.uint8).view(4, 1, 1, 1).expand(4, 3, 2, 2).contiguous()
    config = Config(eval_batch_size=3)
    top1, top5 = evaluate(FixedScores(table), images, labels, config, torch.device("cpu"),
                          prepare=lambda x: x.float(), amp=False)
    assert top1 == pytest.approx(75.0) and top5 == pytest.approx(25.0)


def test_validation_split_reports_the_test_error_of_the_best_validation_epoch(tmp_path):
    config = replace(GENERATED, epochs=4, validation_size=16)
    run = new_run(tmp_path / "run", config)
    torch.manual_seed(0)
    final = fit(config, run, tiny_net(), subnetworks={"same": lambda model: model})
    history = run.epoch_metrics
    best = min(history, key=lambda h: h["val_error"])
    assert final["best_epoch"] == best["epoch"] and final["test_error"] == best["test_error"]
    assert final["val_error"] == best["val_error"]
    # A "sub-network" that is the model itself is evaluated exactly like the model, every epoch.
    assert all(h["same_test_error"] == h["test_error"] for h in history)
    assert run.info["validation_images"] == 16 and run.info["train_images"] == 48
    assert (run.figures_dir / "error.png").is_file()


def test_a_loss_that_stops_being_finite_is_one_error(tmp_path):
    model = tiny_net()
    with torch.no_grad():
        model[-1].weight.fill_(float("nan"))
    with pytest.raises(KBError, match="diverged at step 1"):
        fit(GENERATED, new_run(tmp_path / "run", GENERATED), model)


def test_imagenet_files_train_with_top5_and_resume_exactly(tmp_path):
    from tests.test_runner_registry import whole_and_resumed

    write_imagenet(tmp_path / "imagenet", per_class=4)
    config = Config(dataset="imagenet", image_size=16, epochs=2, batch_size=4, eval_batch_size=4, workers=0,
                    log_every=1)

    def main(config, run):
        return fit(config, run, tiny_net(3))

    (expected, whole), (got, resumed) = whole_and_resumed(main, config, tmp_path, tmp_path / "imagenet")
    assert got == expected and set(expected) == {"train_loss", "test_error", "top5_error"}
    assert expected["top5_error"] == 0.0  # three classes: every label is in the top five
    assert whole.dataset.name == "imagenet-val-subset" and "random-resized crop" in whole.info["augmentation"]
    assert resumed.epoch_metrics[-1] == whole.epoch_metrics[-1]
