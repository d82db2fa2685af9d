"""Queue benchmark: worker processes draining trivial jobs on SQLite and on PostgreSQL.

    .venv/bin/python tests/benchmarks/bench_jobs.py [--jobs 200] [--workers 2] [--catalog sqlite postgresql]

Prints, per catalog, the throughput and the counts that must be zero (jobs run twice, jobs lost),
checked against the trivial runner's own ledger of executions, not only the catalog.
"""

import argparse
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.test_jobs_fixtures import drain_concurrently, make_kb, new_database, postgres  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--catalog", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = parser.parse_args()
    print(f"{'catalog':<11} {'jobs':>5} {'workers':>7} {'seconds':>8} {'jobs/s':>7} {'per worker':>12} {'duplicates':>10} {'lost':>5}")
    for catalog in args.catalog:
        with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as folder:
            if catalog == "postgresql":
                with postgres() as server:
                    lab = make_kb(Path(folder), patch, database_url=new_database(server, "kb_bench"))
                    result = drain_concurrently(lab, jobs=args.jobs, workers=args.workers)
            else:
                result = drain_concurrently(make_kb(Path(folder), patch), jobs=args.jobs, workers=args.workers)
        print(f"{catalog:<11} {result['jobs']:>5} {result['workers']:>7} {result['seconds']:>8.1f} {result['jobs_per_s']:>7.1f} "
              f"{'/'.join(map(str, result['per_worker'])):>12} {result['duplicates']:>10} {result['lost']:>5}")


if __name__ == "__main__":
    main()
