"""The CIFAR/SVHN residual networks of the classification family, with stochastic depth and RoR shortcuts.

Written once here for the runners that train them (``runners/stochastic_depth``, ``runners/ror``):

- the original residual block of He et al., "Deep Residual Learning for Image Recognition" (arXiv
  1512.03385, Sec. 4.2: conv-BN-ReLU-conv-BN, added to the shortcut, then ReLU), with its CIFAR shortcut
  "option A" (identity; where the shape changes, average pooling and zero padding) or "option B" (a 1x1
  projection where the shape changes);
- the pre-activation block of He et al., "Identity Mappings in Deep Residual Networks" (arXiv 1603.05027:
  BN-ReLU-conv-BN-ReLU-conv, added to the shortcut, no ReLU after the addition), which is also the block
  of the Wide Residual Networks (Zagoruyko & Komodakis, arXiv 1605.07146: widths 16k, 32k, 64k, a 1x1
  projection on the activated input where the shape changes);
- stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", arXiv 1603.09382, Sec. 3): in
  training, each mini-batch drops residual block l with probability 1 - p_l, so the block is its shortcut
  alone (Eq. 2-3) and costs nothing; at test time every block runs with its residual scaled by p_l
  (Eq. 5). The linear decay rule p_l = 1 - l/L (1 - p_L) (Eq. 4) or a uniform p_l = p_L;
- the multilevel shortcuts of Zhang et al., "Residual Networks of Residual Networks" (RoR, arXiv
  1608.02908): RoR-2 adds a root-level shortcut from the stem's output to the end of the last stage,
  RoR-3 also a middle-level shortcut over each stage; both are added where the stage's last block adds
  its own shortcut, identities where the shape is kept and 1x1 projections (conv + BN) where it changes.

A network is the stem (a 3x3 conv with 16 filters), three stages of ``blocks_per_stage`` blocks whose
widths are ``widths`` (feature maps 32, 16, 8 pixels), global average pooling and a linear classifier.
"""

import functools

import torch
import torch.nn.functional as F
from torch import nn

from runners.classification.resnet_config import BLOCKS, SHORTCUTS, SURVIVAL_RULES
from runners.classification.weights import he_fan_out_


def survival_probabilities(blocks: int, rule: str, last: float) -> list[float]:
    """p_l for blocks l = 1..L (1603.09382 Sec. 3): ``constant`` depth (all 1), ``uniform`` (all p_L) or
    ``linear`` decay p_l = 1 - l/L (1 - p_L) (Eq. 4), from p_0 = 1 at the input to p_L at the last block."""
    if rule not in SURVIVAL_RULES:
        raise ValueError(f"survival rule must be one of {', '.join(SURVIVAL_RULES)}, not {rule!r}")
    if rule == "constant":
        return [1.0] * blocks
    if rule == "uniform":
        return [last] * blocks
    return [1 - l / blocks * (1 - last) for l in range(1, blocks + 1)]


def expected_depth(survival: list[float]) -> float:
    """E(L~) = sum_l p_l, the expected number of active blocks in a training step (1603.09382 Sec. 3)."""
    return float(sum(survival))


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    # No bias: every conv is followed by BatchNorm, whose shift plays its part.
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """A 1x1 conv + BN shortcut that matches a changed shape (He et al. 2015, option B)."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


class ZeroPadShortcut(nn.Module):
    """Identity where the shape changes (He et al. 2015 option A as 1603.09382 Sec. 4 builds it): average
    pooling over ``stride`` x ``stride`` windows, then zero channels up to ``out_channels``. No parameters."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.extra_channels = out_channels - in_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = F.avg_pool2d(x, self.stride)
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # (N, C + extra, H, W)


