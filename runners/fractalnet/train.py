"""Train FractalNet with the classification family's loop, evaluating its deepest column alone every epoch.

FractalNet, arXiv:1605.07648: the recipe is in config.py; ``runners/classification/train.fit`` trains and,
through ``subnetworks``, reports ``deepest_column_test_error`` (Table 1's "deepest column alone": the
trained network with every join passing only its deepest column).
"""

from runners.classification.data import load
from runners.classification.train import fit
from runners.fractalnet.model import deepest_column, from_config


def main(config, run) -> dict[str, float]:
    data = load(config, run.data_dir, run=run)
    model = from_config(config, num_classes=data.num_classes, seed=run.seed)
    run.record(columns=config.columns, blocks=config.blocks, deepest_path_convolutions=config.blocks * 2 ** (
        config.columns - 1), joins=len(model.join_sizes), drop_path=config.drop_path)
    return fit(config, run, model, data=data, subnetworks={"deepest_column": deepest_column})
