"""Summaries of runners and runs for listings (CLI tables, JSON, the site).

The ORM is imported inside the functions that query, so a listing that only formats rows, or
asks ``kb.runs.headline`` for a paper's headline result, does not pay for it.
"""

from typing import Any

from kb.runs.headline import headline, labels
from kb.runs.verdict import summary


def run_row(record: Any) -> dict[str, Any]:
    """A run as a listing shows it (``record``: a ``kb.models.RunRecord``)."""
    return {
        "id": record.id, "runner": record.runner, "preset": record.preset, "status": record.status,
        "dataset": record.dataset, "dataset_synthetic": record.dataset_synthetic, "final": record.final,
        "verdict": summary(record.verdicts) if record.status == "succeeded" else record.status,
        "verdicts": record.verdicts, "device": record.device, "seed": record.seed,
        "started": record.started.isoformat() if record.started else None,
        "ended": record.ended.isoformat() if record.ended else None,
        "regression": bool(record.info.get("regression")), "error": record.error, "labels": labels(record),
    }


def runs_table(*, session, runner: str | None = None, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    from kb.runs.records import list_runs

    rows = [run_row(r) for r in list_runs(runner=runner, status=status, limit=limit, session=session)]
    # Regressions first, then newest first (list_runs already orders by creation).
    return sorted(rows, key=lambda r: not r["regression"])


def runner_overview(settings, *, session) -> list[dict[str, Any]]:
    """Every registered runner with its paper, claims, newest run and headline result
    (``kb.runs.headline.headline``: the rule the site's pages follow too)."""
    from sqlmodel import select

    from kb.models import Paper
    from kb.queries import claims_of
    from kb.runs.records import list_runs
    from kb.runs.registry import load_registry

    rows = []
    for spec in load_registry(settings.runner_paths).specs():
        paper = session.exec(select(Paper).where(Paper.key == spec.paper)).first()
        claims = claims_of(spec.paper, session=session)
        runs = list_runs(runner=spec.name, session=session)
        best = headline(claims, runs)
        rows.append({
            "name": spec.name, "paper": spec.paper, "paper_title": paper.title if paper else None,
            "summary": spec.summary, "datasets": list(spec.datasets), "presets": list(spec.presets),
            "claims": claims, "last_run": run_row(runs[0]) if runs else None,
            "headline": best.as_dict() if best else None,
        })
    return rows
