"""Train a ResNet with stochastic depth (or at constant depth) with the classification family's loop.

Deep Networks with Stochastic Depth, arXiv:1603.09382, Sec. 4: the network of the preset, survival draws
seeded by the run's seed (a resumed run drops the same blocks), trained and evaluated by
``runners/classification/train.fit`` (test error at the epoch of lowest validation error).
"""

from runners.classification import resnet
from runners.classification.train import fit


def main(config, run) -> dict[str, float]:
    model = resnet.from_config(config, seed=run.seed)
    run.record(residual_blocks=len(model.survival), expected_blocks=resnet.expected_depth(model.survival))
    return fit(config, run, model)
