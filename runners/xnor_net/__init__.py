"""XNOR-Net (Rastegari, Ordonez, Redmon, Farhadi, "XNOR-Net: ImageNet Classification Using Binary Convolutional
Neural Networks", arXiv 1603.05279): Binary-Weight-Networks and XNOR-Networks on AlexNet and ResNet-18, with an
XNOR-popcount inference path, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="xnor-net",
    paper="1603.05279",
    summary="Binary-Weight-Networks and XNOR-Nets (alpha-scaled binary weights, K-scaled binary inputs), XNOR inference",
    datasets=("imagenet", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.xnor_net.train:main",
    config="runners.xnor_net.config",
    architecture="runners.xnor_net.model:architecture",
    resources=Resources(gpus=1, cpus=16, mem_gb=64, time_min=72 * 60),
)
