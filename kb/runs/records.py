"""Querying, comparing, exporting and importing run records.

A run's record lives in its run folder first (kb/runs/record_file.py); to travel it is exported
as one JSON file per run, by default ``papers/<slug>/runs/<run id>.json``, that can be committed.
``kb sync`` and ``kb runs import`` load both, run folders and exported files, so the catalog is
rebuilt from them on this machine or loaded on one that never ran them (design.md, Sources of truth).
"""

import json
from pathlib import Path
from typing import Any

from sqlmodel import Session, delete, func, insert, select

from kb.errors import BadInput, KBError, NotFound
from kb.files import write_atomic
from kb.models import Metric, Paper, Regression, RunRecord
from kb.queries import claims_of
from kb.runs import record_file
from kb.runs.record_file import RunFile, read_run
from kb.runs.verdict import experiments, judge_all


def list_runs(*, session: Session, runner: str | None = None, status: str | None = None,
              limit: int | None = None) -> list[RunRecord]:
    query = select(RunRecord).order_by(RunRecord.created.desc())
    if runner:
        query = query.where(RunRecord.runner == runner)
    if status:
        query = query.where(RunRecord.status == status)
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def count_runs(*, session: Session, runner: str | None = None, status: str | None = None) -> int:
    """How many runs ``list_runs`` lists without a limit."""
    query = select(func.count()).select_from(RunRecord)
    if runner:
        query = query.where(RunRecord.runner == runner)
    if status:
        query = query.where(RunRecord.status == status)
    return session.exec(query).one()


def get_run(run_id: str, *, session: Session) -> RunRecord:
    record = session.get(RunRecord, run_id)
    if record is None:
        matches = list(session.exec(select(RunRecord).where(RunRecord.id.startswith(run_id)).limit(3)))
        if len(matches) == 1:
            return matches[0]
        raise NotFound(f"no run {run_id!r}" + ("; it is ambiguous" if matches else "") + "; see `kb runs`")
    return record


def metrics_of(run_id: str, kind: str | None = None, *, session: Session) -> list[Metric]:
    query = select(Metric).where(Metric.run_id == run_id).order_by(Metric.step, Metric.name)
    if kind:
        query = query.where(Metric.kind == kind)
    return list(session.exec(query))


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


_ENV_KEYS = ("python", "torch", "numpy", "cuda", "cudnn", "device_name", "host", "kb", "platform")


def compare(a: RunRecord, b: RunRecord) -> dict[str, Any]:
    """Config, environment and metric differences between two runs."""
    env_a = {**{k: a.env.get(k) for k in _ENV_KEYS}, "git_commit": a.git_commit, "git_dirty": a.git_dirty, "seed": a.seed,
             "dataset": a.dataset, "dataset_fingerprint": a.dataset_fingerprint}
    env_b = {**{k: b.env.get(k) for k in _ENV_KEYS}, "git_commit": b.git_commit, "git_dirty": b.git_dirty, "seed": b.seed,
             "dataset": b.dataset, "dataset_fingerprint": b.dataset_fingerprint}
    metrics = {}
    for name in sorted(set(a.final) | set(b.final)):
        x, y = a.final.get(name), b.final.get(name)
        metrics[name] = {"a": x, "b": y, "difference": (y - x) if x is not None and y is not None else None}
    return {"a": a.id, "b": b.id, "config": _diff(a.config, b.config), "env": _diff(env_a, env_b), "metrics": metrics}


