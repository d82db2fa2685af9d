"""Claimed vs reproduced: each of a paper's claims beside the run that answers it best."""

import statistics
from dataclasses import dataclass
from typing import Any

from kb.runs.verdict import NOT_COMPARABLE
from kb.site.snapshot import RunView


@dataclass(frozen=True)
class ClaimResult:
    claim: dict[str, Any]
    run: RunView | None = None
    verdict: dict[str, Any] | None = None     # the run's verdict on this claim (kb/runs/verdict.py)
    seeds: tuple[float, ...] = ()             # the claim's metric in every seed of the run's experiment

    @property
    def seed_summary(self) -> str:
        """"-0.04 ± 0.07 (3 seeds)" when the experiment ran with more than one seed."""
        if len(self.seeds) < 2:
            return ""
        return f"{statistics.mean(self.seeds):.4g} ± {statistics.stdev(self.seeds):.2g} ({len(self.seeds)} seeds)"

    @property
    def label(self) -> str:
        return self.verdict["verdict"] if self.verdict else "no run"

    @property
    def data_used(self) -> str:
        """The data the answering run trained and evaluated on, marked when it was synthetic."""
        if self.run is None:
            return ""
        return f"{self.run.dataset or 'unknown data'}{' (synthetic)' if self.run.dataset_synthetic else ''}"


def _same_claim(claim: dict[str, Any], verdict: dict[str, Any]) -> bool:
    return (verdict.get("metric"), verdict.get("dataset"), verdict.get("setting") or "") == (
        claim.get("metric"), claim.get("dataset"), claim.get("setting") or "")


def claim_results(claims: tuple[dict[str, Any], ...], runs: list[RunView]) -> list[ClaimResult]:
    """For each claim: the newest run judged on the claim's own data (reproduced or not); failing
    that the newest run that judged it at all (not comparable: other or synthetic data); else none.

    ``runs`` are the paper's runs, newest first.
    """
    results = []
    for claim in claims:
        judged = [(run, v) for run in runs for v in run.verdicts if _same_claim(claim, v)]
        comparable = [(run, v) for run, v in judged if v.get("verdict") != NOT_COMPARABLE]
        run, verdict = (comparable or judged or [(None, None)])[0]
        seeds = _seed_values(run, claim["metric"], runs) if run is not None else ()
        results.append(ClaimResult(claim=claim, run=run, verdict=verdict, seeds=seeds))
    return results


def _seed_values(run: RunView, metric: str, runs: list[RunView]) -> tuple[float, ...]:
    """``metric`` in the newest succeeded run of each seed of the same experiment: same runner,
    preset, data and config (fields that only one of the two runs has are ignored, so a field
    added to the runner later does not split an experiment)."""
    by_seed: dict[int, float] = {}
    for other in runs:
        if (other.status != "succeeded" or metric not in other.final or other.seed in by_seed
                or (other.runner, other.preset, other.dataset, other.dataset_fingerprint)
                != (run.runner, run.preset, run.dataset, run.dataset_fingerprint)):
            continue
        shared = set(other.config) & set(run.config)
        if all(other.config[k] == run.config[k] for k in shared):
            by_seed[other.seed] = float(other.final[metric])
    return tuple(by_seed[seed] for seed in sorted(by_seed))
