"""Configuration of the QRNN runner (arXiv 1611.01576, Sec. 3.2, the PTB language model).

The defaults are the paper's "medium" QRNN with zoneout as Sec. 3.2 gives it (README, "Recipe", says
which parts could be checked in the paper's text): 2 layers of 640 units, filter width k = 2, fo-pooling,
zoneout 0.1 on the forget gates, batch 20 of 105 steps, SGD without momentum at lr 1 for 6 epochs then
times 0.95 each epoch, 72 epochs, L2 2e-4, gradients rescaled above norm 10. Dropout 0.5 between layers
is Zaremba et al.'s medium setting, which the section says the experiments follow.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.language_model import config as language_model

MODELS = ("qrnn", "lstm")


@dataclass(frozen=True)
class Config(language_model.Config):
    """The family's fields plus the QRNN's.

    Attributes:
        model: ``qrnn``, or ``lstm`` (the paper's baseline: the same sizes, cuDNN's LSTM on CUDA).
        window: the masked convolution's filter width k (Sec. 2, Eq. 1-2 use k = 2).
        zoneout: probability of setting a forget gate to 1 while training (Sec. 2.1; 0 = none).
        scan_chunk: time steps per block of the fo-pooling scan on CUDA (model.fo_pool).
        speed_batch, speed_length, speed_hidden: the speed comparison's one layer and input (0 repeats =
            not measured): QRNN vs cuDNN LSTM forward + backward, as in Fig. 4 (right).
        speed_repeats: timed repetitions of each (after warm-up).
    """

    model: str = "qrnn"
    window: int = 2
    zoneout: float = 0.1
    embedding_size: int = 640
    hidden_size: int = 640
    layers: int = 2
    dropout: float = 0.5
    batch_size: int = 20
    bptt: int = 105
    epochs: int = 72
    lr: float = 1.0
    lr_decay: float = 0.95
    decay_start: int = 6
    weight_decay: float = 2e-4
    clip: float = 10.0
    scan_chunk: int = 32
    speed_batch: int = 8
    speed_length: int = 512
    speed_hidden: int = 320
    speed_repeats: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"model": MODELS},
              at_least={"window": 1, "zoneout": 0, "scan_chunk": 1, "speed_batch": 1, "speed_length": 1,
                        "speed_hidden": 1, "speed_repeats": 0},
              below={"zoneout": 1})


PAPER = Config(speed_repeats=20)

PRESETS: dict[str, Config] = {
    # CPU-sized: a small QRNN on the whole of PTB, about 20 minutes on one core (README, "Our numbers").
    "cpu": replace(PAPER, embedding_size=200, hidden_size=200, dropout=0.2, bptt=35, epochs=2, decay_start=1,
                   lr_decay=0.5, weight_decay=0.0, clip=5.0, speed_repeats=3),
    "smoke": replace(PAPER, embedding_size=16, hidden_size=16, epochs=2, train_limit=1000, eval_limit=200,
                     batch_size=4, bptt=25, eval_batch_size=4, speed_repeats=0),
    "paper": PAPER,
    "paper-nozoneout": replace(PAPER, zoneout=0.0),
    "paper-lstm": replace(PAPER, model="lstm"),
}
