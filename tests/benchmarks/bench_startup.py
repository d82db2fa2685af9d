"""Startup benchmark: the everyday commands as whole processes against ``python -c "import typer"``.

Each command runs as a user runs it (a new process, output to a pipe; those labelled "(terminal)" on
a pseudo-terminal of 80 columns, where listings are tables), interleaved with the Typer
baseline so both see the same machine load; it prints the median of each and its ratio to the
baseline measured in the same run (issue 21: at most 2x on the shipped catalog, 3x at 100k papers).
A minimal Typer command with three options is measured too: the floor any Typer CLI starts from.

    .venv/bin/python tests/benchmarks/bench_startup.py [--repeats 7]
    .venv/bin/python tests/benchmarks/bench_startup.py --papers 100000 --keep /tmp/kb-bench
    .venv/bin/python tests/benchmarks/bench_startup.py --only list show    # those commands alone

Without ``--papers`` the catalog is the shipped ``papers/`` synced into a scratch KB_HOME; with it,
N generated papers with notes (``bench_search.write_papers``, then ``kb sync``), kept in ``--keep``
(the KB_HOME, with the papers in its ``papers/``: the layout of bench_search.py's ``--keep``, so
one generated catalog serves both) and reused.
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KB = str(Path(sys.executable).with_name("kb"))
ROOT = Path(__file__).resolve().parents[2]


def commands(paper: str) -> list[tuple[str, list[str]]]:
    """The commands of issue 21, each naming ``paper`` where it takes one."""
    return [("kb --help", ["--help"]), ("kb list", ["list"]), ("kb list --limit 20", ["list", "--limit", "20"]),
            ("kb search 検出", ["search", "検出"]), ("kb search detection", ["search", "detection"]),
            (f"kb show {paper}", ["show", paper]), ("kb runs", ["runs"]), ("kb runners", ["runners"]),
            (f"kb note {paper}", ["note", paper]),
            (f"kb list {TERMINAL}", ["list"]), (f"kb runs {TERMINAL}", ["runs"]), (f"kb search 検出 {TERMINAL}", ["search", "検出"])]


# What any Typer command with options costs: Typer 0.29 converts every option that is not a flag
# through a Pydantic TypeAdapter, importing Pydantic on the first one (``import typer`` does not).
TYPER_COMMAND = """
from typing import Annotated, Optional
import typer
app = typer.Typer()
@app.command()
def listing(tag: Annotated[Optional[str], typer.Option()] = None, limit: Annotated[Optional[int], typer.Option()] = None,
            wide: bool = False) -> None:
    print("ok")
@app.command()
def other() -> None:
    pass
app(["listing"])
"""


TERMINAL = "(terminal)"      # a label ending so runs the command on a pseudo-terminal of 80 columns


def timed(command: list[str], env: dict[str, str], terminal: bool = False) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run of ``command``: its output to a pipe, or
    with ``terminal`` to a pseudo-terminal (read as it comes, as a terminal does)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    if terminal:
        done = _on_terminal(command, {**env, "COLUMNS": "80", "LINES": "24"})
    else:
        done = subprocess.run(command, capture_output=True, env=env, check=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace').strip()}")
    return seconds, after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime


def _on_terminal(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    import pty
    import threading

    leader, follower = pty.openpty()
    seen = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return          # the command ended and closed its side
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, env=env, check=False)
    finally:
        os.close(follower)
    reader.join(timeout=5)
    os.close(leader)
    return subprocess.CompletedProcess(command, done.returncode, bytes(seen), bytes(seen))


def prepare(args, root: Path) -> tuple[dict[str, str], str]:
    """The environment the commands run in (a synced or generated catalog) and a paper to show."""
    env = {**os.environ, "KB_HOME": str(root / "home"), "KB_PAPERS": str(ROOT / "papers")}
    env.pop("KB_DATABASE_URL", None)
    # As installed: pip writes every module's bytecode, and a checkout writes kb's on its first run.
    # With PYTHONDONTWRITEBYTECODE set, each run would compile kb's sources anew (tens of ms) while
    # typer's, compiled by pip, load: the ratio would measure the compiler, not the start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if not args.papers:
        subprocess.run([KB, "sync"], env=env, check=True, stdout=subprocess.DEVNULL)
        return env, "yolo"
    papers = root / "papers"
    env.update(KB_HOME=str(root), KB_PAPERS=str(papers))
    if not (root / "catalog.db").exists() or not papers.is_dir() or len(os.listdir(papers)) != args.papers:
        sys.path.insert(0, str(ROOT))
        from tests.benchmarks.bench_search import write_papers

        start = time.perf_counter()
        write_papers(papers, args.papers)
        subprocess.run([KB, "sync"], env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"wrote and synced {args.papers:,} papers in {time.perf_counter() - start:.0f} s into {root}")
    return env, "p1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--papers", type=int, default=0, help="A generated catalog of this many papers (0: the shipped papers/).")
    parser.add_argument("--only", nargs="+", metavar="WORD", help="Only the commands whose label holds one of these words (list, show).")
    parser.add_argument("--keep", type=Path, help="Keep papers/ and the catalog (home/) in this folder (reused when present).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env, paper = prepare(args, args.keep or Path(scratch))
        baseline_command = [sys.executable, "-c", "import typer"]
        rows = [("a Typer command, 3 options", [sys.executable, "-c", TYPER_COMMAND]),
                *((label, [KB, *argv]) for label, argv in commands(paper)
                  if not args.only or any(word in label for word in args.only))]
        samples: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in rows}
        baseline: list[tuple[float, float]] = []
        for label, command in rows:
            timed(command, env, label.endswith(TERMINAL))       # a first run writes the bytecode of what it imports
        for _ in range(args.repeats):
            for label, command in rows:
                baseline.append(timed(baseline_command, env))
                samples[label].append(timed(command, env, label.endswith(TERMINAL)))
        where = f"{args.papers:,} generated papers" if args.papers else "the shipped papers/"
        print(f"catalog: {where}; medians of {args.repeats} runs, each beside a baseline run "
              "(CPU time: user + system, less disturbed by other load than wall time)")
        print(f"{'command':<28} {'wall ms':>8} {'x typer':>8} {'cpu ms':>8} {'x typer':>8}")
        typer_wall, typer_cpu = (statistics.median(v[i] for v in baseline) * 1000 for i in (0, 1))
        for label, values in [("python -c 'import typer'", baseline), *samples.items()]:
            wall, cpu = (statistics.median(v[i] for v in values) * 1000 for i in (0, 1))
            print(f"{label:<28} {wall:>8.0f} {wall / typer_wall:>8.2f} {cpu:>8.0f} {cpu / typer_cpu:>8.2f}")


if __name__ == "__main__":
    main()
