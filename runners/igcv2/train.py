"""Train an IGCV2 network with the classification family's loop (``runners/classification/train.fit``); the
data is loaded first so that the classifier has as many outputs as the data has classes."""

from runners.classification.data import load
from runners.classification.train import fit
from runners.igcv2.model import IGCV2


def main(config, run) -> dict[str, float]:
    """Train the preset's IGCV2 network and return the family's final metrics (``test_error`` ...)."""
    data = load(config, run.data_dir, run=run)
    model = IGCV2.from_config(config, num_classes=data.num_classes)
    run.record(igcv2_blocks=len(model.blocks()))
    return fit(config, run, model, data=data)
