"""A run's result against the paper's claims: reproduced, not reproduced, not comparable, or
"needs N seeds (have k)".

A claim is judged only on a run of its setting: ``when:`` names config fields (a missing field, in
a run of an older runner version, is a mismatch, never a match). A claim with ``seeds: N`` is judged
on the mean of at least N seeds of the same experiment. A data-free claim (its metric is one of
``DATA_FREE_METRICS``) is judged only on an architecture run (``kb reproduce --architecture-only``),
and the others only on training runs.
"""

import json
import statistics
from decimal import Decimal
from typing import Any

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable"

# What ``kb reproduce NAME --architecture-only`` measures: a claim on one of these is data-free.
DATA_FREE_METRICS = ("parameters", "model_bytes", "model_mb", "flops", "mult_adds")
# Counted metrics may be claimed in thousands, millions or billions, as papers print them ("0.8M",
# "1.2B"); sizes are claimed in model_mb (model_bytes takes plain bytes: "B" there would read as billions).
COUNT_UNITS = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9, "B": 1e9}
COUNTED_METRICS = ("parameters", "flops", "mult_adds")
_MISSING = object()


def unit_suffix(unit: str | None) -> str:
    """How a claim's unit follows a number: "99.1%", "4.2x", "45 frames/s", "0.3 points", "0.8M"."""
    return "" if not unit else unit if unit in ("%", "x", *COUNT_UNITS) else f" {unit}"


def is_data_free(claim: dict[str, Any]) -> bool:
    """A claim measured on the model alone (parameters, size, FLOPs), without data or training.

    A claim on another metric that the runner's ``architecture`` computes without data (a parameter
    ratio against the paper's baseline, an expected depth, an operation-count speed-up) says so with
    ``data_free: true``.
    """
    return claim.get("data_free") is True or claim["metric"] in DATA_FREE_METRICS


def needs_seeds(wanted: int, have: int) -> str:
    """The verdict of a claim over ``wanted`` seeds when its experiment has only ``have``."""
    return f"needs {wanted} seeds (have {have})"


def is_judged(word: str) -> bool:
    """Whether a verdict compared the run's number with the claim's (reproduced or not)."""
    return word in (REPRODUCED, NOT_REPRODUCED)


def answers(verdict: dict[str, Any], claim: dict[str, Any]) -> bool:
    """Whether a run's ``verdict`` is its verdict on ``claim`` (same metric, data and setting)."""
    return (verdict.get("metric"), verdict.get("dataset"), verdict.get("setting") or "") == (
        claim.get("metric"), claim.get("dataset"), claim.get("setting") or "")


def override_flags(overrides: dict[str, Any]) -> str:
    """A run's overrides as it was started: ``--set epochs=2 --set lr=0.1`` ("" for none)."""
    return " ".join(f"--set {k}={v}" for k, v in overrides.items())


def reproduce_command(runner: str, preset: str, overrides: dict[str, Any]) -> str:
    """The command a run was started with: ``kb reproduce bnn --config paper --set epochs=2``."""
    return f"kb reproduce {runner} --config {preset} {override_flags(overrides)}".rstrip()


def condition(field: str, want: Any) -> str:
    """A ``when:`` condition in words: ``epochs=1000``, ``backbone_weights not ''``."""
    if isinstance(want, dict):
        return f"{field} not {want['not']!r}"
    return f"{field}={want}"


def _same(want: Any, got: Any) -> bool:
    if isinstance(want, dict):                       # {not: value}: anything but that value
        return got is not _MISSING and not _same(want["not"], got)
    if got is _MISSING:
        return False
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and want == got
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        return float(want) == float(got)             # width: 1 in paper.yaml is the config's 1.0
    if isinstance(want, (list, tuple)) and isinstance(got, (list, tuple)):
        return len(want) == len(got) and all(_same(a, b) for a, b in zip(want, got))
    return str(want) == str(got)


