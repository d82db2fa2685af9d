"""Evaluation helpers shared by classification runners."""

from typing import Callable

import torch


@torch.no_grad()
def count_correct(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *, batch_size: int,
                  prepare: Callable[[torch.Tensor], torch.Tensor]) -> int:
    """How many of ``images`` the model classifies as ``labels`` (argmax of its scores), in eval mode.

    ``prepare`` turns a stored batch (e.g. uint8 pixels) into the model's input. The model is put
    back in training mode afterwards.
    """
    model.eval()
    correct = 0
    for start in range(0, len(labels), batch_size):
        scores = model(prepare(images[start:start + batch_size]))
        correct += (scores.argmax(1) == labels[start:start + batch_size]).sum().item()
    model.train()
    return correct
