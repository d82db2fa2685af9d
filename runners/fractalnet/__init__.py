"""FractalNet (Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep Neural Networks without Residuals",
arXiv 1605.07648): the fractal expansion rule, joins by element-wise mean, local and global drop-path, and the
deepest column evaluated alone, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="fractalnet",
    paper="1605.07648",
    summary="FractalNet: self-similar columns joined by means, local/global drop-path, deepest-column subnetwork",
    datasets=("cifar10", "cifar100", "svhn", "imagenet", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.fractalnet.train:main",
    config="runners.fractalnet.config",
    architecture="runners.fractalnet.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=32, time_min=72 * 60),
)
