"""Sync benchmark: ``kb sync`` over a generated ``papers/`` of N folders (paper.yaml, Japanese and English notes).

Prints the full rebuild rate (no catalog, every folder read), a sync with nothing changed, a sync
after one note was edited, and one after every file was touched (stat changed, content not), all
through the library call ``kb sync`` makes. The text is bench_search.py's (Zipf-like words).
The files are dated an hour back, as in a checkout made before the sync: files written in the
last seconds are hashed again by the next sync (their time stamp cannot yet tell a later edit).

    .venv/bin/python tests/benchmarks/bench_sync.py --papers 100000 --keep /tmp/kb-bench
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from bench_search import write_papers


def timed(settings) -> tuple[float, float, object]:
    """Wall-clock and CPU seconds of one ``kb sync``, and its report (CPU time: other processes on a
    shared machine stretch the wall clock, not the work)."""
    from kb.ingest.sync import sync

    start, cpu = time.perf_counter(), time.process_time()
    report = sync(settings)
    return time.perf_counter() - start, time.process_time() - cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="KB_HOME to write papers/ in and keep (reused when present); "
                                                  "bench_search.py --keep reuses its catalog.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = args.keep or Path(scratch)
        papers = home / "papers"
        if not papers.is_dir() or len(os.listdir(papers)) != args.papers:
            shutil.rmtree(papers, ignore_errors=True)
            started = time.perf_counter()
            write_papers(papers, args.papers)
            print(f"wrote {args.papers:,} folders in {time.perf_counter() - started:.1f} s")
        for name in ("catalog.db", "catalog.db-wal", "catalog.db-shm", "first_seen.json"):
            (home / name).unlink(missing_ok=True)
        os.environ.update(KB_HOME=str(home), KB_PAPERS=str(papers))
        os.environ.pop("KB_DATABASE_URL", None)
        from kb.settings import load_settings

        settings = load_settings()
        seconds, cpu, report = timed(settings)
        assert report.papers == args.papers and not report.problems, report.problems[:3]
        print(f"papers: {args.papers:,}  full rebuild: {seconds:.1f} s, {args.papers / seconds:,.0f} papers/s "
              f"({cpu:.1f} s CPU: {args.papers / cpu:,.0f} papers/s)")
        seconds, cpu, report = timed(settings)
        print(f"no-change sync: {seconds:.2f} s ({cpu:.2f} s CPU), updated {report.updated}")
        note = papers / f"p{args.papers // 2}" / "notes.ja.md"
        original = note.read_text(encoding="utf-8")
        note.write_text(original.replace("## 概要", "## 要約"), encoding="utf-8")
        seconds, cpu, report = timed(settings)
        print(f"one-edit sync: {seconds:.2f} s ({cpu:.2f} s CPU), updated {report.updated}")
        note.write_text(original, encoding="utf-8")
        for path in papers.glob("*/*"):
            os.utime(path)
        seconds, cpu, report = timed(settings)
        print(f"every file touched, content unchanged: {seconds:.1f} s ({cpu:.1f} s CPU), updated {report.updated}")


if __name__ == "__main__":
    main()
