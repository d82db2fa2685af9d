"""Search benchmark: a generated catalog of N papers with Japanese and English notes.

Writes N paper folders (paper.yaml, a Japanese note, an English one for half: Zipf-like word
frequencies), builds the catalog with ``kb sync``, and prints the catalog's size against the text it
indexes and median/p99 query latency for Japanese (two-character words, longer words, mixed) and
English queries, through the catalog reader ``kb search`` uses (``kb.reader``).

    .venv/bin/python tests/benchmarks/bench_search.py --papers 100000 --keep /tmp/kb-bench
"""

import argparse
import gc
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

# Query words and the share of papers whose notes use them: common words of the field appear in a
# few percent of papers, as in real notes, not in every one.
JA_QUERY_WORDS = {"検出": 0.06, "精度": 0.10, "点群": 0.01, "重み": 0.04, "翻訳": 0.02, "物体検出": 0.03,
                  "鳥瞰図": 0.005, "損失関数": 0.02, "注意機構": 0.02}
EN_QUERY_WORDS = {"detection": 0.06, "segmentation": 0.05, "semantic": 0.04, "quantized": 0.01,
                  "networks": 0.15, "attention": 0.05}
KANJI = "学習層網構造画像音声言語生成識別分類推定予測最適化評価実験結果手法提案性能速度計算特徴表現空間時間次元"
HIRAGANA_GLUE = ["を", "が", "に", "で", "と", "の", "は"]
ENDINGS = ["を提案する。", "が向上した。", "で評価した。", "を用いる。", "に注目する。", "の課題がある。"]


def vocabulary(rng: random.Random, size: int) -> list[str]:
    return ["".join(rng.choices(KANJI, k=rng.choice((2, 2, 3, 4)))) for _ in range(size)]


