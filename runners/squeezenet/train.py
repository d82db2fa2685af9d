"""Train SqueezeNet with the classification family's loop.

SqueezeNet, arXiv:1602.07360: the recipe is the authors' Caffe solver (see config.py), run by
``runners/classification/train.fit``. The data is loaded first so that conv10 has as many filters as the
data has classes.
"""

from runners.classification.data import load
from runners.classification.train import fit
from runners.squeezenet.model import SqueezeNet, fire_widths


def main(config, run) -> dict[str, float]:
    data = load(config, run.data_dir, run=run)
    model = SqueezeNet.from_config(config, num_classes=data.num_classes)
    run.record(fire_modules=[list(f) for f in fire_widths(config)], bypass=config.bypass)
    return fit(config, run, model, data=data)
