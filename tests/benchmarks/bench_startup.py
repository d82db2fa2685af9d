"""Startup benchmark: ``kb --help``, ``kb list`` and ``kb search`` against ``python -c "import typer"``.

    .venv/bin/python tests/benchmarks/bench_startup.py [--repeats 10]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

KB = str(Path(sys.executable).with_name("kb"))


def timed(command: list[str], repeats: int) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    baseline = timed([sys.executable, "-c", "import typer"], args.repeats)
    rows = [("python -c 'import typer'", baseline)]
    for label, command in (("kb --help", [KB, "--help"]), ("kb list", [KB, "list"]), ("kb search 検出", [KB, "search", "検出"])):
        rows.append((label, timed(command, args.repeats)))
    print(f"{'command':<28} {'median ms':>10} {'x typer':>8}")
    for label, ms in rows:
        print(f"{label:<28} {ms:>10.0f} {ms / baseline:>8.2f}")


if __name__ == "__main__":
    main()
