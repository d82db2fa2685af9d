"""Train the NAS cell language model on PTB with the family's loop."""

from runners.language_model.train import fit
from runners.nas_cell.config import Config
from runners.nas_cell.model import build


def main(config: Config, run) -> dict[str, float]:
    return fit(config, run, build(config))
