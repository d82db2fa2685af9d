"""Residual Networks of Residual Networks (arXiv:1608.02908): RoR-3 shortcut levels on Wide ResNets and
pre-activation ResNets, trained with stochastic depth, on CIFAR-10/100 and SVHN."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="ror",
    paper="1608.02908",
    summary="RoR-3 (root, stage and block shortcuts) on WRN-58-4 and pre-activation ResNets with stochastic depth",
    datasets=("cifar10", "cifar100", "svhn", "generated"),
    cpu_default="smoke",
    entrypoint="runners.ror.train:main",
    config="runners.ror.config",
    architecture="runners.ror.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=32, time_min=48 * 60),
)
