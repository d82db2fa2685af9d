"""Train a ResNeXt with the classification family's loop.

Aggregated Residual Transformations for Deep Neural Networks, arXiv:1611.05431: Sec. 4 (ImageNet) and
Appendix A (CIFAR) give the recipes the presets carry; ``runners/classification/train.fit`` runs them.
The data is loaded first so that the classifier has as many outputs as the data has classes.
"""

from runners.classification.data import load
from runners.classification.train import fit
from runners.resnext.model import ResNeXt


def main(config, run) -> dict[str, float]:
    data = load(config, run.data_dir, run=run)
    model = ResNeXt.from_config(config, num_classes=data.num_classes)
    run.record(stage_blocks=list(config.stage_blocks), template=f"{config.cardinality}x{config.base_width}d")
    return fit(config, run, model, data=data)
