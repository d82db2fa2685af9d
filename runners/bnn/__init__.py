"""Binarized Neural Networks (arXiv:1602.02830): the binary MNIST MLP, packed bits, XNOR inference."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="bnn",
    paper="1602.02830",
    summary="Binarized MLP (+-1 weights and activations) on MNIST, packed bits and XNOR-popcount inference",
    datasets=("mnist",),
    cpu_presets=("default", "smoke"),
    entrypoint="runners.bnn.train:main",
    config="runners.bnn.config",
    architecture="runners.bnn.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=16, time_min=24 * 60),
)
