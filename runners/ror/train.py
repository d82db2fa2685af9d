"""Train a RoR network (with stochastic depth) with the classification family's loop.

RoR, arXiv:1608.02908: the preset's network, survival draws seeded by the run's seed (a resumed run drops
the same blocks), trained and evaluated by ``runners/classification/train.fit``.
"""

from runners.classification import resnet
from runners.classification.train import fit


def main(config, run) -> dict[str, float]:
    model = resnet.from_config(config, seed=run.seed)
    run.record(residual_blocks=len(model.survival), expected_blocks=resnet.expected_depth(model.survival))
    return fit(config, run, model)
