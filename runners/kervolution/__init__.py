"""Kervolutional Neural Networks (arXiv:1904.03955): LeNet-5 KNN vs CNN on MNIST."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="kervolution",
    paper="1904.03955",
    summary="LeNet-5 with kervolution (polynomial, Gaussian, Lp kernels) against the CNN on MNIST",
    datasets=("mnist",),
    cpu_presets=("default", "smoke"),
    entrypoint="runners.kervolution.train:main",
    config="runners.kervolution.config",
    architecture="runners.kervolution.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=8, time_min=60),
)
