"""The classification family's training loop, one for every network of the family (as torchvision's
references/classification serves every model): the data of ``data.py``, the augmentation of
``augment.py``, SGD with the papers' momentum / Nesterov, weight decay and learning-rate schedule,
top-1 (and on ImageNet top-5) test error every epoch, and checkpoints a resumed run continues exactly.

A paper folder builds its network and calls ``fit(config, run, model)``. The defaults follow DenseNet's
CIFAR recipe (arXiv 1608.06993 Sec. 4.2), which ResNeXt, Stochastic Depth and RoR share up to the
schedule's numbers; with a validation split the test error is reported at the epoch of the lowest
validation error (Stochastic Depth, arXiv 1603.09382 Sec. 4).

Speed (a 300-epoch CIFAR run is the real use): the uint8 dataset is kept on the GPU when it fits and
each batch is a gather there; normalisation and the crop-and-flip run on the GPU as one batched
operation; bf16 autocast, channels_last and torch.compile on CUDA (config flags).
"""

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from kb.errors import KBError
from runners.classification.augment import (
    FileBatches,
    crop_flip,
    crop_flip_draws,
    normalise,
)
from runners.classification.data import ClassificationData, ImageFiles, load
from runners.common.epochs import epoch_batches, epoch_order, steps_per_epoch
from runners.common.figures import plot_per_epoch

Subnetworks = dict[str, Callable[[torch.nn.Module], torch.nn.Module]]


def learning_rate(config, step: int, steps: int) -> float:
    """The rate at ``step`` (0-based) with ``steps`` per epoch.

    A linear warm-up from lr / 10 over ``warmup_epochs``, then: ``step``, lr times ``lr_decay`` for each
    milestone reached, milestones being shares of the epochs (DenseNet: /10 at 50% and 75%, Sec. 4.2),
    changed at epoch boundaries as the papers' code does; ``cosine``, half a cosine from lr to 0 over the
    steps after the warm-up; ``poly``, a straight line from lr to 0.
    """
    warmup = config.warmup_epochs * steps
    if step < warmup:
        return config.lr / 10 + (config.lr - config.lr / 10) * step / warmup
    if config.schedule == "step":
        epoch = step // steps
        return config.lr * config.lr_decay ** sum(epoch >= round(m * config.epochs) for m in config.lr_milestones)
    progress = (step - warmup) / max(1, steps * config.epochs - warmup)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (1 - progress)


def make_optimizer(model: torch.nn.Module, config) -> torch.optim.SGD:
    """SGD with the config's momentum (Nesterov when set) and weight decay on every parameter, as the
    family's papers' Torch code applies it (fb.resnet.torch); one fused kernel on CUDA."""
    cuda = next(model.parameters()).device.type == "cuda"
    return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0, weight_decay=config.weight_decay,
                           **({"fused": True} if cuda else {}))


def prepare_batch(images: torch.Tensor, draws: torch.Tensor | None, mean: torch.Tensor, std: torch.Tensor,
                  memory_format: torch.memory_format) -> torch.Tensor:
    """uint8 images -> the network's input: normalised, crop-and-flipped when ``draws`` are given."""
    x = normalise(images, mean, std)
    if draws is not None:
        x = crop_flip(x, draws)
    return x.contiguous(memory_format=memory_format)


