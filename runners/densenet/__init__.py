"""DenseNet (Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", arXiv 1608.06993).

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="densenet",
    paper="1608.06993",
    summary="DenseNet and DenseNet-BC on CIFAR-10/100 and SVHN (Table 2) and DenseNet-121/169/201/264 on ImageNet "
            "(Tables 1, 3), on the classification family's loop",
    datasets=("cifar10", "cifar100", "svhn", "imagenet", "generated"),
    cpu_presets=("smoke",),
    entrypoint="runners.densenet.train:main",
    config="runners.densenet.config",
    architecture="runners.densenet.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=32, time_min=24 * 60),
)
