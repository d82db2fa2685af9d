"""Configuration of the pointer sentinel-LSTM runner (arXiv 1609.07843, Sec. 5.1, PTB).

The defaults are the paper's PTB recipe as README.md ("Recipe") gives it with its sources: the "medium"
2-layer LSTM of 650 units, a pointer window of L = 100 words, 100 steps of BPTT, batch 32, variational
(locked) dropout 0.5 on the input of each LSTM layer and on the last layer's output, gradients rescaled
above global norm 1, the learning rate halved after an epoch that does not improve validation
perplexity, at most 64 epochs. SGD at lr 1 is Zaremba et al.'s medium setting, which the paper starts from.
"""

from dataclasses import dataclass, replace

from kb.runs.config import check
from runners.language_model import config as language_model


@dataclass(frozen=True)
class Config(language_model.Config):
    """The family's fields plus the pointer's.

    Attributes:
        pointer: mix in the pointer (False: the same LSTM with its softmax alone, the paper's baseline form).
        window: L, the number of most recent words (the current one included) the pointer may copy (Sec. 2.1).
    """

    pointer: bool = True
    window: int = 100
    embedding_size: int = 650
    hidden_size: int = 650
    layers: int = 2
    dropout: float = 0.5
    batch_size: int = 32
    bptt: int = 100
    epochs: int = 64
    lr: float = 1.0
    clip: float = 1.0
    schedule: str = "plateau"
    lr_decay: float = 0.5

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"window": 1})


PAPER = Config()

PRESETS: dict[str, Config] = {
    # CPU-sized: a small pointer sentinel-LSTM, three passes over PTB's whole training text with the
    # QRNN cpu preset's SGD recipe (lr 1 on the summed loss, halved for the last epoch), evaluated on the
    # whole validation and test text; the pointer keeps the paper's window of 100 words (README, "Our numbers").
    "cpu": replace(PAPER, embedding_size=200, hidden_size=200, dropout=0.2, batch_size=20, bptt=35, epochs=3,
                   clip=5.0, schedule="epoch", decay_start=2, lr_decay=0.5),
    "smoke": replace(PAPER, embedding_size=16, hidden_size=16, window=10, epochs=2, train_limit=1000,
                     eval_limit=200, batch_size=4, bptt=25, eval_batch_size=4),
    "paper": PAPER,
    "paper-lstm": replace(PAPER, pointer=False),
}
