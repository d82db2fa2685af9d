"""The initialisation the family's papers share: He et al.'s normal draw with fan-out, as
fb.resnet.torch writes it (N(0, 2 / (k * k * out_channels)) for every convolution), which DenseNet,
ResNeXt, clcNet, IGCV2 and the residual networks of Stochastic Depth and RoR keep from that code.
Batch norms keep PyTorch's unit scale and zero shift.
"""

from torch import nn


def he_fan_out_(model: nn.Module, *, zero_classifier_bias: bool = False) -> None:
    """Every ``Conv2d`` of ``model`` drawn He-normal with fan-out; with ``zero_classifier_bias`` every
    ``Linear`` bias set to zero (the classifier's, as fb.resnet.torch does)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif zero_classifier_bias and isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
