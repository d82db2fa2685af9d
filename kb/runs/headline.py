"""The result that matters for a paper: its headline run, chosen by one rule for the site and the CLI.

A listing that shows "the newest run" shows a two-second smoke run on generated data as soon as
someone tries the README's Quick start. ``headline`` instead picks the run that answers the paper best
(the rule is in its docstring) and says plainly when even that one is not comparable with the paper.
``labels`` names what sets a run apart from a run of the paper's setting (smoke, overrides, generated
data), for the listings that show every run below the headline.

Pure and import-light: it takes run objects with the fields of ``kb.models.RunRecord`` (the site's
``RunView`` has them too) and the paper's claims; it never queries.
"""

import statistics
from dataclasses import dataclass
from typing import Any

from kb.runs.verdict import (
    NOT_COMPARABLE,
    REPRODUCED,
    answers,
    experiments,
    is_data_free,
    is_judged,
    mismatches,
    override_flags,
    summary,
)

SMOKE = "smoke"      # every runner's seconds-long preset (the registry test runs it)


def labels(run: Any) -> list[str]:
    """What sets ``run`` apart from a run of the paper's setting, in words: ``smoke``, ``overrides
    --set epochs=2``, ``generated data``, ``architecture only``."""
    found = []
    if run.preset == SMOKE:
        found.append("smoke")
    if run.overrides:
        found.append(f"overrides {override_flags(run.overrides)}")
    if run.dataset_synthetic:
        found.append("generated data")
    if run.kind == "architecture":
        found.append("architecture only")
    return found


