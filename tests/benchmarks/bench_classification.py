"""Training speed of the classification family: images/s and model FLOP utilization (MFU).

For DenseNet-BC-100 (k=12, batch 64, arXiv 1608.06993) and ResNeXt-29 8x64d (batch 128, arXiv 1611.05431;
left out with a line when runners/resnext is not there): the input pipeline alone (a gather from the uint8
set kept on the device, normalisation, crop and flip: what ``fit`` does before the network), then full
training steps through the family's ``train_step`` in fp32 eager, bf16 autocast + channels_last, and the
same with torch.compile (CUDA only). FLOPs per image are torch.utils.flop_counter's count of one forward
pass times 3 (forward + backward); MFU is achieved FLOP/s over the device's dense bf16 peak (``--peak-tflops``
overrides; H100 and H200: 989). Each network's line ends with its paper recipe's projected wall time on one
H100 at the MFU measured here (``projected_hours``, which the runners' READMEs use with a stated MFU).

    python tests/benchmarks/bench_classification.py                  # CUDA if present: the papers' sizes
    python tests/benchmarks/bench_classification.py --tiny           # CPU: a few steps of small networks
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners.classification.augment import crop_flip_draws
from runners.classification.config import Config
from runners.classification.data import channel_statistics, generate_images
from runners.classification.train import make_optimizer, prepare_batch, train_step
from tests.benchmarks.peaks import PEAK_BF16_TFLOPS, peak_tflops

MODES = {  # name -> (bf16 autocast, channels_last, torch.compile)
    "fp32 eager": (False, False, False),
    "bf16+channels_last": (True, True, False),
    "bf16+channels_last+compile": (True, True, True),
}
# The CIFAR recipes: 50,000 training images and 10,000 test images evaluated once per epoch.
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000


def projected_hours(forward_flops: float, *, train_images: int, epochs: int, eval_images: int, mfu: float,
                    peak_tflops: float = PEAK_BF16_TFLOPS["H100"]) -> float:
    """A recipe's wall time on one GPU from its FLOPs: per epoch, 3 x forward FLOPs (forward + backward) for each
    training image and 1 x for each evaluated image, at ``mfu`` of the ``peak_tflops`` bf16 peak (H100: 989).

    Args:
        forward_flops: FLOPs of one image's forward pass (``kb reproduce NAME --architecture-only``'s ``flops``).
        train_images, epochs, eval_images: the recipe (CIFAR: 50,000, 300 and 10,000 for DenseNet).
        mfu: the model FLOP utilization assumed or measured (0..1).
    """
    total = epochs * forward_flops * (3 * train_images + eval_images)
    return total / (mfu * peak_tflops * 1e12) / 3600


def networks(tiny: bool) -> dict[str, tuple]:
    """name -> (model builder, batch size, recipe epochs); the papers' networks, or small ones with ``tiny``."""
    from runners.densenet.config import PRESETS as DENSENET
    from runners.densenet.model import from_config

    densenet = replace(DENSENET["bc-100-12"], depth=16, growth=4) if tiny else DENSENET["bc-100-12"]
    table = {"DenseNet-BC-16 (k=4, tiny)" if tiny else "DenseNet-BC-100 (k=12)": (lambda: from_config(densenet, 10),
                                                                                8 if tiny else 64, 300)}
    try:
        from runners.resnext.config import PRESETS as RESNEXT
        from runners.resnext.model import ResNeXt
    except ImportError:
        print("ResNeXt-29 8x64d: skipped, runners/resnext is not there yet", flush=True)
        return table
    resnext = replace(RESNEXT["cifar-29-8x64d"], cardinality=2, base_width=4, width=8) if tiny \
        else RESNEXT["cifar-29-8x64d"]
    table["ResNeXt-29 2x4d (width 8, tiny)" if tiny else "ResNeXt-29 8x64d"] = (
        lambda: ResNeXt.from_config(resnext, 10), 8 if tiny else 128, 300)
    return table


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_flops(build, device: torch.device) -> int:
    """FLOPs of one 32x32 image's forward pass (eval mode, fp32)."""
    model = build().to(device).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 32, 32, device=device))
    return counter.get_total_flops()


