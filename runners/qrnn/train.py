"""Train the QRNN (or its LSTM baseline) on PTB with the family's loop, then time one QRNN layer against
cuDNN's LSTM layer of the same size (Bradbury et al. 2016, arXiv 1611.01576, Sec. 3.2 and Fig. 4)."""

import statistics
import time

import torch

from runners.language_model.train import fit
from runners.qrnn.config import Config
from runners.qrnn.model import QRNNLayer, build


def time_forward_backward(layer: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    """Median seconds of one forward + backward pass of ``layer`` on ``x`` (after two warm-up passes)."""
    def once() -> float:
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        start = time.perf_counter()
        output = layer(x)[0]
        output.sum().backward()
        if x.is_cuda:
            torch.cuda.synchronize(x.device)
        return time.perf_counter() - start

    once(), once()
    return statistics.median(once() for _ in range(repeats))


def speed_comparison(config: Config, device: torch.device) -> dict[str, float]:
    """The QRNN layer's speed-up over an equal-sized LSTM layer (cuDNN on CUDA), forward and backward on
    the same (speed_batch, speed_length, speed_hidden) input: the comparison of Fig. 4 (right), whose
    largest ratio is the abstract's "up to 16 times faster"."""
    x = torch.randn(config.speed_batch, config.speed_length, config.speed_hidden, device=device, requires_grad=True)
    qrnn = QRNNLayer(config.speed_hidden, config.speed_hidden, config.window, 0.0, config.scan_chunk).to(device)
    lstm = torch.nn.LSTM(config.speed_hidden, config.speed_hidden, batch_first=True).to(device)
    seconds = {name: time_forward_backward(layer, x, config.speed_repeats)
               for name, layer in (("qrnn", qrnn), ("lstm", lstm))}
    return {"qrnn_layer_ms": 1000 * seconds["qrnn"], "lstm_layer_ms": 1000 * seconds["lstm"],
            "speedup_over_lstm": seconds["lstm"] / seconds["qrnn"]}


def main(config: Config, run) -> dict[str, float]:
    final = fit(config, run, build(config))
    if config.speed_repeats:
        device = torch.device(run.device)
        final.update(speed_comparison(config, device))
        run.record(speed_input=[config.speed_batch, config.speed_length, config.speed_hidden],
                   lstm_backend="cuDNN" if device.type == "cuda" else "PyTorch CPU")
    return final