def japanese_note(rng: random.Random, words: list[str], weights: list[float]) -> str:
    picked = rng.choices(words, weights=weights, k=rng.randint(40, 90))
    picked += [w for w, share in JA_QUERY_WORDS.items() if rng.random() < share]
    rng.shuffle(picked)
    sentences = ["".join(w + rng.choice(HIRAGANA_GLUE) for w in picked[i : i + 4]) + rng.choice(ENDINGS)
                 for i in range(0, len(picked), 4)]
    return "## 概要\n" + "".join(sentences[: len(sentences) // 2]) + "\n## 提案手法\n" + "".join(sentences[len(sentences) // 2 :])


def english_text(rng: random.Random, words: list[str], weights: list[float], size: int) -> str:
    picked = rng.choices(words, weights=weights, k=size)
    picked += [w for w, share in EN_QUERY_WORDS.items() if rng.random() < share]
    rng.shuffle(picked)
    return " ".join(picked)


def write_papers(root: Path, papers: int, seed: int = 0) -> None:
    """``papers`` folders shaped as kb writes them (paper.yaml, a Japanese note, an English one for
    half), every file dated an hour back, as in a checkout made before a sync."""
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
        title = english_text(rng, en_words, zipf_en, rng.randint(5, 10)).title()
        files = {
            "paper.yaml": f'id: "{key}"\nslug: {slug}\ntitle: "{title}"\nauthors: [{authors}]\n'
                          f"year: {rng.randint(2012, 2026)}\ncategories: [cs.CV]\nadded: 2026-01-01\n"
                          f"abstract: >-\n  {english_text(rng, en_words, zipf_en, 120)}\n"
                          f"tags: [{rng.choice(['vision', 'language', 'robotics'])}]\nrunners: []\nclaims: []\n",
            "notes.ja.md": f'---\npaper: "{key}"\nlang: ja\n---\n{japanese_note(rng, ja_words, zipf)}\n',
        }
        if rng.random() < 0.5:
            body = "## Summary\n" + english_text(rng, en_words, zipf_en, rng.randint(80, 160))
            files["notes.en.md"] = f'---\npaper: "{key}"\nlang: en\n---\n{body}\n'
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
            os.utime(folder / name, (past, past))
        os.utime(folder, (past, past))


def build(settings, papers: int, seed: int = 0) -> float:
    """Write ``papers`` folders into ``KB_HOME/papers`` (never the project's papers/) and build the
    catalog from them with ``kb sync``; returns the sync's seconds."""
    from dataclasses import replace

    from kb.ingest.sync import sync

    folder = settings.home / "papers"
    if not folder.is_dir() or len(os.listdir(folder)) != papers:
        shutil.rmtree(folder, ignore_errors=True)
        write_papers(folder, papers, seed)
    start = time.perf_counter()
    sync(replace(settings, papers=folder))
    return time.perf_counter() - start


def text_bytes(catalog: Path) -> int:
    """The bytes of the text the index covers: titles, authors, abstracts, summaries, tags, notes."""
    import sqlite3

    with sqlite3.connect(catalog) as connection:
        papers = connection.execute(
            "SELECT sum(length(CAST(title AS BLOB)) + length(CAST(other_titles AS BLOB)) + length(CAST(authors AS BLOB))"
            " + length(CAST(abstract AS BLOB)) + length(CAST(summary AS BLOB)) + length(CAST(tags AS BLOB))) FROM paper"
        ).fetchone()[0]
        notes = connection.execute(
            "SELECT sum(length(CAST(body AS BLOB)) + ifnull(length(CAST(title AS BLOB)), 0)) FROM note").fetchone()[0]
    return (papers or 0) + (notes or 0)


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="KB_HOME to build in and keep: its papers/ and catalog are reused "
                                                  "when present (bench_sync.py's --keep folder too).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        home = args.keep or Path(scratch)
        os.environ["KB_HOME"] = str(home)
        os.environ.pop("KB_DATABASE_URL", None)
        from kb.db import session_scope
        from kb.reader import open_catalog
        from kb.settings import load_settings

        settings = load_settings()
        db = home / "catalog.db"
        papers = home / "papers"
        reuse = db.exists() and papers.is_dir() and len(os.listdir(papers)) == args.papers
        seconds = 0.0 if reuse else build(settings, args.papers)
        with session_scope(settings) as session:
            session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size, text = db.stat().st_size, text_bytes(db)
        rate = f"{args.papers / seconds:,.0f} papers/s" if seconds else "reused"
        print(f"papers: {args.papers:,}  ingest (kb sync): {seconds:.1f} s ({rate})  catalog with index: "
              f"{size / 2**20:.1f} MiB = {size / text:.2f}x the {text / 2**20:.1f} MiB of text it indexes")
        queries = {"ja 2-char": ["検出", "点群", "重み", "精度", "翻訳"], "ja long": ["物体検出", "鳥瞰図", "損失関数"],
                   "mixed": ["semantic 精度", "attention 注意機構"], "en": ["detector", "segmentation", "quantized networks"],
                   "worst case": ["networks"]}
        # CPU time beside the wall clock: on a machine other processes share, they stretch the latter.
        print(f"{'queries':<10} {'median ms':>10} {'p99 ms':>8} {'CPU median':>11} {'CPU p99':>8} {'hits':>6}")
        with open_catalog(settings) as catalog:      # what kb search reads through
            # Each query once first: a process scores its first long posting lists in Python until they
            # add up to numpy's import (kb.textindex), then imports it; a one-query kb search's whole
            # time is bench_startup.py's to measure, this is the latency of a process that searches on.
            for query in (query for items in queries.values() for query in items):
                catalog.search(query, limit=20)
            # The objects of the benchmark's setup (the ORM, the sync) are not the queries': a collection
            # of them (tens of ms at 100k) would land in one query's time. kb search starts without them.
            gc.collect()
            gc.freeze()
            for label, items in queries.items():
                timings, cpu, hits = [], [], 0
                for _ in range(args.repeats):
                    for query in items:
                        start, start_cpu = time.perf_counter(), time.process_time()
                        hits = len(catalog.search(query, limit=20))
                        timings.append((time.perf_counter() - start) * 1000)
                        cpu.append((time.process_time() - start_cpu) * 1000)
                print(f"{label:<10} {statistics.median(timings):>10.1f} {_p99(timings):>8.1f} "
                      f"{statistics.median(cpu):>11.1f} {_p99(cpu):>8.1f} {hits:>6}")


if __name__ == "__main__":
    main()
