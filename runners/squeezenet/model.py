"""SqueezeNet v1.0 and its bypass variants.

Paper: Forrest N. Iandola, Song Han, Matthew W. Moskewicz, Khalid Ashraf, William J. Dally, Kurt Keutzer,
"SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and <0.5MB model size", arXiv:1602.07360.

Fire module (Sec. 3.2, Fig. 1): a squeeze layer of s 1x1 filters, then an expand layer of e1 1x1 and e3 3x3
filters (3x3 padded by 1 so both give the same map, concatenated on channels), ReLU after each.

Network (Table 1, Sec. 3.3): conv1 96 7x7/2, max pool 3x3/2, fire2-4, max pool, fire5-8, max pool, fire9,
dropout 0.5, conv10 1x1 to the classes, global average pool. Max pools round up as Caffe's do (the
authors' train_val.prototxt), so 227 pixels give Table 1's 111, 55, 27 and 13. No fully connected layer.

Bypass (Sec. 6, Fig. 2, Table 6): simple adds each odd Fire module's input to its output (fire3, 5, 7, 9,
whose input and output widths agree); complex also adds a 1x1 convolution of the input, with as many
filters as the module's output, around fire2, 4, 6 and 8.
"""

import torch
from torch import nn

from runners.classification.alexnet import AlexNet


class Fire(nn.Module):
    """Squeeze (1x1, s filters) then expand (1x1, e1 and 3x3, e3 filters), concatenated.

    Args:
        in_channels: channels entering.
        squeeze: s1x1.
        expand1x1: e1x1.
        expand3x3: e3x3.
        bypass: "none", "simple" (identity added: in_channels must equal e1 + e3) or "complex" (1x1
            convolution of the input added).
    """

    def __init__(self, in_channels: int, squeeze: int, expand1x1: int, expand3x3: int, bypass: str = "none") -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(in_channels, squeeze, 1), nn.ReLU(inplace=True))
        self.expand1x1 = nn.Sequential(nn.Conv2d(squeeze, expand1x1, 1), nn.ReLU(inplace=True))
        self.expand3x3 = nn.Sequential(nn.Conv2d(squeeze, expand3x3, 3, padding=1), nn.ReLU(inplace=True))
        out_channels = expand1x1 + expand3x3
        if bypass == "simple" and in_channels != out_channels:
            raise ValueError(f"a simple bypass needs as many channels in as out, not {in_channels} -> {out_channels}")
        self.bypass = None
        if bypass == "simple":
            self.bypass = nn.Identity()
        elif bypass == "complex":
            self.bypass = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        out = torch.cat([self.expand1x1(s), self.expand3x3(s)], 1)
        return out if self.bypass is None else out + self.bypass(x)


def fire_widths(config) -> list[tuple[int, int, int]]:
    """(s1x1, e1x1, e3x3) of fire2 .. fire9 from Sec. 3.3's metaparameters."""
    widths = []
    for i in range(8):
        expand = config.base_e + config.incr_e * (i // config.freq)
        expand3x3 = int(expand * config.pct3x3)
        widths.append((int(config.squeeze_ratio * expand), expand - expand3x3, expand3x3))
    return widths


class SqueezeNet(nn.Module):
    """The network of Table 1 (fire2 .. fire9 from ``fire_widths``), with Table 6's bypasses.

    Args:
        fires: (s1x1, e1x1, e3x3) of the eight Fire modules.
        num_classes: filters of conv10.
        bypass: none, simple or complex.
        dropout: rate after fire9.
    """

    def __init__(self, fires: list[tuple[int, int, int]], *, num_classes: int, bypass: str, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, 96, 7, stride=2), nn.ReLU(inplace=True), _pool()]
        channels = 96
        for index, (squeeze, expand1x1, expand3x3) in enumerate(fires):
            number = index + 2                      # the paper's names: fire2 .. fire9
            layers.append(Fire(channels, squeeze, expand1x1, expand3x3, _bypass_of(number, bypass)))
            channels = expand1x1 + expand3x3
            if number in (4, 8):                    # max pools after fire4 and fire8 (Table 1)
                layers.append(_pool())
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Conv2d(channels, num_classes, 1), nn.ReLU(inplace=True),
                                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The fillers of the authors' train_val.prototxt: Caffe's "xavier" (uniform in +-sqrt(3 / fan_in),
        not Glorot's fan-in-plus-fan-out form), conv10 Gaussian with standard deviation 0.01, biases 0."""
        conv10 = self.classifier[1]
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                if module is conv10:
                    nn.init.normal_(module.weight, std=0.01)
                else:
                    nn.init.kaiming_uniform_(module.weight, nonlinearity="linear")  # bound sqrt(3 / fan_in)
                nn.init.zeros_(module.bias)

    @classmethod
    def from_config(cls, config, num_classes: int | None = None) -> "SqueezeNet":
        """The network of a runner ``Config``; ``num_classes`` (the data's) overrides the dataset's usual count."""
        return cls(fire_widths(config), num_classes=num_classes or config.num_classes, bypass=config.bypass,
                   dropout=config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised images -> (B, num_classes) logits."""
        return self.classifier(self.features(x))


def _bypass_of(number: int, bypass: str) -> str:
    """The bypass around fire``number``: simple ones where the widths agree (the odd modules, fire3 .. fire9),
    and with ``complex`` a 1x1 convolution around the others (Fig. 2)."""
    if bypass == "none":
        return "none"
    if number % 2:
        return "simple"
    return "complex" if bypass == "complex" else "none"


def _pool() -> nn.Module:
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


def architecture(config) -> tuple[nn.Module, torch.Tensor, dict[str, float]]:
    """The preset's SqueezeNet (eval mode), one 227x227 image, and ``alexnet_ratio``: the parameters of the
    paper's AlexNet baseline over SqueezeNet's ("50x fewer parameters", abstract).

    The baseline is the AlexNet that Sec. 4 and Table 2 compare with, Caffe's reference model of the two-tower
    layout (``AlexNet(groups=2)``, 61M parameters, 240 MB, Deep Compression's starting point), with as many
    classes as this network.
    """
    model = SqueezeNet.from_config(config).eval()
    baseline = AlexNet(config.num_classes, groups=2)
    ratio = sum(p.numel() for p in baseline.parameters()) / sum(p.numel() for p in model.parameters())
    size = config.input_size
    return model, torch.zeros(1, 3, size, size), {"alexnet_ratio": ratio}
