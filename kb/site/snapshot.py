"""Everything the site shows, read from the catalog once into plain, immutable records.

The page generator, the figures and the search index take a ``Snapshot`` and nothing else, so
they are pure and testable without a database; this module is the only one that queries.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from kb.models import Metric, Note, Paper, RunRecord
from kb.settings import Settings

# Training curves are drawn from at most this many points per metric (evenly thinned).
MAX_POINTS = 400


@dataclass(frozen=True)
class NoteView:
    lang: str
    title: str | None
    body: str
    source: str | None
    path: str


@dataclass(frozen=True)
class PaperView:
    key: str
    slug: str
    title: str
    authors: tuple[str, ...] = ()
    year: int | None = None
    venue: str | None = None
    version: int | None = None
    other_titles: tuple[str, ...] = ()
    abstract: str = ""
    summary: str = ""
    categories: tuple[str, ...] = ()
    journal_ref: str | None = None
    comment: str | None = None
    tags: tuple[str, ...] = ()
    runners: tuple[str, ...] = ()
    claims: tuple[dict[str, Any], ...] = ()
    links: dict[str, str] = field(default_factory=dict)
    added: datetime | None = None
    notes: tuple[NoteView, ...] = ()
    star: int = 0                      # the ★ its notes give it


@dataclass(frozen=True)
class RunnerView:
    name: str
    paper: str
    summary: str = ""
    datasets: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()
    claims: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Curve:
    """One logged metric of a run: ``kind`` is ``step`` (x = step) or ``epoch`` (x = epoch); an epoch
    metric also keeps the step each value was logged at (``steps``), so it can share a step axis."""

    name: str
    kind: str
    points: tuple[tuple[float, float], ...]
    steps: tuple[float, ...] = ()


@dataclass(frozen=True)
class RunView:
    id: str
    runner: str
    paper_key: str
    preset: str
    status: str
    verdict: str
    verdicts: tuple[dict[str, Any], ...] = ()
    dataset: str | None = None
    dataset_synthetic: bool = False
    dataset_detail: str = ""
    dataset_fingerprint: str | None = None
    final: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)    # the --set fields the run was started with
    kind: str = "train"                                       # or "architecture" (no data, no training)
    env: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    host: str | None = None
    seed: int = 0
    git_commit: str | None = None
    git_dirty: bool | None = None
    created: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    regression: bool = False
    error: str | None = None
    curves: tuple[Curve, ...] = ()
    plots: tuple[dict[str, Any], ...] = ()     # the run's own figures (``run.plot``): title, xlabel, series
    images: tuple[dict[str, Any], ...] = ()    # its pictures (``run.image``): title, base64 PNG


@dataclass(frozen=True)
class Snapshot:
    papers: tuple[PaperView, ...] = ()
    runners: tuple[RunnerView, ...] = ()
    runs: tuple[RunView, ...] = ()          # newest first
    runner_problems: tuple[str, ...] = ()   # runner packages that could not be loaded, one line each


def thin(points: list[tuple], limit: int = MAX_POINTS) -> tuple[tuple, ...]:
    """Every k-th point so that at most ``limit`` remain, always keeping the last one."""
    if len(points) <= limit:
        return tuple(points)
    stride = -(-len(points) // limit)
    kept = points[::stride]
    if kept[-1] != points[-1]:
        kept = kept[:-1] + [points[-1]]
    return tuple(kept)


def _curves(*, session: Session) -> dict[str, tuple[Curve, ...]]:
    series: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    rows = session.exec(select(Metric.run_id, Metric.kind, Metric.name, Metric.step, Metric.epoch, Metric.value)
                        .order_by(Metric.run_id, Metric.kind, Metric.name, Metric.step))
    for run_id, kind, name, step, epoch, value in rows:
        x = epoch if kind == "epoch" and epoch is not None else step
        series.setdefault((run_id, kind, name), []).append((float(x), float(value), float(step)))
    curves: dict[str, list[Curve]] = {}
    for (run_id, kind, name), rows_of in series.items():
        kept = thin(rows_of)
        curves.setdefault(run_id, []).append(Curve(name=name, kind=kind, points=tuple((x, v) for x, v, _ in kept),
                                                   steps=tuple(s for _, _, s in kept) if kind == "epoch" else ()))
    return {run_id: tuple(found) for run_id, found in curves.items()}


def _run_view(record: RunRecord, curves: tuple[Curve, ...]) -> RunView:
    from kb.runs.overview import run_row

    row = run_row(record)
    return RunView(
        id=record.id, runner=record.runner, paper_key=record.paper_key, preset=record.preset, status=record.status,
        verdict=row["verdict"], verdicts=tuple(record.verdicts), dataset=record.dataset,
        dataset_synthetic=record.dataset_synthetic, dataset_detail=str(record.info.get("dataset_detail") or ""),
        dataset_fingerprint=record.dataset_fingerprint, final=dict(record.final), config=dict(record.config),
        overrides=dict(record.overrides), kind=record.kind,
        env=dict(record.env), device=record.device, host=record.host, seed=record.seed, git_commit=record.git_commit,
        git_dirty=record.git_dirty, created=record.created, started=record.started, ended=record.ended,
        regression=row["regression"], error=record.error, curves=curves,
        plots=tuple(p for p in record.info.get("plots") or () if isinstance(p, dict) and p.get("series")),
        images=tuple(i for i in record.info.get("images") or () if isinstance(i, dict) and i.get("png")),
    )


def load_snapshot(settings: Settings, *, session: Session) -> Snapshot:
    """Papers with their notes, the registered runners, and every run with its curves."""
    from kb.queries import paper_links
    from kb.runs.registry import load_registry

    notes: dict[int, list[NoteView]] = {}
    for note in session.exec(select(Note).order_by(Note.lang, Note.path)):
        notes.setdefault(note.paper_id, []).append(
            NoteView(lang=note.lang, title=note.title, body=note.body, source=note.source, path=note.path))
    papers = tuple(
        PaperView(
            key=p.key, slug=p.slug, title=p.title, authors=tuple(p.authors), year=p.year, venue=p.venue,
            version=p.version, other_titles=tuple(p.other_titles), abstract=p.abstract, summary=p.summary,
            categories=tuple(p.categories), journal_ref=p.journal_ref, comment=p.comment, tags=tuple(p.tags),
            runners=tuple(p.runners), claims=tuple(p.claims), links=paper_links(p), added=p.added,
            notes=tuple(notes.get(p.id, ())), star=p.star,
        )
        for p in session.exec(select(Paper).order_by(Paper.slug))
    )
    # The specs only are read: kept in the cache while no runner file changes, as for kb runners and kb sync.
    registry = load_registry(settings.runner_paths, cache_dir=settings.cache_dir)
    claims = {paper.key: paper.claims for paper in papers}        # a runner's paper's claims, as the catalog has them
    runners = tuple(
        RunnerView(name=spec.name, paper=spec.paper, summary=spec.summary, datasets=tuple(spec.datasets),
                   presets=tuple(spec.presets), claims=claims.get(spec.paper, ()))
        for spec in registry.specs()
    )
    curves = _curves(session=session)
    records = session.exec(select(RunRecord).order_by(RunRecord.created.desc(), RunRecord.id))
    runs = tuple(_run_view(record, curves.get(record.id, ())) for record in records)
    return Snapshot(papers=papers, runners=runners, runs=runs, runner_problems=tuple(registry.problems))
