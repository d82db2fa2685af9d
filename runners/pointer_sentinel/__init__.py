"""Pointer Sentinel Mixture Models (Merity, Xiong, Bradbury, Socher; arXiv 1609.07843): the pointer
sentinel-LSTM on word-level PTB (Sec. 2 and 5.1).

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="pointer-sentinel",
    paper="1609.07843",
    summary="Pointer sentinel-LSTM: an LSTM softmax mixed with a pointer over the last L words, gated by a sentinel",
    datasets=("ptb",),
    cpu_presets=("smoke", "cpu"),
    cpu_default="cpu",
    entrypoint="runners.pointer_sentinel.train:main",
    config="runners.pointer_sentinel.config",
    architecture="runners.pointer_sentinel.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=16, time_min=600),
)
