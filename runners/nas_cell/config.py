"""Configuration of the NAS-cell runner (arXiv 1611.01578, Sec. 4.2 and Table 2, word-level PTB).

One preset per Table 2 row of the paper's own models ("Neural Architecture Search with base 8", with and
without shared embeddings). The network is 2 layers of the cell (the search's child models had two
layers, Sec. 4.2); the paper's text that could be read gives no hidden size, so each preset's size is
the one whose parameter count is the row's (README.md, "Recipe": one size, 740, gives both the 25M row
with shared embeddings and the 32M row without them). The paper tuned the final models' learning rate,
initialisation, dropout and decay epoch by grid search without printing them; the training fields are
the family's Zaremba et al. medium recipe (39 epochs, SGD at lr 1 decayed by 1.2 from epoch 6, batch
20 x 35, clip 5) with variational dropout 0.5, an assumption the README states.
"""

from dataclasses import dataclass, replace

from runners.language_model import config as language_model


@dataclass(frozen=True)
class Config(language_model.Config):
    """The family's fields with the 54M row's size as defaults (its best model, 62.4 test perplexity)."""

    embedding_size: int = 1150
    hidden_size: int = 1150
    layers: int = 2
    tie_weights: bool = True


PAPER = Config()

PRESETS: dict[str, Config] = {
    # CPU-sized: a small 2-layer NAS-cell model, three passes over PTB's whole training text with the QRNN
    # cpu preset's SGD recipe (lr 1 on the summed loss, halved for the last epoch), evaluated on the whole
    # validation and test text (README, "Our numbers").
    "cpu": replace(PAPER, embedding_size=200, hidden_size=200, dropout=0.2, epochs=3, optimizer="sgd", lr=1.0,
                   clip=5.0, schedule="epoch", decay_start=2, lr_decay=0.5),
    # The cell is a Python loop over time steps: the smoke run keeps the streams short (60 steps an epoch).
    "smoke": replace(PAPER, embedding_size=16, hidden_size=16, epochs=2, train_limit=480, eval_limit=160,
                     batch_size=8, bptt=10, eval_batch_size=8),
    "paper": PAPER,
    "paper-25m": replace(PAPER, embedding_size=740, hidden_size=740),
    "paper-32m": replace(PAPER, embedding_size=740, hidden_size=740, tie_weights=False),
}
