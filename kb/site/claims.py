"""Claimed vs reproduced: each of a paper's claims beside the run that answers it best."""

import statistics
from dataclasses import dataclass
from typing import Any

from kb.runs.headline import headline
from kb.runs.verdict import answers
from kb.site.snapshot import RunView


@dataclass(frozen=True)
class ClaimResult:
    claim: dict[str, Any]
    run: RunView | None = None
    verdict: dict[str, Any] | None = None     # the run's verdict on this claim (kb/runs/verdict.py)
    seeds: tuple[float, ...] = ()             # the claim's metric in every seed of the run's experiment
    why: str = ""                             # why the run is not comparable ("not comparable: generated data")

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


def claim_results(claims: tuple[dict[str, Any], ...], runs: list[RunView]) -> list[ClaimResult]:
    """For each claim, the run that answers it by the headline rule (``kb.runs.headline.headline``
    over the runs judged on that claim): the best comparable run, else the run closest to the
    paper's setting, labelled why it is not comparable; else none. A newer smoke run never
    displaces either."""
    results = []
    for claim in claims:
        best = headline((claim,), [run for run in runs if any(answers(v, claim) for v in run.verdicts)])
        if best is None:
            results.append(ClaimResult(claim=claim))
            continue
        results.append(ClaimResult(claim=claim, run=best.run, verdict=best.verdict, seeds=best.seed_values,
                                   why=best.label))
    return results
