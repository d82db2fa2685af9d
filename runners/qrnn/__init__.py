"""Quasi-Recurrent Neural Networks (Bradbury, Merity, Xiong, Socher; arXiv 1611.01576): the PTB language
model of Sec. 3.2 and its LSTM baseline.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="qrnn",
    paper="1611.01576",
    summary="QRNN (masked convolution + fo-pooling, zoneout) against an LSTM of the same size on word-level PTB",
    datasets=("ptb",),
    cpu_presets=("smoke", "cpu"),
    cpu_default="cpu",
    entrypoint="runners.qrnn.train:main",
    config="runners.qrnn.config",
    architecture="runners.qrnn.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=16, time_min=240),
)
