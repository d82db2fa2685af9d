"""Site benchmark: build time, page sizes and search index parts for a catalog of N papers.

Notes are the project's own papers/*/notes.*.md (real Japanese and English, ~6 KB a paper),
cycled over the generated papers with a per-paper sentence; every tenth paper has a runner with a
few runs (one on synthetic data) logging step and epoch metrics. Prints, each with the seconds of
its steps (catalog, pages, figures, mkdocs, search index):

- the cold build (every figure drawn, every page rendered) against issue 21's 8 s for 1,000 papers;
- the rebuild after editing one note (only its page rendered) against 2 s, and one with nothing changed;
- the largest page against 60 KB, and how many pages are larger;
- the search index: its parts, the largest, and what typical queries read (a few parts, whatever N);
- with ``--linear M``: a second catalog of M papers, and the cold build's time per paper in each
  (the same per paper: linear).

Wall and CPU seconds (CPU counts the figure and render workers too, so it shows the cost on a
loaded machine).

    .venv/bin/python tests/benchmarks/bench_site.py --papers 1000
    taskset -c 0,1 .venv/bin/python tests/benchmarks/bench_site.py --papers 1000 --linear 10000   # 2 cores
    .venv/bin/python tests/benchmarks/bench_site.py --papers 1000 --keep /tmp/sr/bench   # then profile its catalog
"""

import argparse
import os
import random
import resource
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLAIM = {"metric": "accuracy", "dataset": "bench-data", "value": 90.0, "unit": "%", "direction": "higher",
         "tolerance": 1.0, "source": "Table 1", "setting": "the paper's main model"}


def shipped_notes() -> list[dict[str, str]]:
    notes = []
    for folder in sorted(p for p in (ROOT / "papers").iterdir() if p.is_dir()):
        found = {path.name.split(".")[1]: path.read_text(encoding="utf-8").split("---\n", 2)[-1]
                 for path in folder.glob("notes.*.md")}
        if "ja" in found and "en" in found:
            notes.append(found)
    return notes


def write_runners(folder: Path, count: int) -> None:
    for n in range(count):
        package = folder / f"bench{n}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(
            "from kb.runs.registry import RunnerSpec\n\n"
            f"RUNNER = RunnerSpec(name='bench{n}', paper='2001.{n * 10:05d}', summary='Benchmark runner {n}',\n"
            "                    datasets=('bench-data', 'generated'), presets=('smoke', 'default'),\n"
            f"                    entrypoint='bench{n}.train:main', config='bench{n}.config')\n", encoding="utf-8")


