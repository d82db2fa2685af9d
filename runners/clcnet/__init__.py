"""clcNet (Zhang, "clcNet: Improving the Efficiency of Convolutional Neural Network using Channel Local
Convolutions", arXiv 1712.06145): CLC blocks (interlaced grouped 3x3 convolution, then a grouped 1x1
convolution) in the clcNet-A / clcNet-B ImageNet networks, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="clcnet",
    paper="1712.06145",
    summary="clcNet: channel local convolution blocks (interlaced grouped conv + grouped 1x1) with a full channel "
            "receptive field; clcNet-A/B on ImageNet",
    datasets=("imagenet", "cifar10", "cifar100", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.clcnet.train:main",
    config="runners.clcnet.config",
    architecture="runners.clcnet.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=64, time_min=72 * 60),
)
