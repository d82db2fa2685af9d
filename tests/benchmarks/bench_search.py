"""Search benchmark: a generated catalog of N papers with Japanese and English notes.

Prints ingest rate, index size and median/p95 query latency for Japanese (two-character words,
longer words, mixed) and English queries, through the same library call ``kb search`` makes.

    .venv/bin/python tests/benchmarks/bench_search.py --papers 100000
"""

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

JA_WORDS = ["物体検出", "画像認識", "点群", "鳥瞰図", "重み", "精度", "推論速度", "畳み込み", "正規化", "蒸留",
            "生成モデル", "強化学習", "翻訳", "音声", "動画", "学習率", "損失関数", "注意機構", "量子化", "探索"]
JA_GLUE = ["を提案する。", "が向上した。", "で評価した。", "を用いる。", "に注目する。", "の課題がある。"]
EN_WORDS = ["detection", "segmentation", "semantic", "network", "residual", "attention", "translation", "quantized",
            "generative", "adversarial", "pruning", "distillation", "transformer", "recurrent", "convolution", "benchmark"]


def japanese_note(rng: random.Random) -> str:
    sentences = ["".join(rng.choice(JA_WORDS) + rng.choice(["", "と", "の"]) for _ in range(3)) + rng.choice(JA_GLUE)
                 for _ in range(rng.randint(6, 14))]
    return "## 概要\n" + "".join(sentences) + "\n## 実装\n" + " ".join(rng.choices(EN_WORDS, k=8))


def english_note(rng: random.Random) -> str:
    return "## Summary\n" + " ".join(rng.choices(EN_WORDS + ["the", "a", "we", "model", "results"], k=rng.randint(60, 140)))


def build(settings, papers: int, seed: int = 0) -> float:
    """Insert ``papers`` papers with notes through the indexer; returns seconds taken."""
    from sqlmodel import Session

    from kb.db import engine_for
    from kb.models import Note, Paper
    from kb.search import index_paper

    rng = random.Random(seed)
    start = time.perf_counter()
    with Session(engine_for(settings)) as session:
        for n in range(papers):
            title = " ".join(rng.choices(EN_WORDS, k=rng.randint(4, 9))).title()
            paper = Paper(key=f"{1501 + n // 99999 % 99}.{n % 99999:05d}", slug=f"p{n}", title=title,
                          authors=[f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(1, 6))],
                          abstract=" ".join(rng.choices(EN_WORDS, k=40)), year=rng.randint(2012, 2026))
            session.add(paper)
            session.flush()
            session.add(Note(paper_id=paper.id, lang="ja", body=japanese_note(rng), path=f"p{n}/notes.ja.md", content_hash=str(n)))
            if rng.random() < 0.5:
                session.add(Note(paper_id=paper.id, lang="en", body=english_note(rng), path=f"p{n}/notes.en.md", content_hash=str(n)))
            session.flush()
            index_paper(session, paper)
            if n % 5000 == 4999:
                session.commit()
        session.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KB_HOME"] = tmp
        os.environ.pop("KB_DATABASE_URL", None)
        from kb.db import session_scope
        from kb.search import search
        from kb.settings import load_settings

        settings = load_settings()
        seconds = build(settings, args.papers)
        db = Path(tmp) / "catalog.db"
        with session_scope(settings) as session:
            session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        print(f"papers: {args.papers:,}  ingest: {seconds:.1f} s ({args.papers / seconds:,.0f} papers/s)  "
              f"catalog with index: {size / 2**20:.1f} MiB")
        queries = {"ja 2-char": ["検出", "点群", "重み", "精度", "翻訳"], "ja long": ["物体検出", "鳥瞰図", "損失関数"],
                   "mixed": ["semantic 精度", "attention 注意機構"], "en": ["detector", "segmentation", "quantized networks"]}
        print(f"{'queries':<10} {'median ms':>10} {'p95 ms':>8} {'hits':>6}")
        with session_scope(settings) as session:
            for label, items in queries.items():
                timings, hits = [], 0
                for _ in range(args.repeats):
                    for query in items:
                        start = time.perf_counter()
                        hits = len(search(session, query, limit=20))
                        timings.append((time.perf_counter() - start) * 1000)
                timings.sort()
                print(f"{label:<10} {statistics.median(timings):>10.1f} {timings[int(len(timings) * 0.95) - 1]:>8.1f} {hits:>6}")


if __name__ == "__main__":
    main()
