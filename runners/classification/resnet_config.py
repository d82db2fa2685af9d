"""The network fields of the family's CIFAR/SVHN residual networks (``resnet.py``), shared by the runners
that train them (``runners/stochastic_depth``, ``runners/ror``). No torch here: kb imports config modules
to list presets.

Defaults are the 110-layer ResNet of Stochastic Depth (arXiv 1603.09382 Sec. 4: three stages of 18
original residual blocks with 16, 32 and 64 filters, average pooling and zero padding where the shape
changes), trained with linear-decay survival down to p_L = 0.5 (Sec. 3-4).
"""

from dataclasses import dataclass

from kb.runs.config import check
from runners.classification import config as classification

BLOCKS = ("original", "preact")
SHORTCUTS = ("zero-pad", "projection")
SURVIVAL_RULES = ("constant", "linear", "uniform")


@dataclass(frozen=True)
class Config(classification.Config):
    """A residual network and its stochastic depth, on top of the family's data and SGD fields.

    Attributes:
        blocks_per_stage: n, residual blocks in each of the three stages (L = 3n; an original ResNet of
            6n + 2 layers, 110 for n = 18; a WRN-d-k has n = (d - 4) / 6, 9 for WRN-58-4).
        widths: channels of the three stages (16, 32, 64; WRN-d-k: 16k, 32k, 64k).
        block: ``original`` (conv-BN-ReLU-conv-BN, ReLU after the addition; He et al. 2015) or ``preact``
            (BN-ReLU-conv-BN-ReLU-conv; He et al. 2016, the Wide ResNets).
        shortcut: a block's shortcut where the shape changes: ``zero-pad`` (average pooling and zero
            channels, no parameters) or ``projection`` (1x1 conv).
        survival_rule: stochastic depth's survival probabilities: ``constant`` (no block is dropped: the
            constant-depth baseline), ``linear`` decay to ``survival_last`` (Eq. 4) or ``uniform``.
        survival_last: p_L, the last block's survival probability (0.5 in the paper).
        ror_levels: shortcut levels (RoR, arXiv 1608.02908): 1 = the blocks' own, 2 = plus a root-level
            shortcut over the whole body, 3 = plus a middle-level shortcut over each stage.
    """

    blocks_per_stage: int = 18
    widths: tuple[int, ...] = (16, 32, 64)
    block: str = "original"
    shortcut: str = "zero-pad"
    survival_rule: str = "linear"
    survival_last: float = 0.5
    ror_levels: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"block": BLOCKS, "shortcut": SHORTCUTS, "survival_rule": SURVIVAL_RULES},
              at_least={"blocks_per_stage": 1, "widths": 1, "ror_levels": 1},
              above={"survival_last": 0}, at_most={"survival_last": 1, "ror_levels": 3})
