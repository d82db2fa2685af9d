"""The networks of Residual Networks of Residual Networks, built without data.

Paper: Ke Zhang, Miao Sun, Tony X. Han, Xingfang Yuan, Liru Guo, Tao Liu, "Residual Networks of Residual
Networks: Multilevel Residual Networks", arXiv:1608.02908. RoR-3's three shortcut levels, the residual
blocks and stochastic depth are the classification family's ``runners/classification/resnet.py`` (the
same code the Stochastic Depth runner trains), so RoR is a config of that network, not a copy of it.
"""

import torch

from runners.classification import resnet


def architecture(config) -> tuple[torch.nn.Module, torch.Tensor]:
    """The preset's network (eval mode) and one 32x32 image, for counting its parameters and FLOPs."""
    return resnet.from_config(config).eval(), torch.zeros(1, 3, config.input_size, config.input_size)
