"""The devices' dense bf16 peaks the benchmarks divide by for MFU (model FLOPs utilisation)."""

import torch

# Dense bf16 tensor-core peaks in TFLOP/s, by a substring of torch.cuda.get_device_name().
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100 PCIe": 756.0, "H100": 989.0, "A100": 312.0, "L4": 121.0, "A10": 125.0}


def peak_tflops(device: torch.device, override: float | None) -> float | None:
    """``override`` when given, else the CUDA device's bf16 peak (None on a CPU or an unknown GPU)."""
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
