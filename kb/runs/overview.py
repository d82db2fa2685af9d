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


def runs_table(*, catalog, runner: str | None = None, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The runs a listing shows; ``catalog``: a ``kb.reader`` catalog (sqlite3, or an ORM session)."""
    rows = [run_row(r) for r in catalog.list_runs(runner=runner, status=status, limit=limit)]
    # Regressions first, then newest first (list_runs already orders by creation).
    return sorted(rows, key=lambda r: not r["regression"])


def runner_overview(registry, *, catalog) -> list[dict[str, Any]]:
    """Every runner of ``registry`` (``kb.runs.registry.load_registry``) with its paper, claims, newest
    run and headline result (``kb.runs.headline.headline``: the rule the site's pages follow too);
    ``catalog``: a ``kb.reader`` catalog (sqlite3, or an ORM session)."""
    rows = []
    for spec in registry.specs():
        paper = catalog.paper_by_key(spec.paper)
        claims = list(paper.claims or []) if paper else []
        runs = catalog.list_runs(runner=spec.name)
        best = headline(claims, runs)
        rows.append({
            "name": spec.name, "paper": spec.paper, "paper_title": paper.title if paper else None,
            "summary": spec.summary, "datasets": list(spec.datasets), "presets": list(spec.presets),
            "claims": claims, "last_run": run_row(runs[0]) if runs else None,
            "headline": best.as_dict() if best else None,
        })
    return rows
