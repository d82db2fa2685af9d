"""SqueezeNet (Iandola, Han, Moskewicz, Ashraf, Dally, Keutzer, "SqueezeNet: AlexNet-level accuracy with 50x
fewer parameters and <0.5MB model size", arXiv 1602.07360): Fire modules, the Table 1 network and the
bypass variants of Table 6, on the classification family.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="squeezenet",
    paper="1602.07360",
    summary="SqueezeNet v1.0: Fire modules (squeeze 1x1, expand 1x1 + 3x3), simple/complex bypass, vs AlexNet",
    datasets=("imagenet", "generated"),
    cpu_presets=("smoke",),
    cpu_default="smoke",
    entrypoint="runners.squeezenet.train:main",
    config="runners.squeezenet.config",
    architecture="runners.squeezenet.model:architecture",
    resources=Resources(gpus=1, cpus=16, mem_gb=64, time_min=48 * 60),
)
