"""Train a Binary-Weight-Network or XNOR-Network with the classification family's loop, then, for XNOR
networks, run the test set through the XNOR-popcount path and compare it with the float path.

XNOR-Net, arXiv:1603.05279: the recipe is in config.py; ``runners/classification/train.fit`` trains. The
agreement check runs on the CPU in float32 after training (``model.packed_copy``): the share of test images
whose predicted class is the same on both paths (``xnor_path_agreement``, %), and the largest difference of
their logits (``xnor_path_max_diff``), which is 0 when the integer dot products match.
"""

import torch

from runners.classification.augment import normalise
from runners.classification.data import load
from runners.classification.train import eval_batches, fit
from runners.xnor_net.model import build, memory_saving, packed_copy


@torch.no_grad()
def xnor_agreement(model: torch.nn.Module, data, config) -> tuple[float, float]:
    """(% of test images with the same prediction, largest |logit difference|) of the float and packed paths."""
    float_model = model.float().cpu().eval()  # training is over: the trained model itself is the float path
    packed = packed_copy(float_model)
    mean, std = torch.tensor(data.mean), torch.tensor(data.std)
    same, total, worst = 0, 0, 0.0
    for images, _ in eval_batches(data.test_images, data.test_labels, config, torch.device("cpu")):
        x = normalise(images.cpu(), mean, std)
        a, b = float_model(x), packed(x)
        same += int((a.argmax(1) == b.argmax(1)).sum())
        total += len(x)
        worst = max(worst, float((a - b).abs().max()))
    return 100.0 * same / total, worst


def main(config, run) -> dict[str, float]:
    data = load(config, run.data_dir, run=run)
    model = build(config, num_classes=data.num_classes)
    run.record(arch=config.arch, mode=config.mode, input_scaling=config.input_scaling,
               memory_saving=memory_saving(model))
    final = fit(config, run, model, data=data)
    if config.mode == "xnor" and data.decoded:
        agreement, difference = xnor_agreement(model, data, config)
        run.record(xnor_path_agreement=agreement, xnor_path_max_diff=difference)
        final.update(xnor_path_agreement=agreement, xnor_path_max_diff=difference)
    return final
