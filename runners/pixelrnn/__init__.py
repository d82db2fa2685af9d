"""Pixel Recurrent Neural Networks (arXiv:1601.06759): PixelCNN, Row LSTM and Diagonal BiLSTM on binarized MNIST.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="pixelrnn",
    paper="1601.06759",
    summary="PixelCNN, Row LSTM and Diagonal BiLSTM (masked convolutions, skewing, residual connections): "
            "NLL in nats on MNIST binarized with a fixed seed",
    datasets=("mnist",),
    cpu_presets=("cpu", "smoke"),
    cpu_default="cpu",
    entrypoint="runners.pixelrnn.train:main",
    config="runners.pixelrnn.config",
    architecture="runners.pixelrnn.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=16, time_min=24 * 60),
)
