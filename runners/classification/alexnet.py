"""AlexNet: the ImageNet baseline that later papers of the family measure themselves against
(SqueezeNet's "50x fewer parameters", XNOR-Net's binary AlexNet).

Paper: Alex Krizhevsky, Ilya Sutskever, Geoffrey E. Hinton, "ImageNet Classification with Deep
Convolutional Neural Networks", NIPS 2012, Sec. 3 and Fig. 2.

Five convolutions and three fully connected layers on a 227x227 input (the size at which the paper's
11x11 stride-4 convolution gives its 55x55 maps; Fig. 2 prints 224):

    conv1 96 11x11/4 -> ReLU -> LRN -> 3x3/2 max pool            55 -> 27
    conv2 256 5x5 pad 2 -> ReLU -> LRN -> 3x3/2 max pool          27 -> 13
    conv3 384 3x3 pad 1 -> ReLU
    conv4 384 3x3 pad 1 -> ReLU
    conv5 256 3x3 pad 1 -> ReLU -> 3x3/2 max pool                 13 -> 6
    fc6 9216 -> 4096 -> ReLU -> dropout, fc7 4096 -> 4096 -> ReLU -> dropout, fc8 4096 -> classes

The default is the single-tower network (every layer sees all channels of the one before): 62,378,344
parameters with 1000 classes. ``groups=2`` gives the paper's two-GPU layout, where conv2, conv4 and conv5
see only their own tower's half (Sec. 3.2, Fig. 2), which is also Caffe's reference ``bvlc_alexnet``:
60,965,224 parameters, the "61M" and 240 MB that Deep Compression and SqueezeNet compare against.
Local response normalisation: k = 2, n = 5, alpha = 1e-4, beta = 0.75 (Sec. 3.3).
"""

import torch
from torch import nn


class AlexNet(nn.Module):
    """AlexNet of Krizhevsky et al. 2012, built from its widths.

    Args:
        num_classes: outputs of fc8.
        widths: filters of conv1 .. conv5.
        hidden: units of fc6 and fc7.
        groups: 1 for the single tower; 2 for the two GPUs' towers of Fig. 2 (conv2, conv4, conv5 grouped).
        dropout: rate before fc7 and fc8 (Sec. 4.2: 0.5).
        local_response_norm: the LRN after conv1 and conv2 (Sec. 3.3).
    """

    def __init__(self, num_classes: int = 1000, *, widths: tuple[int, ...] = (96, 256, 384, 384, 256),
                 hidden: int = 4096, groups: int = 1, dropout: float = 0.5, local_response_norm: bool = True) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = widths

        def norm() -> nn.Module:
            return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0) if local_response_norm else nn.Identity()

        self.features = nn.Sequential(
            nn.Conv2d(3, c1, 11, stride=4), nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c1, c2, 5, padding=2, groups=groups), nn.ReLU(inplace=True), norm(), nn.MaxPool2d(3, stride=2),
            nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(c3, c4, 3, padding=1, groups=groups), nn.ReLU(inplace=True),
            nn.Conv2d(c4, c5, 3, padding=1, groups=groups), nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c5 * 6 * 6, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, 227, 227) images -> (B, num_classes) logits."""
        return self.classifier(self.features(x))
