"""The detection family's training loop, one for every detector (as torchvision's references/detection
serves every model): data (``data.py``), on-device augmentation, SGD with warm-up and step decay, VOC mAP
evaluation every ``eval_every`` epochs, frame rates, checkpoints and resume.

A paper folder gives ``train`` a ``build(config, classes, run) -> Detector``: its network, its loss and
how to read detections off the network's output. YOLOv1 (arXiv 1506.02640, Sec. 2.2) is the recipe the
defaults follow.
"""

import functools
import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from kb.errors import KBError
from runners.common.epochs import epoch_order
from runners.detection.data import apply_augmentation, augmentation_draws, batches, keep_on_gpu, load_data
from runners.detection.evaluate import Detect, evaluate, measure_fps

# loss(pred (N, ...) float, gt_boxes (N, M, 4), gt_labels (N, M) with -1 padding) -> (loss, {part: loss part})
Loss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Detector:
    """What a paper folder gives the family's loop.

    Attributes:
        model: the network, (N, 3, H, W) images in [0, 1] -> its raw output.
        loss: the training loss on that output.
        detect: per-image detections from that output (thresholds and NMS bound in).
    """

    model: torch.nn.Module
    loss: Loss
    detect: Detect


def learning_rate(step: int, total_steps: int, config) -> float:
    """The rate at ``step``: a linear warm-up from ``warmup_lr`` to ``lr`` over ``warmup_fraction`` of
    training, then tenfold drops at each of ``decay_fractions`` (YOLOv1's schedule, Sec. 2.2), its phases
    placed as fractions of ``total_steps`` so a shorter run scales."""
    warmup = round(config.warmup_fraction * total_steps)
    if step < warmup:
        return config.warmup_lr + (config.lr - config.warmup_lr) * step / warmup
    drops = sum(step >= round(fraction * total_steps) for fraction in config.decay_fractions)
    return config.lr * 0.1**drops


def train_step(network, optimizer, batch, generator: torch.Generator, config, device: torch.device, *,
               loss: Loss, amp: bool, memory_format: torch.memory_format, compiled: bool = False) -> dict:
    """One SGD step on a batch of (uint8 images, gt boxes, gt labels): augment on the device, forward
    (bfloat16 autocast if ``amp``), the detector's ``loss``, backward, update.

    With ``compiled`` (pass it with a compiled ``network``), the augmentation and the loss are compiled
    too: eager, their hundred-odd small kernels cost the GPU more than the conv layers of Fast YOLO.

    Returns:
        0-d tensors, not synced: ``loss``, each of its parts as ``loss_<part>``, and ``grad_norm``, the
        gradient norm before clipping (whether ``clip_grad`` normalises every step or only catches spikes).
    """
    images, gt_boxes, gt_labels = (t.to(device, non_blocking=True) for t in batch)
    draw = augmentation_draws(len(images), generator).to(device, non_blocking=True)
    prepare, loss_fn = (_compiled(_prepare), _compiled(loss)) if compiled else (_prepare, loss)
    images, gt_boxes, gt_labels = prepare(images, gt_boxes, gt_labels, draw, config, memory_format)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        pred = network(images)
    total, parts = loss_fn(pred.float(), gt_boxes, gt_labels)
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(network.parameters(), config.clip_grad or float("inf"))
    optimizer.step()
    return {"loss": total.detach(), **{f"loss_{name}": part.detach() for name, part in parts.items()},
            "grad_norm": grad_norm.detach()}


def _prepare(images, gt_boxes, gt_labels, draw, config, memory_format):
    """uint8 images -> augmented float images in the network's memory format, and the moved objects."""
    images, gt_boxes, gt_labels = apply_augmentation(images.float() / 255, gt_boxes, gt_labels, draw,
                                                     jitter=config.jitter, exposure=config.exposure,
                                                     saturation=config.saturation)
    return images.contiguous(memory_format=memory_format), gt_boxes, gt_labels


