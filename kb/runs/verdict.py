"""A run's result against the paper's claims: reproduced, not reproduced, or not comparable."""

from typing import Any

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable"


def applies(claim: dict[str, Any], config: dict[str, Any]) -> bool:
    """A claim with ``when: {field: value}`` concerns only runs whose config has those values."""
    return all(str(config.get(k)) == str(v) for k, v in (claim.get("when") or {}).items())


def judge(claim: dict[str, Any], *, final: dict[str, float], dataset: str | None, synthetic: bool,
          device_name: str) -> dict[str, Any]:
    """One claim against one run's final metrics."""
    metric, claimed = claim["metric"], float(claim["value"])
    tolerance = float(claim.get("tolerance") or 0.0)
    verdict: dict[str, Any] = {
        "metric": metric, "dataset": claim["dataset"], "claimed": claimed, "ours": final.get(metric),
        "tolerance": tolerance, "direction": claim["direction"], "source": claim.get("source"),
        "unit": claim.get("unit", ""), "setting": claim.get("setting", ""),
    }
    if metric not in final:
        return {**verdict, "verdict": NOT_COMPARABLE, "reason": f"the run did not record {metric}"}
    if synthetic or dataset != claim["dataset"]:
        used = f"{dataset or 'unknown data'}{' (synthetic)' if synthetic else ''}"
        return {**verdict, "verdict": NOT_COMPARABLE, "reason": f"the run used {used}; the claim is on {claim['dataset']}"}
    wanted_device = claim.get("device")
    if wanted_device and wanted_device.lower() not in (device_name or "").lower():
        return {**verdict, "verdict": NOT_COMPARABLE, "reason": f"the claim was measured on {wanted_device}; this run ran on {device_name}"}
    ours = float(final[metric])
    difference = ours - claimed
    # Doing better than the paper counts as reproducing it; worse must stay within the tolerance.
    ok = difference >= -tolerance if claim["direction"] == "higher" else difference <= tolerance
    return {**verdict, "difference": round(difference, 6), "verdict": REPRODUCED if ok else NOT_REPRODUCED,
            "reason": f"{ours:g} vs claimed {claimed:g} ({difference:+.4g}, tolerance {tolerance:g})"}


def judge_all(claims: list[dict[str, Any]], *, config: dict[str, Any], final: dict[str, float],
              dataset: str | None, synthetic: bool, device_name: str) -> list[dict[str, Any]]:
    return [judge(c, final=final, dataset=dataset, synthetic=synthetic, device_name=device_name)
            for c in claims if applies(c, config)]


def summary(verdicts: list[dict[str, Any]]) -> str:
    """One word for a run: the best verdict it earned (reproduced > not reproduced > not comparable)."""
    kinds = {v["verdict"] for v in verdicts}
    return next((k for k in (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE) if k in kinds), "no matching claim")
