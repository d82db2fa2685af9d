"""Train a PixelRNN on binary MNIST, choose the epoch on held-out images, report the test NLL, draw samples.

Pixel Recurrent Neural Networks, arXiv:1601.06759: maximum likelihood with RMSProp and minibatches of 16
(Sec. 5.2); the NLL is -log p(x) in nats per image, summed over the 784 Bernoulli pixels and averaged
over the test set (Sec. 5.1, Sec. 5.5). The test NLL reported is that of the epoch with the lowest NLL on
the held-out validation images.
"""

import math

import numpy as np
import torch

from runners.common.epochs import epoch_batches, keep_best, restore_training, steps_per_epoch, training_state
from runners.common.figures import plot_per_epoch
from runners.pixelrnn.config import Config
from runners.pixelrnn.data import load, record_dataset
from runners.pixelrnn.model import PixelRNN, nll_nats, sample


@torch.no_grad()
def mean_nll(model: PixelRNN, images: torch.Tensor, batch_size: int) -> float:
    """Average -log p(x) in nats over ``images`` (N, 1, 28, 28)."""
    model.eval()
    total = 0.0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size]
        total += nll_nats(model(batch), batch).sum().item()
    model.train()
    return total / len(images)


def grid(images: torch.Tensor, gap: int = 1) -> np.ndarray:
    """Binary images (N, 1, H, W) as one uint8 picture, white strokes on black, in rows of ceil(sqrt(N)),
    separated by ``gap`` grey pixels."""
    count, _, height, width = images.shape
    cols = math.ceil(math.sqrt(count))
    rows = math.ceil(count / cols)
    picture = np.full((rows * (height + gap) + gap, cols * (width + gap) + gap), 128, dtype=np.uint8)
    for k, image in enumerate(images[:, 0].cpu().numpy()):
        top, left = gap + (k // cols) * (height + gap), gap + (k % cols) * (width + gap)
        picture[top:top + height, left:left + width] = (image * 255).astype(np.uint8)
    return picture


def main(config: Config, run) -> dict[str, float]:
    device = torch.device(run.device)
    data = load(config, run.data_dir)
    record_dataset(run, data, config.validation_size)
    fit = len(data.train) - config.validation_size
    steps = steps_per_epoch(fit, config.batch_size, drop_last=False)
    fit_images, val_images = data.train[:fit].to(device), data.train[fit:].to(device)
    test_images = data.test.to(device)

    model = PixelRNN.from_config(config).to(device)
    optimizer = torch.optim.RMSprop(model.parameters(), lr=config.lr)
    run.record(parameters=sum(p.numel() for p in model.parameters()), model=config.model, layers=config.layers,
               hidden=config.hidden, optimizer=f"RMSprop lr={config.lr:g}", batch_size=config.batch_size)

    fresh = {"val_nll": math.inf, "epoch": 0, "test_nll": math.nan, "model": None}
    epoch0, batch0, history, best = restore_training(run, model, optimizer, fresh)

    def snapshot(epoch: int, batch: int) -> dict:
        return training_state(model, optimizer, epoch=epoch, batch=batch, history=history, best=best)

    run.start(total_steps=steps * config.epochs, epochs=config.epochs, step=epoch0 * steps + batch0)
    for epoch in range(epoch0, config.epochs):
        for batch, index in epoch_batches(run, epoch, size=fit, batch_size=config.batch_size, drop_last=False,
                                          first=batch0 if epoch == epoch0 else 0, snapshot=snapshot, device=device):
            images = fit_images[index]
            loss = nll_nats(model(images), images).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            run.log(epoch * steps + batch + 1, epoch=epoch + 1, samples=len(index), loss=loss.item())
        val_nll = mean_nll(model, val_images, config.eval_batch_size)
        test_nll = mean_nll(model, test_images, config.eval_batch_size)
        best = keep_best(best, model, epoch=epoch + 1, on="val_nll", val_nll=val_nll, test_nll=test_nll)
        history.append({"epoch": epoch + 1, "val_nll_nats": val_nll, "epoch_test_nll_nats": test_nll})
        run.log_epoch(epoch + 1, val_nll_nats=val_nll, epoch_test_nll_nats=test_nll, nll_nats=best["test_nll"])
        run.checkpoint(snapshot(epoch + 1, 0))

    curves = [("val_nll_nats", "validation (held-out training images)", "-"), ("epoch_test_nll_nats", "test", "-")]
    plot_per_epoch(history, curves, ylabel="NLL (nats per image)", title=f"{config.model} on binary MNIST",
                   path=run.figures_dir / "nll.png")
    model.load_state_dict(best["model"])
    run.record(best_epoch=best["epoch"], best_val_nll_nats=best["val_nll"])
    if config.samples:
        drawn = sample(model.eval(), config.samples, torch.Generator().manual_seed(run.seed))
        run.image("samples", grid(drawn))
        run.image("binarized test images", grid(test_images[:config.samples]))
    return {"nll_nats": best["test_nll"], "nll_bits_per_dim": best["test_nll"] / (784 * math.log(2)),
            "val_nll_nats": best["val_nll"]}
