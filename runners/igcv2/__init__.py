"""IGCV2 (Xie, Wang, Zhang, Lai, Hong, Qi, "IGCV2: Interleaved Structured Sparse Convolutional Neural
Networks", arXiv 1804.06202): blocks of a channel-wise 3x3 convolution and two interleaved grouped 1x1
convolutions meeting the complementary condition, in a CIFAR network and the MobileNet-like ImageNet network
with its width multipliers, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="igcv2",
    paper="1804.06202",
    summary="IGCV2: interleaved structured sparse convolutions (channel-wise 3x3 + two interleaved group 1x1) "
            "under the complementary condition; CIFAR and MobileNet-like ImageNet networks",
    datasets=("cifar10", "cifar100", "imagenet", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.igcv2.train:main",
    config="runners.igcv2.config",
    architecture="runners.igcv2.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=64, time_min=72 * 60),
)
