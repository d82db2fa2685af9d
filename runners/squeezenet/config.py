"""Configuration of the SqueezeNet runner (arXiv 1602.07360). Defaults are SqueezeNet v1.0, the network of
Table 1 and Sec. 3.3's metaparameters, with the training recipe of the authors' Caffe solver
(github.com/forresti/SqueezeNet, ``SqueezeNet_v1.0/solver.prototxt`` and ``train_val.prototxt``): batch
512, lr 0.04 decreasing linearly to 0 ("poly", power 1) over 170,000 iterations (68 epochs of ImageNet's
1,281,167 training images), momentum 0.9, weight decay 2e-4, 227x227 crops.

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.classification import config as classification

BYPASSES = ("none", "simple", "complex")


@dataclass(frozen=True)
class Config(classification.Config):
    """One SqueezeNet training run: the network's metaparameters (Sec. 3.3, Fig. 3) on the family's settings.

    Fire module i (0..7, fire2 .. fire9) expands to e_i = base_e + incr_e * floor(i / freq) channels, a
    share pct3x3 of them 3x3 filters, from s_i = squeeze_ratio * e_i squeeze filters.

    Attributes:
        base_e: expand filters of the first Fire module (128).
        incr_e: expand filters added every ``freq`` modules (128).
        freq: Fire modules between increases (2).
        pct3x3: share of 3x3 filters among the expand filters (0.5).
        squeeze_ratio: squeeze filters over expand filters, SR (0.125).
        bypass: Table 6's variants: none, simple (identity around fire3, 5, 7, 9) or complex (also a 1x1
            convolution around fire2, 4, 6, 8, Sec. 6, Fig. 2).
        deep_compression: prune and quantise the trained model (Deep Compression, Sec. 4): not implemented;
            the field exists so that the paper's compressed-size claims name the setting they need.
    """

    base_e: int = 128
    incr_e: int = 128
    freq: int = 2
    pct3x3: float = 0.5
    squeeze_ratio: float = 0.125
    bypass: str = "none"
    deep_compression: bool = False
    dataset: str = "imagenet"
    image_size: int = 227
    epochs: int = 68
    batch_size: int = 512
    lr: float = 0.04
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 2e-4
    schedule: str = "poly"
    # Dropout 0.5 after fire9 (Table 1, Sec. 3.3).
    dropout: float = 0.5
    eval_batch_size: int = 250

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"bypass": BYPASSES}, at_least={"base_e": 2, "incr_e": 0, "freq": 1},
              above={"pct3x3": 0, "squeeze_ratio": 0}, below={"pct3x3": 1})
        if self.deep_compression:
            raise BadInput("deep_compression=true: Deep Compression (pruning and 6- or 8-bit quantisation of the "
                           "trained weights, Sec. 4) is not implemented by this runner, so the paper's 0.47 MB / "
                           "510x claims are not reproducible here")


PAPER = Config()

PRESETS: dict[str, Config] = {
    # The paper's network and recipe (a GPU run on ImageNet; without a GPU, kb runs `smoke`).
    "default": PAPER,
    # Table 1 / Table 2: 1,248,424 parameters, 4.8 MB, 57.5 / 80.3 top-1 / top-5 accuracy.
    "imagenet": PAPER,
    # Table 6: 60.4 / 82.5, 4.8 MB.
    "simple-bypass": replace(PAPER, bypass="simple"),
    # Table 6: 58.8 / 82.0, 7.7 MB.
    "complex-bypass": replace(PAPER, bypass="complex"),
    # CPU, about 2 s: the complex-bypass network (every code path) at 1/8 of the widths on 32-pixel images.
    "smoke": replace(PAPER, dataset="generated", bypass="complex", base_e=16, incr_e=16, epochs=2, batch_size=16,
                     lr=0.01, generated_train=64, generated_test=32, generated_size=32, eval_batch_size=32, log_every=1,
                     workers=0),
}
