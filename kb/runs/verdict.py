"""A run's result against the paper's claims: reproduced, not reproduced, or not comparable."""

from typing import Any

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_COMPARABLE = "not comparable"


def unit_suffix(unit: str | None) -> str:
    """How a claim's unit follows a number: "99.1%", "4.2x", "45 frames/s", "0.3 points"."""
    return "" if not unit else unit if unit in ("%", "x") else f" {unit}"


def applies(claim: dict[str, Any], config: dict[str, Any]) -> bool:
    """A claim with ``when: {field: value}`` concerns only runs whose config has those values."""
    return not mismatches(claim, config)


def mismatches(claim: dict[str, Any], config: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """The ``when:`` fields this config does not meet: {field: (claimed setting, run's value)}."""
    return {k: (v, config.get(k)) for k, v in (claim.get("when") or {}).items() if str(config.get(k)) != str(v)}


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
    """Every claim whose ``when:`` the run meets is judged. A metric that no applicable claim covers
    still shows its claims, as not comparable and naming the setting that differs (a 1024-unit run
    beside a claim made for 4096 units), so the paper's number always sits next to the run's."""
    verdicts = [judge(c, final=final, dataset=dataset, synthetic=synthetic, device_name=device_name)
                for c in claims if applies(c, config)]
    judged = {v["metric"] for v in verdicts}
    for claim in claims:
        differs = mismatches(claim, config)
        if not differs or claim["metric"] in judged:
            continue
        base = judge(claim, final=final, dataset=dataset, synthetic=synthetic, device_name=device_name)
        settings = ", ".join(f"{k}={want}" for k, (want, _) in differs.items())
        ours = ", ".join(f"{k}={got}" for k, (_, got) in differs.items())
        base.pop("difference", None)
        reason = f"the claim is for {settings}; this run has {ours}"
        if base["verdict"] == NOT_COMPARABLE:  # other data or hardware too: say that first
            reason = f"{base['reason']}; and the claim is for {settings} (this run: {ours})"
        verdicts.append({**base, "verdict": NOT_COMPARABLE, "reason": reason})
    return verdicts


def summary(verdicts: list[dict[str, Any]]) -> str:
    """A run's verdicts in a few words: "reproduced" only when every comparable claim is,
    "partly reproduced (1 of 2)" when some are, else "not reproduced" / "not comparable"."""
    judged = [v for v in verdicts if v["verdict"] in (REPRODUCED, NOT_REPRODUCED)]
    if not judged:
        return NOT_COMPARABLE if verdicts else "no matching claim"
    good = sum(v["verdict"] == REPRODUCED for v in judged)
    if good == len(judged):
        return REPRODUCED
    return NOT_REPRODUCED if good == 0 else f"partly reproduced ({good} of {len(judged)})"
