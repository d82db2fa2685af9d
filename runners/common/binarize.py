"""sign with the straight-through estimator, the binarization of BNN (arXiv:1602.02830 Sec. 1.1, 1.3)
that XNOR-Net (arXiv:1603.05279 Sec. 3) trains with too.

Forward: sign(x) in {-1, +1}, 0 mapping to +1. Backward: the gradient passes where |x| <= 1 and is
cancelled elsewhere, g_r = g_q 1_{|r| <= 1}.
"""

import torch


class SignSTE(torch.autograd.Function):
    """sign with the straight-through estimator: forward +-1, backward grad * 1_{|x| <= 1}."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def binarize(x: torch.Tensor) -> torch.Tensor:
    """+-1 signs of ``x`` with the straight-through estimator's gradient."""
    return SignSTE.apply(x)
