"""Claimed vs reproduced: each of a paper's claims beside the run that answers it best."""

from dataclasses import dataclass
from typing import Any

from kb.runs.verdict import NOT_COMPARABLE
from kb.site.snapshot import RunView


@dataclass(frozen=True)
class ClaimResult:
    claim: dict[str, Any]
    run: RunView | None = None
    verdict: dict[str, Any] | None = None     # the run's verdict on this claim (kb/runs/verdict.py)

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
        best = (comparable or judged or [(None, None)])[0]
        results.append(ClaimResult(claim=claim, run=best[0], verdict=best[1]))
    return results