def _claims_for(run: Any, claims: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The claims a run of its kind is judged on: data-free ones for architecture runs, the rest otherwise."""
    return [c for c in claims if is_data_free(c) == (run.kind == "architecture")]


def main_metric(run: Any, claims: list[dict[str, Any]]) -> str | None:
    """The metric a run's result is shown by: the first of the paper's claims (paper order: papers list
    their main result first) whose metric the run recorded; else the runner's main metric, the first
    one its ``main`` returned; None for a run that recorded none."""
    for claim in _claims_for(run, claims):
        if claim["metric"] in run.final:
            return claim["metric"]
    return next(iter(run.final), None)


def _closest_claim(run: Any, claims: list[dict[str, Any]], metric: str | None) -> dict[str, Any] | None:
    """The claim on ``metric`` that ``run`` is shown beside: the one it was judged on, else the one whose
    ``when:`` it misses by the fewest fields (paper order breaks ties)."""
    on_metric = [c for c in _claims_for(run, claims) if c["metric"] == metric]
    judged = [c for c in on_metric if any(answers(v, c) and is_judged(v["verdict"]) for v in run.verdicts)]
    return (judged or sorted(on_metric, key=lambda c: len(mismatches(c, run.config))) or [None])[0]


def _distance(run: Any, claims: list[dict[str, Any]]) -> int:
    """How many ``when:`` fields the run's config misses for the claim it comes closest to."""
    return min((len(mismatches(c, run.config)) for c in _claims_for(run, claims)), default=0)


def _age(run: Any) -> tuple[float, str]:
    """Sort key, oldest first (a run without a creation time counts as the oldest)."""
    return (run.created.timestamp() if run.created else 0.0, run.id)


@dataclass(frozen=True)
class Headline:
    """A paper's headline result.

    Attributes:
        run: the run shown (the newest of its experiment's seeds).
        seeds: the newest run of each seed of that experiment, ``run`` among them, by seed.
        metric: the metric shown (``main_metric``); None when the run recorded no metric.
        value: that metric in ``run``, or its mean over ``seeds`` when there are several.
        claim: the paper's claim the value stands beside (``_closest_claim``), if any.
        verdict: ``run``'s verdict on ``claim``, if it has one.
        comparable: whether ``run`` was judged against a claim (its data, setting and device match).
        label: "" when comparable, else why not: "not comparable: generated data".
    """

    run: Any
    seeds: tuple[Any, ...]
    metric: str | None
    value: float | None
    claim: dict[str, Any] | None
    verdict: dict[str, Any] | None
    comparable: bool
    label: str

    @property
    def seed_values(self) -> tuple[float, ...]:
        return tuple(float(r.final[self.metric]) for r in self.seeds if self.metric in r.final)

    def as_dict(self) -> dict[str, Any]:
        """JSON for ``kb runners --json`` and the like."""
        return {"run": self.run.id, "metric": self.metric, "value": self.value, "seeds": len(self.seeds),
                "claimed": self.claim["value"] if self.claim else None, "comparable": self.comparable,
                "verdict": summary(self.run.verdicts), "label": self.label, "labels": labels(self.run)}


def _why_not(run: Any, claim: dict[str, Any] | None, verdict: dict[str, Any] | None) -> str:
    """Why a run does not answer its claim, in a few words for a badge."""
    if run.dataset_synthetic:
        return f"{NOT_COMPARABLE}: generated data"
    if claim is None:
        return f"{NOT_COMPARABLE}: no claim on {run.dataset or 'this data'}"
    if run.dataset != claim["dataset"] and not is_data_free(claim):
        return f"{NOT_COMPARABLE}: run on {run.dataset or 'unknown data'}"
    if mismatches(claim, run.config):
        return f"{NOT_COMPARABLE}: other setting ({', '.join(mismatches(claim, run.config))})"
    if verdict is not None and verdict["verdict"].startswith("needs "):
        return verdict["verdict"]
    return f"{NOT_COMPARABLE}: {verdict['reason']}" if verdict else NOT_COMPARABLE


def headline(claims: list[dict[str, Any]] | tuple[dict[str, Any], ...], runs: list[Any]) -> Headline | None:
    """The run a paper's page, the home page and ``kb runners`` lead with; None before any run succeeded.

    The rule, over the paper's succeeded runs grouped into experiments (runner, preset, data, config:
    ``kb.runs.verdict.experiments``; of each seed only its newest run counts):

    1. Training runs come first; an architecture run (``--architecture-only``: parameter counts and
       the like, shown in the claims table) leads only a paper with no succeeded training run.
    2. A comparable experiment, one whose newest run was judged against a claim (the claim's own data,
       its ``when:`` setting, its device), beats any that is not. Among comparable ones: the most
       claims reproduced, then the most claims judged, then the better value of the headline metric
       (in the claim's direction), then the newest.
    3. When no experiment is comparable (e.g. only runs on generated data), the one closest to the
       paper's setting leads: not a smoke preset, no ``--set`` overrides, the fewest ``when:`` fields
       missed, real data before generated, then the better value and the newest. Runs record their
       data's size in no common field, so the setting (whose presets size the data) stands for it.
       The result then carries a label that says why it is not comparable ("not comparable:
       generated data"), so it is never read as a reproduction.

    The value is the headline metric of that run, or its mean over the experiment's seeds when it
    has several (a claim with ``seeds: N`` is judged on that mean too).

    Args:
        claims: the paper's claims, in ``paper.yaml``'s order.
        runs: the paper's runs, any order, any status.
    """
    claims = list(claims)
    done = [r for r in runs if r.status == "succeeded"]
    done = [r for r in done if r.kind != "architecture"] or done
    if not done:
        return None
    done.sort(key=_age, reverse=True)
    experiment = experiments(done)
    grouped: dict[tuple, dict[int, Any]] = {}
    for run in done:
        grouped.setdefault(experiment[run.id], {}).setdefault(run.seed, run)   # newest first: the first of a seed stays

    def ranked(seeds: dict[int, Any]) -> tuple:
        newest = max(seeds.values(), key=_age)
        metric = main_metric(newest, claims)
        claim = _closest_claim(newest, claims, metric)
        values = [float(r.final[metric]) for r in seeds.values() if metric in r.final]
        value = statistics.mean(values) if values else float("-inf")
        signed = -value if claim and claim["direction"] == "lower" and values else value
        judged = [v for v in newest.verdicts if is_judged(v["verdict"])]
        if judged:
            return (1, sum(v["verdict"] == REPRODUCED for v in judged), len(judged), signed, _age(newest))
        return (0, newest.preset != SMOKE, not newest.overrides, -_distance(newest, claims),
                not newest.dataset_synthetic, signed, _age(newest))

    best = max(grouped.values(), key=ranked)
    run = max(best.values(), key=_age)
    metric = main_metric(run, claims)
    claim = _closest_claim(run, claims, metric)
    verdict = next((v for v in run.verdicts if claim is not None and answers(v, claim)), None)
    comparable = verdict is not None and is_judged(verdict["verdict"])
    seeds = tuple(best[seed] for seed in sorted(best))
    values = [float(r.final[metric]) for r in seeds if metric in r.final]
    if verdict is not None and verdict.get("ours") is not None and (len(values) < 2 or verdict.get("seeds")):
        value = float(verdict["ours"])         # in the claim's unit (0.8 for "0.8M" parameters), seed mean included
    else:
        value = statistics.mean(values) if values else None
    return Headline(run=run, seeds=seeds, metric=metric, value=value, claim=claim, verdict=verdict,
                    comparable=comparable, label="" if comparable else _why_not(run, claim, verdict))
