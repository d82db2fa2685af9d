"""Worker processes for the long steps that parse or render many files (kb sync, kb site build).

``fork`` where the platform has it: a worker starts in milliseconds with kb already imported, and
reads only files (it never touches the parent's open catalog connection; a forked worker leaves
through ``os._exit``, so nothing of the parent's is closed or flushed in it). Elsewhere ``spawn``.
"""

from __future__ import annotations

import multiprocessing
import os


def cores() -> int:
    """The CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def context():
    return multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")


def pool(workers: int):
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=workers, mp_context=context())
