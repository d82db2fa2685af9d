"""The networks of Deep Networks with Stochastic Depth, built without data.

Paper: Gao Huang, Yu Sun, Zhuang Liu, Daniel Sedra, Kilian Q. Weinberger, "Deep Networks with Stochastic
Depth", ECCV 2016, arXiv:1603.09382. The ResNets (Sec. 3, "ResNet architecture"; Sec. 4) and stochastic
depth itself (Sec. 3, Eq. 2-5) are the classification family's ``runners/classification/resnet.py``,
which the RoR runner shares.
"""

import torch

from runners.classification import resnet


def architecture(config) -> tuple[torch.nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's network (eval mode), one 32x32 image, and the data-free metrics of Sec. 3:

    - ``expected_blocks``: E(L~) = sum_l p_l, the expected number of residual blocks active in a
      training step ("For the 110-layer network with L = 54 ... E(L~) ~ 40");
    - ``training_time_saving``: the share of blocks, hence of forward-backward computation, a training
      step skips on average, (L - E(L~)) / L in percent ("approximately 25% of training time could be
      saved under the linear decay rule with p_L = 0.5"). The stem and classifier, always run, are left
      out as the paper's calculation leaves them out (the stem is 0.17% of ResNet-110's FLOPs).
    """
    model = resnet.from_config(config).eval()
    blocks = len(model.survival)
    active = resnet.expected_depth(model.survival)
    return model, torch.zeros(1, 3, config.input_size, config.input_size), {
        "expected_blocks": active, "training_time_saving": 100 * (blocks - active) / blocks}
