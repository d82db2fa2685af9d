"""Deep Networks with Stochastic Depth (arXiv:1603.09382): ResNet-110/152/1202 with residual blocks dropped
at random in training, against the same networks at constant depth, on CIFAR-10/100 and SVHN."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="stochastic-depth",
    paper="1603.09382",
    summary="ResNets trained with stochastic depth (linear-decay survival, p_L = 0.5) vs constant depth on CIFAR/SVHN",
    datasets=("cifar10", "cifar100", "svhn", "generated"),
    cpu_default="smoke",
    entrypoint="runners.stochastic_depth.train:main",
    config="runners.stochastic_depth.config",
    architecture="runners.stochastic_depth.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=32, time_min=24 * 60),
)