def train_step(network: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor, draws: torch.Tensor | None, *,
               prepare: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor], amp: bool) -> torch.Tensor:
    """One SGD step on a batch already on the device: the input pipeline (``prepare(images, draws)``), the
    forward pass (bfloat16 autocast if ``amp``), cross-entropy, backward, update. Returns the loss, not synced."""
    with torch.autocast(images.device.type, dtype=torch.bfloat16, enabled=amp):
        scores = network(prepare(images, draws))
    loss = F.cross_entropy(scores.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _loader(files: ImageFiles, plan: list[list[int]], dataset: FileBatches, workers: int, pin: bool):
    """Decoded batches of ``plan`` (lists of indices), ``workers`` processes decoding JPEGs ahead."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=plan, num_workers=workers,
                                       pin_memory=pin, generator=torch.Generator())


def eval_batches(images, labels: torch.Tensor, config, device: torch.device):
    """(uint8 images, labels) of a split in order: slices of in-memory tensors, or decoded files."""
    if isinstance(images, torch.Tensor):
        for start in range(0, len(labels), config.eval_batch_size):
            yield images[start:start + config.eval_batch_size], labels[start:start + config.eval_batch_size]
        return
    plan = [list(range(s, min(s + config.eval_batch_size, len(images))))
            for s in range(0, len(images), config.eval_batch_size)]
    dataset = FileBatches(images, config.image_size, train=False)
    yield from _loader(images, plan, dataset, config.workers, device.type == "cuda")


@torch.no_grad()
def evaluate(network: torch.nn.Module, images, labels: torch.Tensor, config, device: torch.device, *,
             prepare: Callable[[torch.Tensor], torch.Tensor], amp: bool) -> tuple[float, float]:
    """Top-1 and top-5 error (%) of ``network`` in eval mode on a split; back in training mode after."""
    network.eval()
    wrong1 = torch.zeros((), dtype=torch.int64, device=device)
    wrong5 = torch.zeros((), dtype=torch.int64, device=device)
    for x, y in eval_batches(images, labels, config, device):
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            scores = network(prepare(x))
        top = scores.float().topk(min(5, scores.shape[1]), dim=1).indices
        wrong1 += (top[:, 0] != y).sum()
        wrong5 += (~(top == y[:, None]).any(1)).sum()
    network.train()
    return 100.0 * wrong1.item() / len(labels), 100.0 * wrong5.item() / len(labels)


def keep_on_gpu(data: ClassificationData, device: torch.device, run) -> ClassificationData:
    """The data with its uint8 tensors on the GPU when they take at most half its free memory."""
    from dataclasses import replace

    if not data.decoded:
        return data
    splits = ("train_images", "train_labels", "test_images", "test_labels", "val_images", "val_labels")
    need = sum(getattr(data, s).nbytes for s in splits if getattr(data, s) is not None)
    free, _ = torch.cuda.mem_get_info(device)
    if need > free // 2:
        run.note(f"data: {need / 1e9:.1f} GB is more than half the GPU's free memory; batches are copied each step")
        return data
    run.note(f"data: {need / 1e9:.2f} GB of uint8 images kept on the GPU")
    return replace(data, **{s: getattr(data, s).to(device) for s in splits if getattr(data, s) is not None})


def augmentation(config, data: ClassificationData) -> str:
    """The augmentation the run applies, in words (recorded with the run)."""
    if not data.decoded:
        return "random-resized crop 224 (8-100% area, aspect 3/4-4/3) + flip; eval: resize 256, centre crop 224" \
            if config.augment else "none; eval: resize 256, centre crop 224"
    if config.augment and not data.name.startswith("svhn"):
        return "4-px zero-padded random 32x32 crop + horizontal flip (the papers' '+')"
    return "none" + (" (SVHN: the papers train it without augmentation)" if config.augment else "")


def plot_errors(history: list[dict], path) -> None:
    """Test (and validation, sub-network) error per epoch."""
    names = [k for k in history[0] if k.endswith("_error") and k != "top5_error"]
    curves = [(k, k.removesuffix("_error").replace("_", " "), "o-" if k == "test_error" else "s--") for k in names]
    plot_per_epoch(history, curves, ylabel="error (%)", title="top-1 error per epoch", path=path)


def fit(config, run, model: torch.nn.Module, *, subnetworks: Subnetworks | None = None,
        data: ClassificationData | None = None) -> dict[str, float]:
    """Train ``model`` on the config's data with the family's loop and return the final metrics.

    Args:
        config: a family ``Config`` (or a runner's extension of it).
        run: the kb run.
        model: the network: normalised float images (B, 3, H, W) in, class scores out.
        subnetworks: name -> a function building a sub-network from the trained model (e.g. FractalNet's
            deepest column); each is evaluated on the test set every epoch exactly like the model.
        data: the data if the runner already loaded it (to size its classifier); else ``load`` is called.

    Returns:
        ``test_error`` (top-1 %, at the best validation epoch when ``validation_size`` > 0, else the last),
        ``top5_error`` (ImageNet), ``val_error`` and ``best_epoch`` (with a validation split), ``train_loss``
        (the mean of that epoch), and ``<name>_test_error`` for each sub-network at that epoch.

    Raises:
        KBError: the loss stopped being finite (diverged).
    """
    device = torch.device(run.device)
    cuda = device.type == "cuda"
    amp, channels_last, compiled = config.amp and cuda, config.channels_last and cuda, config.compile and cuda
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    subnetworks = subnetworks or {}

    data = data if data is not None else load(config, run.data_dir, run=run)
    run.set_dataset(data.name, fingerprint=data.fingerprint, synthetic=data.synthetic, detail=data.detail)
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        if config.data_on_gpu:
            data = keep_on_gpu(data, device, run)
    imagenet = not data.decoded
    augmenting = config.augment and data.decoded and not data.name.startswith("svhn")
    mean = torch.tensor(data.mean, device=device)
    std = torch.tensor(data.std, device=device)

    model.to(device, memory_format=memory_format)
    model.train()
    optimizer = make_optimizer(model, config)
    run.record(parameters=sum(p.numel() for p in model.parameters()), augmentation=augmentation(config, data),
               train_images=len(data.train_labels), test_images=len(data.test_labels),
               validation_images=0 if data.val_labels is None else len(data.val_labels),
               normalisation={"mean": [round(m, 3) for m in data.mean], "std": [round(s, 3) for s in data.std]},
               amp=amp, channels_last=channels_last, compiled=compiled)

    size = len(data.train_labels)
    batch_size = min(config.batch_size, size)
    steps = steps_per_epoch(size, batch_size, drop_last=False)
    epoch0, batch0, history, window, epoch_loss = 0, 0, [], [], [0.0, 0]
    state = run.resume_state()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch0, batch0, history, epoch_loss = state["epoch"], state["batch"], state["history"], state["epoch_loss"]
        window = [(torch.tensor(loss, device=device), count) for loss, count in state["window"]]
    network = torch.compile(model) if compiled else model
    prepare = torch.compile(prepare_batch) if compiled else prepare_batch
    if compiled:
        run.note("torch.compile: the first training and evaluation steps compile the model (a minute or two)")

    def snapshot(epoch: int, batch: int) -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch, "batch": batch,
                "history": history, "epoch_loss": list(epoch_loss),
                "window": [[loss.item(), count] for loss, count in window]}

    def as_input(images: torch.Tensor) -> torch.Tensor:
        return prepare(images, None, mean, std, memory_format)

    run.start(total_steps=steps * config.epochs, epochs=config.epochs, step=epoch0 * steps + batch0)
    saved = time.monotonic()
    for epoch in range(epoch0, config.epochs):
        first = batch0 if epoch == epoch0 else 0
        batches = epoch_batches(run, epoch, size=size, batch_size=batch_size, first=first, drop_last=False,
                                snapshot=snapshot, device=data.train_labels.device)
        if imagenet:
            # The same seeded order, decoded ahead by the workers; epoch_batches still checks for Ctrl-C.
            order = epoch_order(size, run.seed, epoch)
            plan = [order[b * batch_size:(b + 1) * batch_size].tolist() for b in range(first, steps)]
            files = FileBatches(data.train_images, config.image_size, train=config.augment, seed=run.seed, epoch=epoch)
            batches = ((b, x, y) for (b, _), (x, y) in zip(batches, _loader(data.train_images, plan, files,
                                                                             config.workers, cuda)))
        else:
            batches = ((b, data.train_images[i], data.train_labels[i]) for b, i in batches)
        # The epoch's crops and flips, one row per position in its order, drawn from (seed, epoch) alone so a
        # resumed run redraws them exactly, and moved to the device once rather than every step.
        epoch_draws = crop_flip_draws(size, torch.Generator().manual_seed(run.seed * 1_000_003 + epoch)).to(device) \
            if augmenting else None
        for batch, images, labels in batches:
            step = epoch * steps + batch
            lr = learning_rate(config, step, steps)
            for group in optimizer.param_groups:
                group["lr"] = lr
            draws = epoch_draws[batch * batch_size:batch * batch_size + len(labels)] if augmenting else None
            loss = train_step(network, optimizer, images.to(device, non_blocking=True),
                              labels.to(device, non_blocking=True), draws, prepare=lambda x, d: prepare(
                                  x, d, mean, std, memory_format), amp=amp)
            window.append((loss, len(labels)))
            if (step + 1) % config.log_every == 0 or batch == steps - 1:
                mean_loss = torch.stack([w for w, _ in window]).mean().item()
                count = sum(c for _, c in window)
                if not math.isfinite(mean_loss):
                    raise KBError(f"training diverged at step {step + 1} (loss {mean_loss}); lower lr "
                                  f"(now {config.lr}) or add warm-up (--set warmup_epochs=1)")
                run.log(step + 1, epoch=epoch + 1, samples=count, loss=mean_loss, lr=lr)
                epoch_loss = [epoch_loss[0] + mean_loss * len(window), epoch_loss[1] + len(window)]
                window = []
        scores = {"train_loss": epoch_loss[0] / max(1, epoch_loss[1])}
        epoch_loss = [0.0, 0]
        scores["test_error"], top5 = evaluate(network, data.test_images, data.test_labels, config, device,
                                              prepare=as_input, amp=amp)
        if imagenet:
            scores["top5_error"] = top5
        if data.val_labels is not None:
            scores["val_error"] = evaluate(network, data.val_images, data.val_labels, config, device,
                                           prepare=as_input, amp=amp)[0]
        for name, build in subnetworks.items():
            scores[f"{name}_test_error"] = evaluate(build(model), data.test_images, data.test_labels, config, device,
                                                    prepare=as_input, amp=amp)[0]
        history.append({"epoch": epoch + 1, **scores})
        run.log_epoch(epoch + 1, **scores)
        if epoch + 1 == config.epochs or time.monotonic() - saved >= 60 * config.checkpoint_minutes:
            run.checkpoint(snapshot(epoch + 1, 0))
            saved = time.monotonic()

    plot_errors(history, run.figures_dir / "error.png")
    # With a validation split, the epoch of the lowest validation error (the first, on ties).
    best = min(history, key=lambda h: h["val_error"]) if data.val_labels is not None else history[-1]
    final = {k: v for k, v in best.items() if k != "epoch"}
    if data.val_labels is not None:
        final["best_epoch"] = float(best["epoch"])
    return final
