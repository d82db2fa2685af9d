"""Training speed of the language-model family's networks, and the QRNN paper's layer comparison.

Two tables, on one device:
1. tokens/s of a training step (forward, backward, clipping, SGD) of the QRNN and the LSTM language model
   of the same size (default: the QRNN paper's PTB model, 2 x 640, batch 20 x 105 steps; Sec. 3.2, Fig. 4 left);
2. one QRNN layer against one LSTM layer (cuDNN on CUDA) of ``--layer-hidden`` units, forward + backward,
   over a grid of batch sizes and sequence lengths: the speed-up of Fig. 4 (right).

    python tests/benchmarks/bench_language_model.py --device cuda
    python tests/benchmarks/bench_language_model.py --device cpu --hidden 64 --bptt 20 --steps 2 --grid 4x16
"""

import argparse
import time
from dataclasses import replace

import torch

from runners.language_model.train import sequence_loss
from runners.qrnn.config import PRESETS
from runners.qrnn.model import build
from runners.qrnn.train import speed_comparison


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_tokens_per_s(config, device: torch.device, steps: int) -> float:
    """Tokens per second of full training steps on random tokens (after two warm-up steps)."""
    model = build(config).to(device).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    tokens = torch.randint(0, config.vocab_size, (config.batch_size, config.bptt + 1), device=device)

    def step() -> None:
        output, _ = model(tokens[:, :-1])
        loss = sequence_loss(output, tokens[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip)
        optimizer.step()

    step(), step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return steps * config.batch_size * config.bptt / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--hidden", type=int, default=640)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--bptt", type=int, default=105)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--layer-hidden", type=int, default=320)
    parser.add_argument("--grid", default="8x32,8x128,8x512,16x512,32x512,64x128,256x32",
                        help="batch x sequence length cells of the layer comparison")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    device = torch.device(args.device)
    config = replace(PRESETS["paper"], hidden_size=args.hidden, embedding_size=args.hidden, batch_size=args.batch,
                     bptt=args.bptt, speed_hidden=args.layer_hidden, speed_repeats=args.repeats)
    print(f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"{'language model':<16}{'tokens/s':>12}   (2 x {args.hidden}, batch {args.batch} x {args.bptt})")
    for model in ("qrnn", "lstm"):
        print(f"{model:<16}{train_tokens_per_s(replace(config, model=model), device, args.steps):>12.0f}")
    print(f"{'batch x length':<16}{'qrnn ms':>10}{'lstm ms':>10}{'speed-up':>10}   ({args.layer_hidden}-unit layer)")
    for cell in args.grid.split(","):
        batch, length = map(int, cell.split("x"))
        measured = speed_comparison(replace(config, speed_batch=batch, speed_length=length), device)
        print(f"{cell:<16}{measured['qrnn_layer_ms']:>10.2f}{measured['lstm_layer_ms']:>10.2f}"
              f"{measured['speedup_over_lstm']:>10.2f}")


if __name__ == "__main__":
    main()