def thin_steps(rows: list[Metric], max_points: int) -> tuple[list[Metric], dict[str, int]]:
    """Keep at most ``max_points`` step values per metric: every k-th step and always the last.

    Epoch metrics are all kept. Returns the rows and {metric: k} for the metrics that were thinned.
    """
    if max_points <= 0:
        return rows, {}
    by_name: dict[str, list[Metric]] = {}
    for row in rows:
        if row.kind == "step":
            by_name.setdefault(row.name, []).append(row)
    strides = {name: -(-len(values) // max_points) for name, values in by_name.items() if len(values) > max_points}
    if not strides:
        return rows, {}
    # By position among the metric's values, not by step number: a metric logged every 4th step
    # thinned by 2 must lose half its values, which ``step % 2`` would not do.
    keep = set()
    for name, stride in strides.items():
        values = by_name[name]
        keep.update(id(row) for row in values[stride - 1::stride])
        keep.add(id(values[-1]))
    return [row for row in rows if row.kind != "step" or row.name not in strides or id(row) in keep], strides


def to_document(record: RunRecord, *, session: Session, max_points: int = 0) -> dict[str, Any]:
    """The run folder's document (kb/runs/record_file.py) with the metrics and the regression, if any."""
    exported = record_file.document(record)
    exported["run"].pop("job_id", None)        # a job of this machine's queue means nothing elsewhere
    regression = session.exec(select(Regression).where(Regression.run_id == record.id)).first()
    if regression is not None:
        exported["regression"] = record_file.regression_fields(regression)
    rows, strides = thin_steps(metrics_of(record.id, session=session), max_points)
    if strides:
        exported["steps_thinned"] = {"every": strides, "full_metrics": "metrics.csv in the run folder"}
    exported["metrics"] = [[m.kind, m.step, m.epoch, m.name, m.value] for m in rows]
    return exported


def dump_document(document: dict[str, Any]) -> str:
    """JSON with the run readable (indented) and one metric row per line, so files stay small."""
    parts = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False, indent=1)}".replace("\n", "\n ")
             for k, v in document.items() if k != "metrics"]
    rows = ",\n  ".join(json.dumps(row) for row in document.get("metrics", []))
    parts.append(f'"metrics": [\n  {rows}\n ]' if rows else '"metrics": []')
    return "{\n " + ",\n ".join(parts) + "\n}\n"


def export_runs(papers_root: Path, run_ids: list[str], out: Path | None, *,
                session: Session, max_points: int = 0) -> list[Path]:
    """Write each run to ``out/<id>.json`` or, by default, ``papers/<slug>/runs/<id>.json``.

    ``max_points`` > 0 keeps that many values per step metric (the curve, not every step).
    """
    records = [get_run(r, session=session) for r in run_ids] if run_ids else list_runs(session=session)
    written = []
    for record in records:
        if out is not None:
            target = out / f"{record.id}.json"
        else:
            paper = session.exec(select(Paper).where(Paper.key == record.paper_key)).first()
            if paper is None:
                raise NotFound(f"run {record.id} belongs to {record.paper_key}, which is not in the catalog; use --out DIR")
            target = papers_root / paper.slug / "runs" / f"{record.id}.json"
        write_atomic(target, dump_document(to_document(record, max_points=max_points, session=session)))
        written.append(target)
    return written


def run_paths(items: list[Path]) -> list[Path]:
    """What ``kb runs import`` was given, as runs: files, run folders, and folders of either
    (``papers/<slug>/runs/``, ``KB_HOME/runs/``); a folder without a record.json yet is a run
    being created, or one from a kb that kept records only in the catalog, and is passed over."""
    paths = []
    for item in items:
        if record_file.is_run_folder(item) or item.is_file():
            paths.append(item)
        elif item.is_dir():
            paths += sorted(p for p in item.iterdir()
                            if (p.is_file() and p.suffix == ".json") or record_file.is_run_folder(p))
        else:
            raise BadInput(f"{item}: no such file or folder")
    return paths


