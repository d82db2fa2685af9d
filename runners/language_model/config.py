"""The language-model family's base configuration: data, network size, the BPTT loop and its optimiser,
the fields every language-model runner shares (``runners/language_model/train.py`` reads them).

Defaults are the "medium" recipe of Zaremba et al. 2014 (arXiv 1409.2329, Sec. 4.1), which the QRNN,
Pointer Sentinel and NAS papers start from: 2 layers of 650 units, dropout 0.5, batch 20, 35 steps of
BPTT, SGD at lr 1 for 6 epochs then divided by 1.2 each epoch, 39 epochs, gradient norm clipped at 5,
weights uniform in [-0.05, 0.05]. A paper's ``Config`` extends this one (redeclaring a field changes only
its default), so ``--set`` stays flat and type-checked. No torch here: kb imports config modules to
list presets.
"""

from dataclasses import dataclass

from kb.runs.config import check

# Vocabulary of each corpus as its released training file defines it (data.py builds the same from the
# files and refuses a folder that disagrees): PTB's 10k words with <eos>; the 50 symbols of character PTB
# (data.py: letters, digits and punctuation of the word-level text, "_" between words, <eos>); WikiText's
# published sizes (Merity et al. 2016, Table 1) with <eos>.
VOCAB_SIZES = {"ptb": 10000, "ptb-char": 50, "wikitext2": 33278, "wikitext103": 267735}
DATASETS = tuple(VOCAB_SIZES)
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("epoch", "plateau")
LOSSES_OVER_TIME = ("sum", "mean")


@dataclass(frozen=True)
class Config:
    """One language-model training run: what every runner of the family shares.

    Attributes:
        dataset: ptb (Mikolov's word-level PTB), ptb-char (character PTB derived from the same files),
            wikitext2 or wikitext103 (``wiki.*.tokens``).
        train_limit: train on the first N tokens of the training text only (0 = all of it).
        eval_limit: evaluate on the first N tokens of the validation and test text (0 = all; a claim needs all).
        embedding_size, hidden_size, layers: the network's size (a paper's runner reads them).
        dropout: dropout rate between layers (each paper says where).
        tie_weights: share the embedding matrix with the softmax weights (needs embedding = last hidden size).
        init_range: weights drawn uniformly in [-init_range, init_range] where a paper says so.
        batch_size: parallel training streams.
        bptt: steps of truncated back-propagation through time.
        variable_bptt: draw each segment's length around ``bptt`` (AWD-LSTM, arXiv 1708.02182 Sec. 4.1:
            ``bptt`` with p = 0.95 else ``bptt / 2``, then N(that, 5), at least 5), with lr scaled by
            length / bptt under a ``mean`` loss; a function of (seed, epoch), so a resumed run draws the same lengths.
        eval_batch_size: parallel streams when evaluating (state carried across segments).
        epochs: passes over the training text.
        optimizer: sgd or adam.
        lr, momentum, weight_decay: the optimiser (momentum for SGD only; weight decay is L2).
        clip: rescale gradients whose global norm exceeds this (0 = no clipping).
        loss_over_time: ``sum`` (Zaremba et al.'s convention, which the QRNN paper's Chainer code shares:
            the cross-entropy averaged over the batch and summed over the segment's steps, the loss their
            lr = 1 and clipping thresholds refer to) or ``mean`` (averaged over steps too, as AWD-LSTM's lr 30).
        schedule: ``epoch`` (lr times ``lr_decay`` every epoch after the first ``decay_start``) or
            ``plateau`` (lr times ``lr_decay`` after an epoch whose validation perplexity is no better
            than the best so far).
        lr_decay: the factor of either schedule.
        decay_start: epochs at the full rate before the ``epoch`` schedule decays.
    """

    dataset: str = "ptb"
    train_limit: int = 0
    eval_limit: int = 0
    embedding_size: int = 650
    hidden_size: int = 650
    layers: int = 2
    dropout: float = 0.5
    tie_weights: bool = False
    init_range: float = 0.05
    batch_size: int = 20
    bptt: int = 35
    variable_bptt: bool = False
    eval_batch_size: int = 10
    epochs: int = 39
    optimizer: str = "sgd"
    lr: float = 1.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    clip: float = 5.0
    loss_over_time: str = "sum"
    schedule: str = "epoch"
    lr_decay: float = 1 / 1.2
    decay_start: int = 6

    def __post_init__(self) -> None:
        check(self, choices={"dataset": DATASETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES,
                       "loss_over_time": LOSSES_OVER_TIME},
              at_least={"train_limit": 0, "eval_limit": 0, "layers": 1, "embedding_size": 1, "hidden_size": 1,
                        "batch_size": 1, "bptt": 1, "eval_batch_size": 1, "epochs": 1, "momentum": 0,
                        "weight_decay": 0, "clip": 0, "decay_start": 0, "dropout": 0, "init_range": 0},
              above={"lr": 0, "lr_decay": 0}, below={"dropout": 1})

    @property
    def vocab_size(self) -> int:
        """Words (or characters) of the dataset's vocabulary: the softmax size."""
        return VOCAB_SIZES[self.dataset]