@functools.cache
def _compiled(function):
    return torch.compile(function)


def make_optimizer(model: torch.nn.Module, config) -> torch.optim.SGD:
    """SGD with momentum; weight decay on conv and FC weights only, not on biases or norms (Sec. 2.2).

    On CUDA the update is one fused kernel: YOLOv1 has 230-270 M parameters (most in the first fully
    connected layer), and the multi-kernel update reads and writes them several times per step.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    cuda = next(model.parameters()).device.type == "cuda"
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.warmup_lr, momentum=config.momentum, **({"fused": True} if cuda else {}),
    )


def checkpoint_due(since_last: float, last_save: float, minutes: float) -> bool:
    """Whether to save at this epoch's end: ``minutes`` have passed since the last save, or 50 times
    its duration ``last_save`` (seconds) have, which keeps saving under ~2% of the time."""
    return since_last >= min(60 * minutes, 50 * last_save)


def plot_training(run, losses: list[tuple[int, float]], evaluations: list[dict], classes) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    if losses:
        steps, values = zip(*losses)
        left.plot(steps, values, lw=0.8)
    left.set(xlabel="step", ylabel="training loss", yscale="log", title="loss")
    if evaluations:
        epochs = [e["epoch"] for e in evaluations]
        right.plot(epochs, [e["map"] for e in evaluations], "o-", label="11-point (VOC2007)")
        right.plot(epochs, [e["map_allpoint"] for e in evaluations], "s--", label="all-point")
        right.legend()
    right.set(xlabel="epoch", ylabel="mAP@0.5 (%)", title="test mAP")
    fig.tight_layout()
    fig.savefig(run.figures_dir / "training.png", dpi=120)
    plt.close(fig)
    if evaluations:
        final = evaluations[-1]["ap"]
        fig, ax = plt.subplots(figsize=(max(5, 0.35 * len(final)), 4))
        ax.bar([classes[c] for c in final], list(final.values()))
        ax.set(ylabel="AP@0.5 (%, 11-point)", title="per-class AP, last evaluation")
        ax.tick_params(axis="x", rotation=90)
        fig.tight_layout()
        fig.savefig(run.figures_dir / "ap_per_class.png", dpi=120)
        plt.close(fig)


def train(config, run, build: Callable[..., Detector]) -> dict[str, float]:
    """Train the detector that ``build(config, classes, run)`` makes, on the data ``--data`` names (else
    the generated set); return the final VOC mAP, frame rates and test loss."""
    device = torch.device(run.device)
    cuda = device.type == "cuda"
    amp, channels_last = config.amp and cuda, config.channels_last and cuda
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    if run.data_dir is None:
        run.note(f"no --data: generating {config.generated_train} training and {config.generated_test} test images "
                 f"of {config.image_size}x{config.image_size} (shapes, seed {config.generated_seed})")
    else:
        run.note(f"reading {run.data_dir}")
    data = load_data(run.data_dir, config)
    run.set_dataset(data.name, fingerprint=data.fingerprint, synthetic=data.synthetic, detail=data.detail)
    classes = data.classes

    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest kernels
        if config.data_on_gpu:
            keep_on_gpu(data, device, run)

    detector = build(config, classes, run)
    model = detector.model
    model.to(device, memory_format=memory_format)
    optimizer = make_optimizer(model, config)
    run.record(
        parameters=sum(p.numel() for p in model.parameters()),
        classes=list(classes),
        train_images=len(data.train),
        test_images=len(data.test),
        amp=amp, channels_last=channels_last, compiled=config.compile and cuda,
    )

    batch_size = min(config.batch_size, len(data.train))
    steps_per_epoch = len(data.train) // batch_size  # the last partial batch of an epoch is dropped
    total_steps = steps_per_epoch * config.epochs
    epoch, batches_done, step = 0, 0, 0
    losses, evaluations = [], []
    state = run.resume_state()
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, batches_done, step = state["epoch"], state["batches_done"], state["step"]
        losses, evaluations = [tuple(x) for x in state["losses"]], state["evaluations"]
    network = torch.compile(model) if config.compile and cuda else model
    if network is not model:
        run.note("torch.compile: the first training and evaluation steps compile the model (a minute or two)")

    def checkpoint_state() -> dict:
        return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                "batches_done": batches_done, "step": step, "losses": [list(x) for x in losses],
                "evaluations": evaluations, "config": {k: str(v) for k, v in vars(config).items()}}

    run.start(total_steps=total_steps, epochs=config.epochs, step=step)
    saved, save_seconds = time.monotonic(), 0.0
    model.train()
    while epoch < config.epochs:
        order = epoch_order(len(data.train), run.seed, epoch).tolist()
        plan = [order[i * batch_size : (i + 1) * batch_size] for i in range(batches_done, steps_per_epoch)]
        window = []
        for images, gt_boxes, gt_labels in batches(data.train, plan, config.workers, cuda):
            run.check_interrupt(checkpoint_state)
            lr = learning_rate(step, total_steps, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            # Augmentation randomness depends only on (seed, step), so a resumed run redraws it exactly.
            generator = torch.Generator().manual_seed(run.seed * 1_000_003 + step)
            window.append(train_step(network, optimizer, (images, gt_boxes, gt_labels), generator, config, device,
                                     loss=detector.loss, amp=amp, memory_format=memory_format,
                                     compiled=network is not model))
            step += 1
            batches_done += 1
            if step % config.log_every == 0 or batches_done == steps_per_epoch:
                names = list(window[0])  # loss, its parts, grad_norm: averaged over the steps since the last log
                rows = torch.stack([torch.stack([w[n] for n in names]) for w in window])
                means = dict(zip(names, rows.mean(0).tolist()))
                mean_loss = means.pop("loss")
                if not math.isfinite(mean_loss):
                    raise KBError(f"training diverged at step {step} (loss {mean_loss}); lower lr, or clip "
                                  "gradients (--set clip_grad=10)")
                run.log(step, epoch=epoch + 1, samples=len(window) * batch_size, loss=mean_loss, lr=lr, **means)
                losses.append((step, mean_loss))
                window = []
        epoch, batches_done = epoch + 1, 0
        if epoch % config.eval_every == 0 or epoch == config.epochs:
            order = list(range(len(data.test)))
            test_plan = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
            result = evaluate(network, batches(data.test, test_plan, config.workers, cuda), data.test, device,
                              amp=amp, channels_last=channels_last, loss=detector.loss, detect=detector.detect)
            evaluations.append({"epoch": epoch, **result})
            run.log_epoch(epoch, map=result["map"], map_allpoint=result["map_allpoint"], test_loss=result["loss"])
        if epoch == config.epochs or checkpoint_due(time.monotonic() - saved, save_seconds, config.checkpoint_minutes):
            save_started = time.monotonic()
            run.checkpoint(checkpoint_state())
            saved = time.monotonic()
            save_seconds = saved - save_started

    final = evaluations[-1]
    sample = data.test[list(range(min(64, len(data.test))))][0]
    speed = {"model": network, "device": device, "amp": amp, "channels_last": channels_last,
             "iters": config.speed_iters, "detect": detector.detect}
    fps = measure_fps(images=sample[:1], **speed)
    fps_batch64 = measure_fps(images=sample, **speed)
    run.record(
        ap_per_class={classes[c]: round(v, 2) for c, v in final["ap"].items()},
        ap_allpoint_per_class={classes[c]: round(v, 2) for c, v in final["ap_allpoint"].items()},
        fps_batch=len(sample),
    )
    plot_training(run, losses, evaluations, classes)
    return {
        "map": final["map"],
        "map_allpoint": final["map_allpoint"],
        "test_loss": final["loss"],
        "fps": fps,
        "fps_batch64": fps_batch64,
    }