def import_runs(paths: list[Path], *, session: Session, replace: bool) -> tuple[int, list[str]]:
    """Load runs from exported files and run folders; returns (how many loaded, problems).

    A file or folder that cannot be read is named in ``problems`` and skipped; the rest load. Two
    copies of one run (its folder and an export) load the more complete (``RunFile.completeness``).
    A run already in the catalog is replaced when ``replace``, else kept. A run's regression, and
    its metrics, come with it.
    """
    chosen: dict[str, RunFile] = {}
    problems = []
    known = set() if replace else set(session.exec(select(RunRecord.id)))
    for path in paths:
        try:
            # Every record is read (a damaged one is named), the metrics only of runs that load.
            found = read_run(path, metrics=path.name not in known)
        except KBError as exc:
            problems.append(str(exc))
            continue
        if found.record.id in known:
            continue
        held = chosen.get(found.record.id)
        if held is None or found.completeness() > held.completeness():
            chosen[found.record.id] = found
    loaded = []
    for run_id, found in sorted(chosen.items()):
        existing = session.get(RunRecord, run_id)
        if existing is not None:
            session.exec(delete(Metric).where(Metric.run_id == run_id))
            session.exec(delete(Regression).where(Regression.run_id == run_id))
            session.delete(existing)
            session.flush()
        session.add(found.record)
        session.flush()              # the run row first: metrics and the regression reference it
        insert_metrics(found.metrics, session=session)
        loaded.append(found)
    # Regressions in the order they were found, so a rebuilt catalog numbers them as the old one did.
    regressed = [found for found in loaded if found.regression is not None]
    for found in sorted(regressed, key=lambda found: (found.regression.created, found.record.id)):
        session.add(found.regression)
    session.flush()
    return len(loaded), problems


def insert_metrics(rows: list[dict[str, Any]], *, session: Session) -> None:
    """Metric rows (``record_file.load_metrics``) in one executemany, not one ORM object each."""
    if rows:
        session.exec(insert(Metric), params=rows)


def write_missing_records(*, session: Session) -> int:
    """Give every run folder on this machine that lacks one its ``record.json`` (and
    ``regression.json``) from the catalog: folders of runs recorded before kb wrote them, or
    whose process died between its commit and its write. Returns how many were written."""
    written = 0
    for record in session.exec(select(RunRecord)):
        folder = Path(record.run_dir)
        if folder.is_dir() and not record_file.is_run_folder(folder):
            record_file.write_record(record)
            regression = session.exec(select(Regression).where(Regression.run_id == record.id)).first()
            if regression is not None:
                record_file.write_regression(regression, folder)
            written += 1
    return written


def rejudge(*, session: Session) -> int:
    """Judge every succeeded run again against its paper's claims as the catalog has them now.

    Verdicts are stored with a run, but claims are data that people correct and extend (a number
    read in a table later, a tolerance argued over); ``kb sync`` calls this so the catalog never
    shows a verdict against a claim that is no longer in ``papers/``. Returns how many changed.
    """
    return len(rejudged(session=session))


def rejudged(*, session: Session, paper_key: str | None = None) -> list[RunRecord]:
    """Judge the succeeded runs (of one paper, or all) again; returns those whose verdicts changed.

    A claim over seeds is judged on every seed of the run's experiment (``experiments``), the
    newest run of each seed, so a new seed's run changes the verdicts of the earlier seeds too.
    """
    query = select(RunRecord).where(RunRecord.status == "succeeded").order_by(RunRecord.created.desc(), RunRecord.id)
    if paper_key is not None:
        query = query.where(RunRecord.paper_key == paper_key)
    records = list(session.exec(query))
    experiment = experiments(records)
    seeds: dict[tuple, dict[int, dict[str, float]]] = {}
    for record in records:
        seeds.setdefault(experiment[record.id], {}).setdefault(record.seed, record.final)
    changed = []
    claims_by_paper: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if record.paper_key not in claims_by_paper:
            claims_by_paper[record.paper_key] = claims_of(record.paper_key, session=session)
        finals = {**seeds[experiment[record.id]], record.seed: record.final}   # an older repeat of a seed: its own
        verdicts = judge_all(claims_by_paper[record.paper_key], config=record.config, final=record.final,
                             dataset=record.dataset, synthetic=record.dataset_synthetic,
                             device_name=record.device or "", kind=record.kind, seeds=list(finals.values()))
        if verdicts != record.verdicts:
            record.verdicts = verdicts
            session.add(record)
            changed.append(record)
    return changed
