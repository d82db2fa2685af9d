"""Train the binarized MNIST MLP, pick the epoch on held-out data, export packed bits, check XNOR inference.

Binarized Neural Networks, arXiv:1602.02830: Algorithm 1 (binary forward pass, straight-through
backward pass, ADAM on the real-valued weights, clipping to [-1, 1]) with the Sec. 2.1 protocol:
the test error reported is that of the epoch with the lowest error on the last 10k training images.
"""

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from kb.errors import BadInput
from runners.bnn.config import Config
from runners.bnn.model import BinaryMLP, PackedMLP, as_input, squared_hinge_loss
from runners.common.epochs import epoch_batches, keep_best, restore_training, steps_per_epoch, training_state
from runners.common.evaluate import count_correct
from runners.common.figures import plot_per_epoch
from runners.mnist import data as mnist


def param_groups(model: BinaryMLP, config: Config) -> list[dict]:
    """One group per binary weight matrix with its lr scale (Glorot's coefficient, as in the
    authors' code), one group with scale 1 for the batch norms."""
    groups = []
    for layer in model.binary_linears():
        scale = 1 / math.sqrt(1.5 / (layer.in_features + layer.out_features)) if config.glorot_lr_scale else 1.0
        groups.append({"params": [layer.weight], "lr_scale": scale})
    binary = {id(layer.weight) for layer in model.binary_linears()}
    groups.append({"params": [p for p in model.parameters() if id(p) not in binary], "lr_scale": 1.0})
    return groups


def load(config: Config, data_dir: Path | None) -> mnist.Mnist:
    """The family's MNIST, checked to leave training images once ``validation_size`` is held out."""
    data = mnist.load(config, data_dir)
    if not 0 < config.validation_size < len(data.train_labels):
        raise BadInput(f"validation_size={config.validation_size} must be between 0 and the "
                       f"{len(data.train_labels)} training images")
    return data


def error_rate(model: BinaryMLP, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """Classification error in percent (batch norm with its running statistics, no dropout)."""
    wrong = len(labels) - count_correct(model, images, labels, batch_size=batch_size, prepare=as_input)
    return 100.0 * wrong / len(labels)


def export(model: BinaryMLP, test_images: torch.Tensor, test_labels: torch.Tensor, run) -> dict[str, float]:
    """Pack the binary weights into ``run.dir``, run XNOR-popcount inference on the test images,
    and compare its predictions with the float simulation's."""
    packed = PackedMLP.from_model(model)
    arrays = packed.arrays()
    path = run.dir / "bnn_packed.npz"
    np.savez(path, **arrays)
    packed_bytes = sum(a.nbytes for a in arrays.values())
    # float32 size of the same run-time parameters: weights, batch norm scales, shifts and statistics
    float_bytes = 4 * sum(t.numel() for name, t in model.state_dict().items()
                          if not name.endswith("num_batches_tracked"))
    pixels = test_images.reshape(len(test_images), -1).cpu().numpy()
    started = time.perf_counter()
    xnor = packed.predict(pixels)
    xnor_seconds = time.perf_counter() - started
    cpu_model = copy.deepcopy(model).cpu().eval()
    with torch.no_grad():
        simulated = cpu_model(as_input(test_images.cpu())).argmax(1).numpy()
    labels = test_labels.cpu().numpy()
    run.record(packed_file=path.name, packed_bytes=packed_bytes, float32_bytes=float_bytes,
               xnor_images_per_s=round(len(labels) / xnor_seconds, 1),
               xnor_float_disagreements=int((xnor != simulated).sum()))
    return {"xnor_test_error": 100.0 * float((xnor != labels).mean()),
            "xnor_agreement": 100.0 * float((xnor == simulated).mean()),
            "memory_ratio": float_bytes / packed_bytes}


def main(config: Config, run) -> dict[str, float]:
    device = torch.device(run.device)
    data = load(config, run.data_dir)
    mnist.record_dataset(run, data)
    fit = len(data.train_labels) - config.validation_size
    steps = steps_per_epoch(fit, config.batch_size, drop_last=True)  # whole batches: batch norm needs > 1 example
    if steps == 0:
        raise BadInput(f"{fit} training images (after holding out {config.validation_size}) "
                       f"make no batch of {config.batch_size}")
    images, labels = data.train_images.to(device), data.train_labels.to(device).long()
    fit_images, fit_labels = images[:fit], labels[:fit]
    val_images, val_labels = images[fit:], labels[fit:]
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device).long()

    model = BinaryMLP.from_config(config).to(device)
    optimizer = torch.optim.Adam(param_groups(model, config), lr=config.lr_start)
    decay = (config.lr_end / config.lr_start) ** (1 / config.epochs)
    run.record(parameters=sum(p.numel() for p in model.parameters()),
               binary_weights=sum(layer.weight.numel() for layer in model.binary_linears()))

    fresh = {"val_error": math.inf, "epoch": 0, "test_error": math.nan, "model": None}
    epoch0, batch0, history, best = restore_training(run, model, optimizer, fresh)

    def snapshot(epoch: int, batch: int) -> dict:
        return training_state(model, optimizer, epoch=epoch, batch=batch, history=history, best=best)

    run.start(total_steps=steps * config.epochs, epochs=config.epochs, step=epoch0 * steps + batch0)
    binary_weights = [layer.weight for layer in model.binary_linears()]
    for epoch in range(epoch0, config.epochs):
        lr = config.lr_start * decay ** epoch
        for group in optimizer.param_groups:
            group["lr"] = lr * group["lr_scale"]
        for batch, index in epoch_batches(run, epoch, size=fit, batch_size=config.batch_size, drop_last=True,
                                          first=batch0 if epoch == epoch0 else 0, snapshot=snapshot, device=device):
            loss = squared_hinge_loss(model(as_input(fit_images[index])), fit_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():  # Algorithm 1: real-valued weights stay in [-1, 1]
                for weight in binary_weights:
                    weight.clamp_(-1, 1)
            run.log(epoch * steps + batch + 1, epoch=epoch + 1, samples=len(index), loss=loss.item(), lr=lr)
        val_error = error_rate(model, val_images, val_labels, config.eval_batch_size)
        test_error = error_rate(model, test_images, test_labels, config.eval_batch_size)
        best = keep_best(best, model, epoch=epoch + 1, on="val_error", val_error=val_error, test_error=test_error)
        history.append({"epoch": epoch + 1, "val_error": val_error, "epoch_test_error": test_error})
        run.log_epoch(epoch + 1, val_error=val_error, epoch_test_error=test_error, test_error=best["test_error"])
        run.checkpoint(snapshot(epoch + 1, 0))

    curves = [("val_error", "validation (held-out training images)", "-"), ("epoch_test_error", "test", "-")]
    plot_per_epoch(history, curves, ylabel="error (%)", title="Binarized MLP on MNIST",
                   path=run.figures_dir / "error.png")
    model.load_state_dict(best["model"])
    run.record(best_epoch=best["epoch"], best_val_error=best["val_error"])
    return {"test_error": best["test_error"], **export(model, test_images, test_labels, run)}
