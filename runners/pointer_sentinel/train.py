"""Train the pointer sentinel-LSTM on PTB with the family's loop (its output is already a log-probability
mixture, which ``runners.language_model.train.sequence_loss`` takes as it is)."""

from runners.language_model.train import fit
from runners.pointer_sentinel.config import Config
from runners.pointer_sentinel.model import build


def main(config: Config, run) -> dict[str, float]:
    return fit(config, run, build(config))
