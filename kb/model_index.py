"""``kb export model-index``: papers' claims and kb's best comparable runs as Hugging Face
``model-index`` metadata (the ``model-index:`` block of a model card's YAML front matter).

Each model-index entry is ``{name, results: [{task: {type}, dataset: {type, name, split},
metrics: [{type, value, name, verified}], source: {name, url}}]}``. The paper's own numbers and
kb's measurements never share an entry: the paper's are named ``<model> (<slug>, paper)`` with the
paper as their source, a run's ``<model> (<slug>, kb run <id>)`` with the run as its source and
``verified: false`` (Hugging Face marks as verified only what it evaluated itself).
"""

from typing import Any

import yaml
from sqlmodel import Session, select

from kb.models import Paper, RunRecord
from kb.queries import get_paper, paper_links
from kb.runs.verdict import answers, is_judged, reproduce_command

UNKNOWN_TASK = "other"          # a claim without ``task:`` (add one: object-detection, image-classification ...)


def _metric(claim: dict[str, Any], value: float, *, verified: bool | None = None) -> dict[str, Any]:
    unit = claim.get("unit") or ""
    metric = {"type": claim["metric"], "value": value, "name": f"{claim['metric']} ({unit})" if unit else claim["metric"]}
    if verified is not None:
        metric["verified"] = verified
    return metric


def _result(claim: dict[str, Any], metric: dict[str, Any], source: dict[str, str]) -> dict[str, Any]:
    dataset = {"type": claim["dataset"], "name": claim["dataset"]}
    if claim.get("split"):
        dataset["split"] = claim["split"]
    return {"task": {"type": claim.get("task") or UNKNOWN_TASK}, "dataset": dataset, "metrics": [metric], "source": source}


def _best_run(claim: dict[str, Any], runs: list[RunRecord]) -> tuple[RunRecord, dict[str, Any]] | None:
    """The run whose comparable verdict on ``claim`` is best (highest or lowest, as the claim's
    direction says); newest first among equals. None when no run was comparable."""
    judged = [(run, v) for run in runs for v in run.verdicts if answers(v, claim) and is_judged(v["verdict"])]
    if not judged:
        return None
    sign = 1 if claim["direction"] == "higher" else -1
    return max(judged, key=lambda pair: sign * pair[1]["ours"])


def _run_source(run: RunRecord, verdict: dict[str, Any], slug: str) -> dict[str, str]:
    seeds = f", mean of {verdict['seeds']} seeds" if verdict.get("seeds") else f", seed {run.seed}"
    return {"name": f"kb run {run.id}: {reproduce_command(run.runner, run.preset, run.overrides)}{seeds}, "
                    f"code {run.git_commit or 'unknown'} ({verdict['verdict']} against the paper's number)",
            "url": f"papers/{slug}/runs/{run.id}.json"}


def paper_entries(paper: Paper, *, session: Session) -> list[dict[str, Any]]:
    """The model-index entries of one paper: its claims by model, then its best comparable runs."""
    runs = list(session.exec(select(RunRecord).where(RunRecord.paper_key == paper.key, RunRecord.status == "succeeded")
                             .order_by(RunRecord.created.desc(), RunRecord.id)))
    url = paper_links(paper).get("abs") or next(iter(paper_links(paper).values()))
    claimed: dict[str, list[dict[str, Any]]] = {}
    measured: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for claim in paper.claims:
        model = claim.get("model") or paper.title
        source = {"name": f"{paper.title}, {claim['source']}", "url": url}
        claimed.setdefault(model, []).append(_result(claim, _metric(claim, claim["value"]), source))
        best = _best_run(claim, runs)
        if best is not None:
            run, verdict = best
            result = _result(claim, _metric(claim, verdict["ours"], verified=False), _run_source(run, verdict, paper.slug))
            measured.setdefault((model, run.id), []).append(result)
    entries = [{"name": f"{model} ({paper.slug}, paper)", "results": results} for model, results in claimed.items()]
    entries += [{"name": f"{model} ({paper.slug}, kb run {run_id})", "results": results}
                for (model, run_id), results in measured.items()]
    return entries


def model_index(refs: list[str], *, session: Session) -> str:
    """The ``model-index:`` YAML of the named papers (every paper with claims when none is named)."""
    papers = [get_paper(r, session=session) for r in refs] if refs else list(session.exec(select(Paper).order_by(Paper.slug)))
    entries = [entry for paper in papers for entry in paper_entries(paper, session=session)]
    return yaml.safe_dump({"model-index": entries}, sort_keys=False, allow_unicode=True, width=100)
