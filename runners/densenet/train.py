"""DenseNet on the classification family's loop (``runners/classification/train.py``): the recipe of
Sec. 4.2 is the family's default, so the runner only builds the network for the data's classes."""

from runners.classification.data import load
from runners.classification.train import fit
from runners.densenet.model import from_config


def main(config, run) -> dict[str, float]:
    """Train the preset's DenseNet and return the family's final metrics (``test_error`` ...)."""
    data = load(config, run.data_dir, run=run)
    model = from_config(config, data.num_classes)
    return fit(config, run, model, data=data)
