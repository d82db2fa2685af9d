"""Epochs in a seeded order that a resumed run repeats exactly."""

import functools
from typing import Callable, Iterator

import torch


def epoch_order(size: int, seed: int, epoch: int) -> torch.Tensor:
    """The training order of one epoch, a function of (seed, epoch) only, so a resumed run
    sees the same batches as an uninterrupted one."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(size, generator=generator)


def steps_per_epoch(size: int, batch_size: int, *, drop_last: bool) -> int:
    """Batches in one epoch of ``size`` examples; ``drop_last`` leaves out the last partial batch."""
    return size // batch_size if drop_last else -(-size // batch_size)


def epoch_batches(run, epoch: int, *, size: int, batch_size: int, first: int, drop_last: bool,
                  snapshot: Callable[[int, int], dict], device: torch.device) -> Iterator[tuple[int, torch.Tensor]]:
    """(batch number, example indices on ``device``) for the batches ``first``.. of ``epoch``.

    Before each batch it checks for Ctrl-C / SIGTERM: then ``snapshot(epoch, batch)`` is saved and the
    run stops, so a resume starts at exactly this batch. For data kept on the device, where a batch
    is an index into whole-set tensors.
    """
    order = epoch_order(size, run.seed, epoch).to(device)
    for batch in range(first, steps_per_epoch(size, batch_size, drop_last=drop_last)):
        run.check_interrupt(functools.partial(snapshot, epoch, batch))
        yield batch, order[batch * batch_size:(batch + 1) * batch_size]


def restore_training(run, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     best: dict) -> tuple[int, int, list, dict]:
    """Where a one-model, one-optimizer loop starts: ``(epoch, batch, history, best)`` from the run's
    checkpoint when it resumes (the model and optimizer loaded from it), else ``(0, 0, [], best)``.
    The checkpoint is one that ``training_state`` made."""
    state = run.resume_state()
    if state is None:
        return 0, 0, [], best
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    return state["epoch"], state["batch"], state["history"], state["best"]


def training_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, *, epoch: int, batch: int,
                   history: list, best: dict) -> dict:
    """The checkpoint of such a loop before batch ``batch`` of epoch ``epoch`` (``restore_training`` reads it)."""
    return {"epoch": epoch, "batch": batch, "history": history, "best": best,
            "model": model.state_dict(), "optimizer": optimizer.state_dict()}


def keep_best(best: dict, model: torch.nn.Module, *, epoch: int, on: str, **scores: float) -> dict:
    """The best epoch so far, chosen on ``scores[on]`` (a validation score, lower is better): this epoch's
    scores with a copy of the model's weights when it is at most the best one's (ties go to the later
    epoch, as the BNN authors' code does), else ``best`` unchanged."""
    if scores[on] <= best[on]:
        return {**scores, "epoch": epoch, "model": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    return best
