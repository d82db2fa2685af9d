"""Training speed of the YOLOv1 runner: images/s and model FLOP utilization (MFU).

Rows: the input pipeline alone (batch gather, augmentation; on CUDA the pre-decoded set lives on the GPU,
as in training), then full training steps (gather, augmentation, forward, loss, backward, clipping, SGD)
in fp32 eager, bf16 autocast + channels_last, the same with torch.compile (all with batch norm, as the
presets that train from scratch), and the paper's network without batch norm, compiled. FLOPs per step
are counted once with torch.utils.flop_counter (convolutions and matrix products, forward and backward:
the same for every row); MFU is achieved FLOP/s over the device's dense bf16 peak (``--peak-tflops`` to
override). ``--profile`` prints each row's top kernels.

    python tests/benchmarks/bench_yolo.py                                  # CUDA if present: yolo, 448, batch 64
    python tests/benchmarks/bench_yolo.py --device cpu --size 64 --batch 8 --steps 3 --arch fast --width 0.125
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners.detection.data import DetectionSet, augment, batches, generate_shapes
from runners.detection.train import make_optimizer, train_step
from runners.yolo.config import PRESETS
from runners.yolo.model import YOLO
from runners.yolo.train import as_detector
from tests.benchmarks.peaks import peak_tflops


MODES = {  # name -> (bf16 autocast, channels_last, torch.compile, batch norm)
    "fp32 eager": (False, False, False, True),
    "bf16+channels_last": (True, True, False, True),
    "bf16+channels_last+compile": (True, True, True, True),
    "bf16+channels_last+compile (paper net: no BN)": (True, True, True, False),
}

PROFILED_STEPS = 3  # training steps under the profiler with --profile


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def plan(dataset: DetectionSet, batch: int, steps: int) -> list[list[int]]:
    """``steps`` batches of shuffled indices, cycling through the set."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
    order *= steps * batch // len(dataset) + 1
    return [order[i * batch : (i + 1) * batch] for i in range(steps)]


def bench_pipeline(dataset: DetectionSet, config, device: torch.device, batch: int, steps: int) -> float:
    """Images/s of batching (a gather on the GPU when the set lives there) + augmentation, no network."""
    loader = iter(batches(dataset, plan(dataset, batch, steps + 1), config.workers, device.type == "cuda"))

    def once(step):
        images, boxes, labels = (t.to(device, non_blocking=True) for t in next(loader))
        augment(images.float() / 255, boxes, labels, torch.Generator().manual_seed(step), jitter=config.jitter,
                exposure=config.exposure, saturation=config.saturation)

    once(0)
    sync(device)
    start = time.perf_counter()
    for step in range(1, steps + 1):
        once(step)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def training_flops(dataset: DetectionSet, config, device: torch.device, batch: int) -> int:
    """FLOPs of one training step (forward and backward, counted on the eager fp32 model)."""
    model = YOLO(config, dataset.num_classes).to(device)
    with FlopCounterMode(display=False) as counter:
        train_step(model, make_optimizer(model, config), dataset[list(range(batch))], torch.Generator(), config,
                   device, loss=as_detector(model, config).loss, amp=False, memory_format=torch.contiguous_format)
    return counter.get_total_flops()


def bench_training(mode: str, dataset: DetectionSet, config, device: torch.device, batch: int, steps: int,
                   profile: bool = False) -> float:
    """Images/s of full training steps in ``mode``: batch gather, augmentation, forward, loss, backward, SGD."""
    amp, channels_last, compiled, batch_norm = MODES[mode]
    config = replace(config, batch_norm=batch_norm)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = YOLO(config, dataset.num_classes).to(device, memory_format=memory_format)
    optimizer = make_optimizer(model, config)
    network = torch.compile(model) if compiled else model
    # Batches for the 2 warm-up steps, the timed ones and the profiled ones.
    loader = iter(batches(dataset, plan(dataset, batch, 2 + steps + PROFILED_STEPS), config.workers,
                          device.type == "cuda"))

    loss = as_detector(model, config).loss

    def step(i):
        return train_step(network, optimizer, next(loader), torch.Generator().manual_seed(i), config, device,
                          loss=loss, amp=amp, memory_format=memory_format, compiled=compiled)

    for i in range(2):  # warm-up: cuDNN autotuning, compilation
        step(i)
    sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    sync(device)
    speed = steps * batch / (time.perf_counter() - start)
    if profile:
        print_profile(step, device, mode)
    return speed


def print_profile(step, device: torch.device, mode: str, steps: int = PROFILED_STEPS, rows: int = 20) -> None:
    """Where a training step's time goes: the kernels (or CPU ops) with the most total time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for i in range(steps):
            step(i)
        sync(device)
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(f"profile of {steps} steps, {mode}:")
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


def show(row: dict) -> dict:
    """Print one row of the table as soon as it is measured (a long run cut short keeps its rows)."""
    if "error" in row:
        print(f"{row['mode']:<46} {row['error']}", flush=True)
        return row
    gflop = f"{row['gflop_per_image']:.2f}" if "gflop_per_image" in row else "-"
    tflops = f"{row['tflops']:.2f}" if "tflops" in row else "-"
    mfu = f"{100 * row['mfu']:.1f}%" if row.get("mfu") is not None else "-"
    print(f"{row['mode']:<46} {row['images_per_s']:>10.1f} {gflop:>10} {tflops:>9} {mfu:>7}", flush=True)
    return row


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", default="yolo", choices=["yolo", "fast"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--hidden", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of: " + ", ".join(MODES))
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--profile", action="store_true", help="print the top kernels of each mode's step")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    config = replace(PRESETS["default"], arch=args.arch, image_size=args.size, width=args.width,
                     hidden=args.hidden, batch_norm=True, workers=0)
    images, targets = generate_shapes(args.batch * (args.steps + 1), args.size, seed=0)
    dataset = DetectionSet(images, [(args.size, args.size)] * len(targets), targets, args.size, 4)
    if device.type == "cuda":
        dataset = dataset.to(device)  # as training keeps a pre-decoded set that fits on the GPU
    peak = peak_tflops(device, args.peak_tflops)

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"YOLOv1 {args.arch} {args.size}x{args.size}, width {args.width}, batch {args.batch}, "
          f"{args.steps} steps on {name}; peak {peak or '-'} TFLOP/s (bf16 dense)")
    print(f"{'mode':<46} {'images/s':>10} {'GFLOP/img':>10} {'TFLOP/s':>9} {'MFU':>7}", flush=True)
    flops = training_flops(dataset, config, device, args.batch)
    rows = [show({"mode": "input pipeline only",
                  "images_per_s": bench_pipeline(dataset, config, device, args.batch, args.steps)})]
    for mode in args.modes.split(","):
        try:
            speed = bench_training(mode, dataset, config, device, args.batch, args.steps, args.profile)
        except RuntimeError as exc:  # e.g. torch.compile without a C++ compiler: report, keep going
            rows.append(show({"mode": mode, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:80]}"}))
            continue
        achieved = speed / args.batch * flops / 1e12
        rows.append(show({"mode": mode, "images_per_s": speed, "gflop_per_image": flops / args.batch / 1e9,
                          "tflops": achieved, "mfu": achieved / peak if peak else None}))
    return rows


if __name__ == "__main__":
    main()
