"""ResNeXt (Xie, Girshick, Dollár, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks",
arXiv 1611.05431): ResNeXt-29 on CIFAR and ResNeXt-50/101 on ImageNet, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="resnext",
    paper="1611.05431",
    summary="ResNeXt: grouped-convolution bottlenecks (cardinality x width), CIFAR ResNeXt-29 and ImageNet 50/101",
    datasets=("cifar10", "cifar100", "imagenet", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.resnext.train:main",
    config="runners.resnext.config",
    architecture="runners.resnext.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=64, time_min=48 * 60),
)
