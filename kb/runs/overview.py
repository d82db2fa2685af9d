"""Summaries of runners and runs for listings (CLI tables, JSON, the site)."""

from typing import Any

from sqlmodel import Session, select

from kb.models import Paper, RunRecord
from kb.queries import claims_of
from kb.runs.records import list_runs
from kb.runs.registry import load_registry
from kb.runs.verdict import summary
from kb.settings import Settings


def run_row(record: RunRecord) -> dict[str, Any]:
    return {
        "id": record.id, "runner": record.runner, "preset": record.preset, "status": record.status,
        "dataset": record.dataset, "dataset_synthetic": record.dataset_synthetic, "final": record.final,
        "verdict": summary(record.verdicts) if record.status == "succeeded" else record.status,
        "verdicts": record.verdicts, "device": record.device, "seed": record.seed,
        "started": record.started.isoformat() if record.started else None,
        "ended": record.ended.isoformat() if record.ended else None,
        "regression": bool(record.info.get("regression")), "error": record.error,
    }


def runs_table(*, session: Session, runner: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    rows = [run_row(r) for r in list_runs(runner=runner, status=status, limit=limit, session=session)]
    # Regressions first, then newest first (list_runs already orders by creation).
    return sorted(rows, key=lambda r: not r["regression"])


def runner_overview(settings: Settings, *, session: Session) -> list[dict[str, Any]]:
    rows = []
    for spec in load_registry(settings.runner_paths).specs():
        paper = session.exec(select(Paper).where(Paper.key == spec.paper)).first()
        last = session.exec(select(RunRecord).where(RunRecord.runner == spec.name).order_by(RunRecord.created.desc())).first()
        rows.append({
            "name": spec.name, "paper": spec.paper, "paper_title": paper.title if paper else None,
            "summary": spec.summary, "datasets": list(spec.datasets), "presets": list(spec.presets),
            "claims": claims_of(spec.paper, session=session),
            "last_run": run_row(last) if last else None,
        })
    return rows