def batches(images: torch.Tensor, batch: int, steps: int, device: torch.device):
    """``steps`` (index, crop-and-flip draws) pairs on the device, cut from one order and one set of draws that
    live there, as ``fit`` cuts an epoch's."""
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(0)).to(device)
    draws = crop_flip_draws(len(images), torch.Generator().manual_seed(0)).to(device)
    for step in range(steps):
        start = (step * batch) % (len(images) - batch + 1)
        yield order[start:start + batch], draws[start:start + batch]


def bench_pipeline(images, mean, std, batch: int, steps: int, device: torch.device) -> float:
    """Images/s of the input pipeline alone: the gather from the uint8 set, normalisation, crop and flip."""
    memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    for index, draws in batches(images, batch, 2, device):
        prepare_batch(images[index], draws, mean, std, memory_format)
    sync(device)
    start = time.perf_counter()
    for index, draws in batches(images, batch, steps, device):
        prepare_batch(images[index], draws, mean, std, memory_format)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def bench_steps(build, mode: str, images, labels, mean, std, batch: int, steps: int, device: torch.device) -> float:
    """Images/s of full training steps in ``mode``: the pipeline, forward, loss, backward, SGD."""
    amp, channels_last, compiled = MODES[mode]
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = build().to(device, memory_format=memory_format).train()
    optimizer = make_optimizer(model, Config())  # the family's SGD (DenseNet Sec. 4.2)
    network = torch.compile(model) if compiled else model
    prepare = torch.compile(prepare_batch) if compiled else prepare_batch

    def step(index, draws):
        train_step(network, optimizer, images[index], labels[index], draws, amp=amp,
                   prepare=lambda x, d: prepare(x, d, mean, std, memory_format))

    for index, draws in batches(images, batch, 3, device):  # warm-up: cuDNN autotuning, compilation
        step(index, draws)
    sync(device)
    start = time.perf_counter()
    for index, draws in batches(images, batch, steps, device):
        step(index, draws)
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--tiny", action="store_true", help="small networks and batches (CPU)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per row (default 50, tiny 2)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="the device's dense bf16 peak")
    args = parser.parse_args()
    device = torch.device(args.device)
    steps = args.steps or (2 if args.tiny else 50)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    peak = peak_tflops(device, args.peak_tflops)
    print(f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, torch {torch.__version__}, "
          f"peak {peak or '-'} TFLOP/s bf16, {steps} timed steps per row", flush=True)
    print(f"{'network / mode':<62} {'images/s':>10} {'GFLOP/img':>10} {'TFLOP/s':>9} {'MFU':>7}", flush=True)
    for name, (build, batch, epochs) in networks(args.tiny).items():
        images, labels = generate_images(max(4 * batch, 256), 10, 32, seed=0)
        mean_values, std_values = channel_statistics(images)
        images, labels = images.to(device), labels.to(device)
        mean, std = torch.tensor(mean_values, device=device), torch.tensor(std_values, device=device)
        flops = 3 * forward_flops(build, device)
        pipeline = bench_pipeline(images, mean, std, batch, steps, device)
        print(f"{name + ', input pipeline only':<62} {pipeline:>10.1f} {'-':>10} {'-':>9} {'-':>7}", flush=True)
        best = 0.0
        for mode, (_, _, compiled) in MODES.items():
            label = f"{name}, batch {batch}, {mode}"
            if compiled and device.type != "cuda":
                print(f"{label:<62} skipped (torch.compile is timed on CUDA only)", flush=True)
                continue
            speed = bench_steps(build, mode, images, labels, mean, std, batch, steps, device)
            tflops = speed * flops / 1e12
            best = max(best, speed)
            mfu = f"{100 * tflops / peak:.1f}%" if peak else "-"
            print(f"{label:<62} {speed:>10.1f} {flops / 1e9:>10.3f} {tflops:>9.3f} {mfu:>7}", flush=True)
        if peak and not args.tiny:  # a projection of the paper's recipe needs the paper's network
            mfu = best * flops / 1e12 / peak
            hours = projected_hours(flops / 3, train_images=CIFAR_TRAIN, epochs=epochs, eval_images=CIFAR_TEST, mfu=mfu)
            print(f"{name}: the {epochs}-epoch CIFAR recipe at this MFU ({100 * mfu:.1f}%) on one H100: {hours:.2f} h",
                  flush=True)


if __name__ == "__main__":
    main()
