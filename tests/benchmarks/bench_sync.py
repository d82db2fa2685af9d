"""Sync benchmark: ``kb sync`` over a generated ``papers/`` of N folders (paper.yaml, Japanese and English notes).

Prints the full rebuild rate (no catalog, every folder read), a sync with nothing changed, a sync
after one note was edited, and one after every file was touched (stat changed, content not), all
through the library call ``kb sync`` makes. The text is bench_search.py's (Zipf-like words).
The files are dated an hour back, as in a checkout made before the sync: files written in the
last seconds are hashed again by the next sync (their time stamp cannot yet tell a later edit).

    .venv/bin/python tests/benchmarks/bench_sync.py --papers 100000 --keep /tmp/kb-bench-sync
"""

import argparse
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from bench_search import english_text, japanese_note, vocabulary


def write_papers(root: Path, papers: int, seed: int = 0) -> None:
    """``papers`` folders shaped as kb writes them; every file dated an hour back."""
    rng = random.Random(seed)
    ja_words = vocabulary(rng, 5000)
    en_words = [f"{w}{rng.choice(['ing', 'ed', 's', 'ion', ''])}"
                for w in ("".join(rng.choices("abcdefghiklmnoprstu", k=rng.randint(3, 8))) for _ in range(8000))]
    zipf = [1 / (rank + 1) for rank in range(5000)]
    zipf_en = [1 / (rank + 1) for rank in range(8000)]
    past = time.time() - 3600
    for n in range(papers):
        key, slug = f"{1501 + n // 99999 % 99}.{n % 99999:05d}", f"p{n}"
        folder = root / slug
        folder.mkdir(parents=True, exist_ok=True)
        authors = ", ".join(f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(1, 6)))
        files = {
            "paper.yaml": f'id: "{key}"\nslug: {slug}\ntitle: "{english_text(rng, en_words, zipf_en, rng.randint(5, 10)).title()}"\n'
                          f"authors: [{authors}]\nyear: {rng.randint(2012, 2026)}\ncategories: [cs.CV]\n"
                          f"added: 2026-01-01\nabstract: >-\n  {english_text(rng, en_words, zipf_en, 120)}\n"
                          f"tags: [{rng.choice(['detection', 'segmentation', 'nlp'])}]\nrunners: []\nclaims: []\n",
            "notes.ja.md": f'---\npaper: "{key}"\nlang: ja\n---\n{japanese_note(rng, ja_words, zipf)}\n',
        }
        if rng.random() < 0.5:
            body = "## Summary\n" + english_text(rng, en_words, zipf_en, rng.randint(80, 160))
            files["notes.en.md"] = f'---\npaper: "{key}"\nlang: en\n---\n{body}\n'
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
            os.utime(folder / name, (past, past))


def timed(settings) -> tuple[float, object]:
    from kb.ingest.sync import sync

    start = time.perf_counter()
    report = sync(settings)
    return time.perf_counter() - start, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="Write papers/ in this folder and keep it (reused when present).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = args.keep or Path(scratch)
        papers, home = root / "papers", root / "home"
        if not papers.is_dir() or len(os.listdir(papers)) != args.papers:
            shutil.rmtree(papers, ignore_errors=True)
            started = time.perf_counter()
            write_papers(papers, args.papers)
            print(f"wrote {args.papers:,} folders in {time.perf_counter() - started:.1f} s")
        shutil.rmtree(home, ignore_errors=True)
        os.environ.update(KB_HOME=str(home), KB_PAPERS=str(papers))
        os.environ.pop("KB_DATABASE_URL", None)
        from kb.settings import load_settings

        settings = load_settings()
        seconds, report = timed(settings)
        assert report.papers == args.papers and not report.problems, report.problems[:3]
        print(f"papers: {args.papers:,}  full rebuild: {seconds:.1f} s ({args.papers / seconds:,.0f} papers/s)")
        seconds, report = timed(settings)
        print(f"no-change sync: {seconds:.2f} s  (updated {report.updated})")
        note = papers / f"p{args.papers // 2}" / "notes.ja.md"
        original = note.read_text(encoding="utf-8")
        note.write_text(original.replace("## 概要", "## 要約"), encoding="utf-8")
        seconds, report = timed(settings)
        print(f"one-edit sync: {seconds:.2f} s")
        note.write_text(original, encoding="utf-8")
        for path in papers.glob("*/*"):
            os.utime(path)
        seconds, report = timed(settings)
        print(f"every file touched (content unchanged): {seconds:.1f} s")
        size = (home / "catalog.db").stat().st_size
        print(f"catalog: {size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
