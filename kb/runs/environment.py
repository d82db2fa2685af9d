"""What a reviewer needs to trust a number: versions, device, host, code revision."""

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def git_state(project: Path) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout kb runs from, or (None, None) outside git.

    A tree copied without ``.git`` (a lent GPU machine) takes the commit it was copied from from
    ``KB_GIT_COMMIT``, and ``KB_GIT_DIRTY`` (1/0) if the sender knows it.
    """
    from kb.settings import read_environment

    commit, dirty = _git(project)
    copied = read_environment()
    if commit is None and copied.get("KB_GIT_COMMIT", "").strip():
        flag = copied.get("KB_GIT_DIRTY", "").strip().lower()
        return copied["KB_GIT_COMMIT"].strip(), (flag in ("1", "true", "yes")) if flag else None
    return commit, dirty


def _git(project: Path) -> tuple[str | None, bool | None]:
    try:
        commit = subprocess.run(["git", "-C", str(project), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(["git", "-C", str(project), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        return None, None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def resolve_device(requested: str) -> str:
    """``auto`` -> ``cuda:0`` when a GPU is visible, else ``cpu``; a missing GPU is a clear error."""
    import torch

    from kb.errors import BadInput

    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if requested == "cpu":
        return "cpu"
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise BadInput(f"--device {requested}: no CUDA GPU is visible on this machine; use --device cpu")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise BadInput(f"--device {requested}: only {torch.cuda.device_count()} GPU(s) visible")
        return f"cuda:{index}"
    raise BadInput(f"--device {requested!r}: use auto, cpu, cuda or cuda:N")


def capture(device: str) -> dict[str, Any]:
    import numpy
    import torch

    import kb

    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "kb": kb.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.startswith("cuda"):
        index = torch.device(device).index or 0
        props = torch.cuda.get_device_properties(index)
        env["device_name"] = props.name
        env["gpu_memory_gb"] = round(props.total_memory / 2**30, 1)
        env["gpu_capability"] = f"{props.major}.{props.minor}"
    else:
        env["device_name"] = f"CPU ({env['cpu']})"
    return env