def fill_catalog(settings, papers: int, runs_per_runner: int, rng: random.Random) -> int:
    """Papers, notes, runs and metrics straight into the catalog; returns how many runs."""
    from sqlmodel import Session

    from kb.db import engine_for
    from kb.models import Metric, Note, Paper, RunRecord
    from kb.runs.verdict import judge_all

    notes = shipped_notes()
    tags = ["detection", "segmentation", "gan", "rnn", "translation", "quantization", "3d", "nas", "video", "audio",
            "物体検出", "強化学習"]
    start = datetime(2020, 1, 1, tzinfo=timezone.utc)
    runs = 0
    with Session(engine_for(settings)) as session:
        for n in range(papers):
            key, source = f"2001.{n:05d}", notes[n % len(notes)]
            has_runner = n % 10 == 0
            paper = Paper(key=key, slug=f"paper-{n}", title=f"Benchmark paper {n}: {source['en'].splitlines()[1][:60]}",
                          authors=[f"Author {rng.randint(1, 5000)}" for _ in range(rng.randint(2, 8))],
                          abstract=source["en"].splitlines()[1], year=rng.randint(2012, 2026), venue="BenchConf",
                          tags=sorted(rng.sample(tags, 3)), runners=[f"bench{n // 10}"] if has_runner else [],
                          claims=[CLAIM] if has_runner else [], added=start + timedelta(hours=n))
            session.add(paper)
            session.flush()
            for lang in ("ja", "en"):
                body = source[lang] + (f"\n\n論文 {n} についての追記。" if lang == "ja" else f"\n\nNote on paper {n}.")
                session.add(Note(paper_id=paper.id, lang=lang, body=body, path=f"paper-{n}/notes.{lang}.md", content_hash=key))
            for r in range(runs_per_runner if has_runner else 0):
                run_id, synthetic = f"bench{n // 10}-{r}", r == 0
                dataset = "generated" if synthetic else "bench-data"
                final = {"accuracy": 85.0 + rng.random() * 10}
                created = start + timedelta(days=n, hours=r)
                session.add(RunRecord(
                    id=run_id, runner=f"bench{n // 10}", paper_key=key, preset="default", status="succeeded",
                    created=created, started=created, ended=created + timedelta(hours=1), config={"epochs": 10},
                    env={"python": "3.11.7", "torch": "2.13.0"}, device="cpu", dataset=dataset, dataset_synthetic=synthetic,
                    final=final, run_dir=f"/tmp/{run_id}", verdicts=judge_all([CLAIM], config={}, final=final, dataset=dataset,
                                                                              synthetic=synthetic, device_name="cpu")))
                session.flush()
                session.add_all([Metric(run_id=run_id, kind="step", step=s, name="loss", value=2 / (s + 1) + rng.random() * 0.1)
                                 for s in range(0, 2000, 10)])
                session.add_all([Metric(run_id=run_id, kind="epoch", step=e * 200, epoch=e, name="accuracy",
                                        value=80 + e + rng.random()) for e in range(1, 11)])
                runs += 1
        session.commit()
    return runs


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the figure workers)."""
    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


def timed_build(settings, out: Path):
    from kb.site.build import build_site

    before = cpu_seconds()
    report = build_site(settings, out)
    return report, cpu_seconds() - before


QUERIES = ("検出", "物体検出", "点群", "重み", "の", "detection", "d", "network")
PAGE_LIMIT = 60_000


def parts_read(out: Path, query: str) -> list[str]:
    """The index parts the worker reads for ``query`` (docs/assets/kb/search-worker.js), before the
    document parts of its results."""
    import json
    import re

    from kb.site.search_index import FOLDER, INDEX, cjk_part

    meta = json.loads(re.search(r",(\{.*\})\)", (out / INDEX).read_text(encoding="utf-8")).group(1))
    names = {"meta"}
    runs = re.findall(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+|[a-z0-9]+", query.lower())
    hiragana = re.compile(r"[\u3040-\u309f]+")
    words = [w for run in runs for w in ([run] if hiragana.fullmatch(run) else hiragana.split(run)) if w]
    for run in words:
        if run[0].isascii():
            names |= {f"l-{p}" for p in meta["latin"] if (p == run[:2] if len(run) >= 2 else p.startswith(run))}
        else:
            grams = [run + "*"] if len(run) == 1 else [run] if len(run) == 2 else [run[i : i + 3] for i in range(len(run) - 2)]
            names |= {f"c{cjk_part(gram, meta['cjk_parts'])}" for gram in grams}
    return [f"{FOLDER}/{name}.js" for name in sorted(names)]


def describe(label: str, report, cpu: float) -> None:
    steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in report.phases.items())
    print(f"{label:<14} {report.seconds:6.1f} s wall, {cpu:6.1f} s CPU  ({steps})  {report.pages} pages, "
          f"{report.rendered} rendered ({'full' if report.full else 'incremental'}), {report.figures} figures "
          f"({report.figures_drawn} drawn)")


def describe_output(out: Path) -> None:
    from kb.site.search_index import FOLDER

    pages = sorted(out.rglob("*.html"), key=lambda p: p.stat().st_size)
    largest = pages[-1]
    over = sum(p.stat().st_size > PAGE_LIMIT for p in pages)
    parts = sorted((out / FOLDER).glob("*.js"), key=lambda p: p.stat().st_size)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"pages: largest {largest.stat().st_size / 1000:.1f} KB ({largest.relative_to(out).parent}), "
          f"{over} over {PAGE_LIMIT // 1000} KB; site {total / 1e6:.0f} MB")
    print(f"search index: {len(parts)} parts, {sum(p.stat().st_size for p in parts) / 1e6:.1f} MB in all, "
          f"largest {parts[-1].stat().st_size / 1000:.0f} KB ({parts[-1].name})")
    for query in QUERIES:
        read = parts_read(out, query)
        size = sum((out / p).stat().st_size for p in read)
        print(f"  query {query!r:<12} reads {len(read)} parts, {size / 1000:.0f} KB")


def edit_one_note(settings) -> None:
    """What ``kb note`` then ``kb sync`` leave in the catalog for one edited note."""
    from sqlmodel import Session, select

    from kb.db import engine_for
    from kb.models import Note

    with Session(engine_for(settings)) as session:
        note = session.exec(select(Note).order_by(Note.id)).first()
        note.body += "\n\nOne more sentence, added after the first build."
        session.add(note)
        session.commit()


def catalog(root: Path, papers: int, runs_per_runner: int):
    """Settings for a fresh catalog of ``papers`` papers under ``root``."""
    for name in ("home", "papers", "runners"):
        (root / name).mkdir(parents=True)
    os.environ.update(KB_HOME=str(root / "home"), KB_PAPERS=str(root / "papers"), KB_RUNNERS=str(root / "runners"))
    os.environ.pop("KB_DATABASE_URL", None)
    from kb.db import _ready_engine
    from kb.settings import load_settings

    _ready_engine.cache_clear()
    settings = load_settings()
    write_runners(root / "runners", -(-papers // 10))
    started = time.perf_counter()
    runs = fill_catalog(settings, papers, runs_per_runner, random.Random(0))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"catalog: {papers} papers with ja+en notes, {-(-papers // 10)} runners, {runs} runs "
          f"(filled in {time.perf_counter() - started:.1f} s); {cores} cores")
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--runs-per-runner", type=int, default=3)
    parser.add_argument("--linear", type=int, default=0, help="also build a catalog of this many papers")
    parser.add_argument("--keep", type=Path, help="build in this (new) folder and keep it, to profile its catalog after")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = args.keep or Path(scratch)
        settings = catalog(tmp / "first", args.papers, args.runs_per_runner)
        cold = timed_build(settings, tmp / "first" / "site")
        describe("cold", *cold)
        edit_one_note(settings)
        describe("one note", *timed_build(settings, tmp / "first" / "site"))
        describe("nothing", *timed_build(settings, tmp / "first" / "site"))
        describe_output(tmp / "first" / "site")
        if args.linear:
            bigger = catalog(tmp / "second", args.linear, args.runs_per_runner)
            large = timed_build(bigger, tmp / "second" / "site")
            describe("cold", *large)
            describe_output(tmp / "second" / "site")
            print(f"per paper: {1000 * cold[0].seconds / args.papers:.1f} ms at {args.papers}, "
                  f"{1000 * large[0].seconds / args.linear:.1f} ms at {args.linear} "
                  f"(ratio {large[0].seconds / args.linear / (cold[0].seconds / args.papers):.2f}; 1 is linear)")


if __name__ == "__main__":
    main()