def mismatches(claim: dict[str, Any], config: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The ``when:`` fields this config does not meet: {field: (claimed setting, run's value)}.

    A field the config lacks (a run of an older runner version) does not meet the claim; its value
    is then the sentinel that ``describe_mismatch`` words as "no such field".
    """
    found = {}
    for field, want in (claim.get("when") or {}).items():
        got = config.get(field, _MISSING)
        if not _same(want, got):
            found[field] = (want, got)
    return found


def applies(claim: dict[str, Any], config: dict[str, Any]) -> bool:
    """A claim with ``when: {field: value}`` concerns only runs whose config has those values."""
    return not mismatches(claim, config)


def describe_mismatch(differs: dict[str, tuple[Any, Any]]) -> str:
    """"the claim is for epochs=1000; this run has epochs=2" (and names fields the run lacks)."""
    wanted = ", ".join(condition(k, want) for k, (want, _) in differs.items())
    has = [f"{k}={got}" for k, (_, got) in differs.items() if got is not _MISSING]
    lacks = [k for k, (_, got) in differs.items() if got is _MISSING]
    said = [f"this run has {', '.join(has)}"] if has else []
    if lacks:
        said.append(f"this run's config has no {', '.join(lacks)} (a run of an older runner version)")
    return f"the claim is for {wanted}; {'; '.join(said)}"


def _scale(claim: dict[str, Any]) -> float:
    return COUNT_UNITS.get(claim.get("unit") or "", 1.0) if claim["metric"] in COUNTED_METRICS else 1.0


def rounding_tolerance(value: float) -> float:
    """Half a unit of the last digit written: 0.8 (M) means 0.75-0.85, 7850 means 7849.5-7850.5."""
    if not isinstance(value, float):
        return 0.5
    # YAML keeps "45.0" as the float 45.0, whose repr keeps the written decimal; an exponent above 0
    # ("1e+20") still means a whole number.
    return 0.5 * 10.0 ** min(int(Decimal(repr(value)).as_tuple().exponent), 0)


def tolerance_of(claim: dict[str, Any]) -> float:
    """The claim's ``tolerance``; a data-free claim without one follows the paper's rounding."""
    if claim.get("tolerance") is not None:
        return float(claim["tolerance"])
    return rounding_tolerance(claim["value"]) if is_data_free(claim) else 0.0


def judge(claim: dict[str, Any], *, final: dict[str, float], dataset: str | None, synthetic: bool,
          device_name: str, seeds: list[dict[str, float]] | None = None) -> dict[str, Any]:
    """One claim against one run's final metrics.

    Args:
        seeds: the final metrics of each seed of the run's experiment (this run's among them); a claim
            with ``seeds: N`` is judged on their mean. None: this run alone.
    """
    metric, claimed = claim["metric"], float(claim["value"])
    tolerance, scale = tolerance_of(claim), _scale(claim)
    verdict: dict[str, Any] = {
        "metric": metric, "dataset": claim["dataset"], "claimed": claimed,
        "ours": final[metric] / scale if metric in final else None,
        "tolerance": tolerance, "direction": claim["direction"], "source": claim.get("source"),
        "unit": claim.get("unit", ""), "setting": claim.get("setting", ""),
    }
    if metric not in final:
        return {**verdict, "verdict": NOT_COMPARABLE, "reason": f"the run did not record {metric}"}
    if not is_data_free(claim):
        if synthetic or dataset != claim["dataset"]:
            used = f"{dataset or 'unknown data'}{' (synthetic)' if synthetic else ''}"
            return {**verdict, "verdict": NOT_COMPARABLE, "reason": f"the run used {used}; the claim is on {claim['dataset']}"}
        wanted_device = claim.get("device")
        if wanted_device and wanted_device.lower() not in (device_name or "").lower():
            return {**verdict, "verdict": NOT_COMPARABLE,
                    "reason": f"the claim was measured on {wanted_device}; this run ran on {device_name}"}
    ours, said = verdict["ours"], f"{verdict['ours']:g}"
    wanted = claim.get("seeds")
    if wanted:
        values = [float(f[metric]) / scale for f in (seeds or [final]) if metric in f]
        ours = statistics.mean(values)
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        verdict.update(ours=ours, sd=spread, seeds=len(values))
        said = f"mean of {len(values)} seeds {ours:g} ± {spread:.2g}"
        if len(values) < wanted:
            return {**verdict, "verdict": needs_seeds(wanted, len(values)),
                    "reason": f"the claim is judged on the mean of at least {wanted} seeds of the same runner, preset, "
                              f"config and data; this experiment has {len(values)} ({said})"}
    difference = ours - claimed
    if is_data_free(claim):
        # The model either is the paper's or is not: as far off in either direction is as wrong (a
        # hair of slack for the float in 0.85 - 0.8 = 0.04999...).
        ok = abs(difference) <= tolerance + 1e-9 * max(1.0, abs(claimed))
    else:
        # Doing better than the paper counts as reproducing it; worse must stay within the tolerance.
        ok = difference >= -tolerance if claim["direction"] == "higher" else difference <= tolerance
    return {**verdict, "difference": round(difference, 6), "verdict": REPRODUCED if ok else NOT_REPRODUCED,
            "reason": f"{said} vs claimed {claimed:g} ({difference:+.4g}, tolerance {tolerance:g})"}


def judge_all(claims: list[dict[str, Any]], *, config: dict[str, Any], final: dict[str, float],
              dataset: str | None, synthetic: bool, device_name: str, kind: str = "train",
              seeds: list[dict[str, float]] | None = None) -> list[dict[str, Any]]:
    """Every claim of the run's kind whose ``when:`` the run meets is judged. A metric that no
    applicable claim covers still shows its claims, as not comparable and naming the setting that
    differs (a 1024-unit run beside a claim made for 4096 units), so the paper's number always sits
    next to the run's.

    Args:
        kind: ``train`` runs are judged on the claims that need data, ``architecture`` runs on the
            data-free ones; the other kind's claims are left out.
        seeds: see ``judge``.
    """
    claims = [c for c in claims if is_data_free(c) == (kind == "architecture")]

    def judged(claim: dict[str, Any]) -> dict[str, Any]:
        return judge(claim, final=final, dataset=dataset, synthetic=synthetic, device_name=device_name, seeds=seeds)

    verdicts = [judged(c) for c in claims if applies(c, config)]
    covered = {v["metric"] for v in verdicts}
    for claim in claims:
        differs = mismatches(claim, config)
        if not differs or claim["metric"] in covered:
            continue
        base = judged(claim)
        for key in ("difference", "sd", "seeds"):
            base.pop(key, None)
        reason = describe_mismatch(differs)
        if base["verdict"] == NOT_COMPARABLE:  # other data or hardware too: say that first
            reason = f"{base['reason']}; and {reason}"
        verdicts.append({**base, "ours": final[claim["metric"]] / _scale(claim) if claim["metric"] in final else None,
                         "verdict": NOT_COMPARABLE, "reason": reason})
    return verdicts


def summary(verdicts: list[dict[str, Any]]) -> str:
    """A run's verdicts in a few words: "reproduced" only when every comparable claim is,
    "partly reproduced (1 of 2)" when some are, else "not reproduced"; a run whose claims all wait
    for more seeds says so ("needs 3 seeds (have 2)"), one judged on nothing "not comparable"."""
    judged = [v for v in verdicts if is_judged(v["verdict"])]
    if not judged:
        waiting = [v["verdict"] for v in verdicts if v["verdict"].startswith("needs ")]
        return waiting[0] if waiting else NOT_COMPARABLE if verdicts else "no matching claim"
    good = sum(v["verdict"] == REPRODUCED for v in judged)
    if good == len(judged):
        return REPRODUCED
    return NOT_REPRODUCED if good == 0 else f"partly reproduced ({good} of {len(judged)})"


def experiments(records: list[Any]) -> dict[str, tuple]:
    """Each run's experiment, the key its seeds share: runner, preset, kind, data and config
    (``records``: runs with the fields of ``kb.models.RunRecord``).

    A config field that some runs of the same runner, preset and data lack (a field added to the runner
    later) does not split them when every run that has it has the same value; it does when they differ.
    """
    buckets: dict[tuple, list[Any]] = {}
    for record in records:
        buckets.setdefault((record.runner, record.preset, record.kind, record.dataset, record.dataset_fingerprint,
                            record.dataset_synthetic), []).append(record)
    keys = {}
    for bucket, runs in buckets.items():
        fields = {name for run in runs for name in run.config}
        added_later = {name for name in fields if any(name not in run.config for run in runs)
                       and len({json.dumps(run.config[name]) for run in runs if name in run.config}) == 1}
        for run in runs:
            kept = {k: v for k, v in run.config.items() if k not in added_later}
            keys[run.id] = (*bucket, json.dumps(kept, sort_keys=True))
    return keys
