"""The regularisers the family's papers share, written once.

- ``LockedDropout``: variational dropout (Gal & Ghahramani 2016, arXiv 1512.05287): one mask per sequence,
  the same at every time step.
- ``embedding_dropout``: dropout of whole words of the embedding matrix (Gal & Ghahramani 2016, Sec. 4.2;
  AWD-LSTM arXiv 1708.02182 Sec. 4.3), rescaled by 1 / (1 - p).
- ``zoneout``: a gate set to 1 with probability p, without rescaling (Krueger et al. 2016, arXiv
  1606.01305): the unit keeps its previous value. With the QRNN's forget gate this is the paper's
  F = 1 - dropout(1 - sigmoid(W_f * X)) (Bradbury et al. 2016, Sec. 2.1).
"""

import torch
import torch.nn.functional as F
from torch import nn


class LockedDropout(nn.Module):
    """Dropout of (B, T, H) activations with one (B, 1, H) mask for all T steps."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask


def embedding_dropout(embedding: nn.Embedding, tokens: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look ``tokens`` up in ``embedding`` with whole rows (words) dropped with probability ``p``: every
    occurrence of a dropped word in the batch is zero."""
    weight = embedding.weight
    if training and p > 0:
        keep = weight.new_empty(weight.shape[0], 1).bernoulli_(1 - p) / (1 - p)
        weight = weight * keep
    return F.embedding(tokens, weight)


def zoneout(gate: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """``gate`` with each entry set to 1 with probability ``p`` while training (no rescaling; at test time
    the gate is used as it is, as the QRNN paper's Sec. 2.1 does)."""
    if not training or p == 0:
        return gate
    return 1 - F.dropout(1 - gate, p=p) * (1 - p)
