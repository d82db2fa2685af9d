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


def build(settings, papers: int, seed: int = 0) -> float:
    """Insert ``papers`` papers with notes through the indexer; returns seconds taken."""
    from sqlmodel import Session

    from kb.db import engine_for
    from kb.models import Note, Paper
    from kb.search import index_paper

    rng = random.Random(seed)
    ja_words = vocabulary(rng, 5000)
    en_words = [f"{w}{rng.choice(['ing', 'ed', 's', 'ion', ''])}" for w in ("".join(rng.choices("abcdefghiklmnoprstu", k=rng.randint(3, 8))) for _ in range(8000))]
    zipf = [1 / (rank + 1) for rank in range(5000)]
    zipf_en = [1 / (rank + 1) for rank in range(8000)]
    start = time.perf_counter()
    with Session(engine_for(settings)) as session:
        for n in range(papers):
            paper = Paper(key=f"{1501 + n // 99999 % 99}.{n % 99999:05d}", slug=f"p{n}",
                          title=english_text(rng, en_words, zipf_en, rng.randint(5, 10)).title(),
                          authors=[f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(1, 6))],
                          abstract=english_text(rng, en_words, zipf_en, 120), year=rng.randint(2012, 2026))
            session.add(paper)
            session.flush()
            session.add(Note(paper_id=paper.id, lang="ja", body=japanese_note(rng, ja_words, zipf), path=f"p{n}/notes.ja.md", content_hash=str(n)))
            if rng.random() < 0.5:
                body = "## Summary\n" + english_text(rng, en_words, zipf_en, rng.randint(80, 160))
                session.add(Note(paper_id=paper.id, lang="en", body=body, path=f"p{n}/notes.en.md", content_hash=str(n)))
            session.flush()
            index_paper(paper, session=session)
            if n % 5000 == 4999:
                session.commit()
        session.commit()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="Build the catalog in this folder and keep it (reused when present).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = str(args.keep or scratch)
        reuse = args.keep is not None and (args.keep / "catalog.db").exists()
        os.environ["KB_HOME"] = tmp
        os.environ.pop("KB_DATABASE_URL", None)
        from kb.db import session_scope
        from kb.search import search
        from kb.settings import load_settings

        settings = load_settings()
        seconds = 0.0 if reuse else build(settings, args.papers)
        db = Path(tmp) / "catalog.db"
        with session_scope(settings) as session:
            session.connection().exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size = db.stat().st_size
        rate = f"{args.papers / seconds:,.0f} papers/s" if seconds else "reused"
        print(f"papers: {args.papers:,}  ingest: {seconds:.1f} s ({rate})  "
              f"catalog with index: {size / 2**20:.1f} MiB")
        queries = {"ja 2-char": ["検出", "点群", "重み", "精度", "翻訳"], "ja long": ["物体検出", "鳥瞰図", "損失関数"],
                   "mixed": ["semantic 精度", "attention 注意機構"], "en": ["detector", "segmentation", "quantized networks"],
                   "worst case": ["networks"]}
        print(f"{'queries':<10} {'median ms':>10} {'p95 ms':>8} {'hits':>6}")
        with session_scope(settings) as session:
            for label, items in queries.items():
                timings, hits = [], 0
                for _ in range(args.repeats):
                    for query in items:
                        start = time.perf_counter()
                        hits = len(search(query, limit=20, session=session))
                        timings.append((time.perf_counter() - start) * 1000)
                timings.sort()
                print(f"{label:<10} {statistics.median(timings):>10.1f} {timings[int(len(timings) * 0.95) - 1]:>8.1f} {hits:>6}")


if __name__ == "__main__":
    main()