class ResidualBlock(nn.Module):
    """One residual block, droppable by stochastic depth.

    ``forward(x, active, extra)``: ``active`` False (a dropped block in training) leaves out the residual
    branch; in eval mode the branch is scaled by ``survival`` (1603.09382 Eq. 5). ``extra`` is what RoR's
    root and middle-level shortcuts add at this block (None: nothing).

    Args:
        kind: ``original`` (ReLU(b f(x) + id(x) + extra), f = conv-BN-ReLU-conv-BN; 1603.09382 Eq. 2) or
            ``preact`` (b f(x) + id(x) + extra, f = BN-ReLU-conv-BN-ReLU-conv).
        shortcut: ``zero-pad`` or ``projection`` where the shape changes; an identity where it does not.
        survival: p_l, this block's survival probability.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, *, kind: str, shortcut: str,
                 survival: float) -> None:
        super().__init__()
        if kind not in BLOCKS or shortcut not in SHORTCUTS:
            raise ValueError(f"block {kind!r} / shortcut {shortcut!r}: blocks {BLOCKS}, shortcuts {SHORTCUTS}")
        self.kind, self.survival = kind, survival
        self.conv1, self.conv2 = conv3x3(in_channels, out_channels, stride), conv3x3(out_channels, out_channels)
        # original: BN after each conv; preact: BN before each conv (bn1 normalises the block's input).
        self.bn1 = nn.BatchNorm2d(out_channels if kind == "original" else in_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        changes = stride != 1 or in_channels != out_channels
        if not changes:
            self.shortcut = nn.Identity()
        elif shortcut == "zero-pad":
            self.shortcut = ZeroPadShortcut(in_channels, out_channels, stride)
        elif kind == "original":
            self.shortcut = projection(in_channels, out_channels, stride)
        else:  # WRN's projection: a 1x1 conv of the pre-activated input
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.activated_shortcut = kind == "preact" and changes and shortcut == "projection"

    def preactivate(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn1(x))

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """f(x): conv-BN-ReLU-conv-BN (original), or BN-ReLU-conv-BN-ReLU-conv of an already pre-activated x."""
        if self.kind == "original":
            return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return self.conv2(F.relu(self.bn2(self.conv1(x))))

    # Which branch runs is decided here in Python; under torch.compile only the branches are compiled, so
    # a block has one graph per shape and mode instead of one per (dropped, RoR input) combination.
    @torch.compiler.disable(recursive=False)
    def forward(self, x: torch.Tensor, active: bool = True, extra: torch.Tensor | None = None) -> torch.Tensor:
        computed = active or not self.training
        # A dropped pre-activation block needs its BN-ReLU only for a projection of the activated input.
        inner = self.preactivate(x) if self.kind == "preact" and (computed or self.activated_shortcut) else x
        out = self.shortcut(inner if self.activated_shortcut else x)
        if computed:
            residual = self.residual(inner)
            out = out + (residual if self.training else self.survival * residual)
        if extra is not None:
            out = out + extra
        # A dropped original block is the identity: its input is non-negative (the previous ReLU), so the
        # final ReLU leaves it unchanged (1603.09382 Eq. 3).
        return F.relu(out) if self.kind == "original" else out


def zero_missing_grads(parameters: list[nn.Parameter], grad: torch.Tensor) -> None:
    """A backward hook: a zero gradient for each of ``parameters`` that has none.

    A dropped block takes no part in the step's graph, so its parameters would get no gradient and
    PyTorch's SGD would skip them; the authors' Torch ``optim.sgd`` (1603.09382's code) sees a zero
    gradient there and still applies weight decay and momentum. Zeros make the update the same.
    """
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)


class ResNet(nn.Module):
    """A CIFAR/SVHN residual network with stochastic depth and RoR shortcut levels.

    Args:
        blocks_per_stage: n, blocks in each of the three stages (L = 3n blocks; an original ResNet has
            6n + 2 layers: 110 for n = 18).
        widths: channels of the three stages (16, 32, 64; a WRN-d-k has 16k, 32k, 64k).
        num_classes: classifier outputs.
        kind: ``original`` or ``preact`` blocks (``ResidualBlock``).
        shortcut: the blocks' shortcut where the shape changes (``zero-pad`` or ``projection``).
        survival_rule, survival_last: stochastic depth's p_l (``survival_probabilities``).
        ror_levels: 1 (the blocks' own shortcuts only), 2 (RoR-2: plus the root-level shortcut) or 3
            (RoR-3: plus a middle-level shortcut over each stage).
        seed: seeds the survival draws; the draw of training step t is a function of (seed, t) alone, and
            both are part of ``state_dict()``, so a resumed run drops the same blocks.
    """

    def __init__(self, *, blocks_per_stage: int, widths: tuple[int, ...], num_classes: int, kind: str,
                 shortcut: str, survival_rule: str, survival_last: float, ror_levels: int = 1,
                 seed: int = 0) -> None:
        super().__init__()
        if ror_levels not in (1, 2, 3):
            raise ValueError(f"ror_levels must be 1, 2 or 3, not {ror_levels}")
        stem = 16
        self.kind, self.ror_levels = kind, ror_levels
        self.survival = survival_probabilities(len(widths) * blocks_per_stage, survival_rule, survival_last)
        self.seed, self.step = int(seed), 0
        self.stem = nn.Sequential(conv3x3(3, stem), *([nn.BatchNorm2d(stem), nn.ReLU()] if kind == "original" else []))
        self.stages = nn.ModuleList()
        self.middle = nn.ModuleList()
        channels, index = stem, 0
        for s, width in enumerate(widths):
            stride = 1 if s == 0 else 2
            blocks = []
            for b in range(blocks_per_stage):
                blocks.append(ResidualBlock(channels if b == 0 else width, width, stride if b == 0 else 1, kind=kind,
                                            shortcut=shortcut, survival=self.survival[index]))
                index += 1
            self.stages.append(nn.ModuleList(blocks))
            if ror_levels == 3:
                self.middle.append(nn.Identity() if (channels, stride) == (width, 1) else
                                   projection(channels, width, stride))
            channels = width
        downsampling = 2 ** (len(widths) - 1)
        self.root = projection(stem, channels, downsampling) if ror_levels >= 2 else None
        self.final = nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU()) if kind == "preact" else nn.Identity()
        self.fc = nn.Linear(channels, num_classes)
        he_fan_out_(self)

    def get_extra_state(self) -> dict:
        return {"seed": self.seed, "step": self.step}

    def set_extra_state(self, state: dict) -> None:
        self.seed, self.step = int(state["seed"]), int(state["step"])

    @torch.compiler.disable  # host-side draws: compiled, they would recompile for every step's seed
    def gates(self) -> list[bool]:
        """Which blocks this training step keeps: one Bernoulli(p_l) draw per block and mini-batch
        (1603.09382 Sec. 3), from a generator seeded by (seed, step), so it is the same on a resumed run."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.step)
        self.step += 1
        draws = torch.rand(len(self.survival), generator=generator).tolist()
        return [u < p for u, p in zip(draws, self.survival)]

    # The block loop runs in Python (which blocks run depends on the draws), while torch.compile still
    # compiles the blocks' branches: graphs per block shape instead of one per pattern of dropped blocks.
    @torch.compiler.disable(recursive=False)
    def body(self, x: torch.Tensor) -> torch.Tensor:
        keep = self.gates() if self.training and min(self.survival) < 1 else [True] * len(self.survival)
        root, index = x, 0
        for s, stage in enumerate(self.stages):
            stage_input = x
            for b, block in enumerate(stage):
                extra = None
                if b == len(stage) - 1:
                    if self.ror_levels == 3:
                        extra = self.middle[s](stage_input)
                    if self.root is not None and s == len(self.stages) - 1:
                        extra = self.root(root) if extra is None else extra + self.root(root)
                x = block(x, keep[index], extra)
                index += 1
        dropped = [p for block, kept in zip(self.blocks(), keep) if not kept for p in block.parameters()]
        if dropped and x.requires_grad:
            x.register_hook(functools.partial(zero_missing_grads, dropped))
        return x

    def blocks(self) -> list[ResidualBlock]:
        return [block for stage in self.stages for block in stage]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final(self.body(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def from_config(config, *, seed: int = 0) -> ResNet:
    """The network of a ``resnet_config.Config`` (its dataset's classes), survival draws seeded by ``seed``.

    Under torch.compile each branch's code has a graph per block shape and train/eval mode (up to 10 here:
    three stages and two transitions), above dynamo's default of 8 per function, past which the rest would
    run uncompiled; the limit is raised to fit.
    """
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 16)
    return ResNet(blocks_per_stage=config.blocks_per_stage, widths=config.widths, num_classes=config.num_classes,
                  kind=config.block, shortcut=config.shortcut, survival_rule=config.survival_rule,
                  survival_last=config.survival_last, ror_levels=config.ror_levels, seed=seed)
