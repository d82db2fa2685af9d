"""Regressions: a scheduled run that did worse than the last good run of its runner and preset.

A finished scheduled run is compared with that baseline and with the paper's claims. Any of these
is a regression: the run failed; a claimed metric got worse than the baseline by more than the
claim's tolerance; a claim the baseline reproduced is no longer reproduced; throughput dropped by
more than ``Policy.throughput_drop``. The regression is stored with the config and environment
differences that could explain it (library versions, commit, device), the run is flagged so
listings show it first (in the catalog, and in its run folder's ``regression.json`` and
``record.json``, so a rebuilt catalog has it too), and then an optional notifier
(``KB_ON_REGRESSION``) gets it as JSON on stdin. The record is committed before the notifier
runs, so a failing notifier never loses it.
"""

import json
import subprocess
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, func, select

from kb.db import session_scope
from kb.errors import BadInput
from kb.models import Job, Regression, RunRecord
from kb.queries import claims_of
from kb.runs.record_file import write_record, write_regression
from kb.runs.records import compare
from kb.runs.verdict import REPRODUCED, applies
from kb.settings import Settings, read_environment

NOTIFY_TIMEOUT_S = 60


@dataclass(frozen=True)
class Policy:
    """What counts as a regression beyond the claims' tolerances.

    Attributes:
        throughput_drop: the share of the baseline's throughput a run may lose (0.3: 30 %)
            before the drop is a regression (``KB_REGRESSION_THROUGHPUT_DROP``).
    """

    throughput_drop: float = 0.3

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Policy":
        raw = read_environment(env).get("KB_REGRESSION_THROUGHPUT_DROP")
        if not raw:
            return cls()
        try:
            drop = float(raw)
        except ValueError:
            drop = -1.0
        if not 0 < drop < 1:
            raise BadInput(f"KB_REGRESSION_THROUGHPUT_DROP={raw!r}: expected a share between 0 and 1, such as 0.3")
        return cls(throughput_drop=drop)


def baseline_for(record: RunRecord, *, session: Session) -> RunRecord | None:
    """The last good run before ``record``: same runner and preset, succeeded, not itself a regression."""
    earlier = session.exec(select(RunRecord).where(RunRecord.runner == record.runner, RunRecord.preset == record.preset,
                                                   RunRecord.status == "succeeded", RunRecord.id != record.id,
                                                   RunRecord.created < record.created)
                           .order_by(RunRecord.created.desc()).limit(100))
    return next((run for run in earlier if not run.info.get("regression")), None)


def findings(record: RunRecord, baseline: RunRecord | None, claims: list[dict[str, Any]], *,
             failure: str | None, policy: Policy) -> list[dict[str, Any]]:
    """What got worse in ``record`` against ``baseline`` and the claims; empty when nothing did.

    Args:
        record: the finished run.
        baseline: the last good run of the same runner and preset, if any.
        claims: the paper's claims; those that apply to the run's config give each metric's
            direction and tolerance.
        failure: why the run's job failed, or None when it succeeded.
        policy: the throughput rule.
    """
    found: list[dict[str, Any]] = []
    against = f"the last good run {baseline.id}" if baseline else "no earlier good run"
    if failure is not None:
        found.append({"kind": "failure", "message": f"the run failed ({failure}); {against} succeeded" if baseline
                      else f"the run failed ({failure}); there is no earlier good run"})
        return found
    if baseline is None:
        return found
    seen = set()
    for claim in claims:
        metric = claim["metric"]
        if not applies(claim, record.config) or metric in seen:
            continue
        seen.add(metric)
        before, after = baseline.final.get(metric), record.final.get(metric)
        if before is None or after is None:
            continue
        tolerance = float(claim.get("tolerance") or 0.0)
        worse = before - after if claim["direction"] == "higher" else after - before
        if worse > tolerance:
            found.append({"kind": "metric", "metric": metric, "before": before, "after": after, "tolerance": tolerance,
                          "direction": claim["direction"],
                          "message": f"{metric} went from {before:.6g} to {after:.6g} ({claim['direction']} is better; "
                                     f"tolerance {tolerance:g})"})
    reproduced_before = {(v["metric"], v["dataset"]) for v in baseline.verdicts if v["verdict"] == REPRODUCED}
    for verdict in record.verdicts:
        if (verdict["metric"], verdict["dataset"]) in reproduced_before and verdict["verdict"] != REPRODUCED:
            found.append({"kind": "claim", "metric": verdict["metric"], "dataset": verdict["dataset"],
                          "claimed": verdict["claimed"], "after": verdict["ours"],
                          "message": f"the claim {verdict['metric']} on {verdict['dataset']} was reproduced by "
                                     f"{baseline.id} and is now {verdict['verdict']}: {verdict.get('reason', '')}"})
    if baseline.throughput and record.throughput is not None:
        drop = 1 - record.throughput / baseline.throughput
        if drop > policy.throughput_drop:
            found.append({"kind": "throughput", "before": baseline.throughput, "after": record.throughput,
                          "drop": round(drop, 4),
                          "message": f"throughput fell {drop:.0%}, from {baseline.throughput:.4g} to "
                                     f"{record.throughput:.4g} samples/s"})
    return found


def detect(settings: Settings, record: RunRecord, *, session: Session, failure: str | None = None,
           job_id: int | None = None, policy: Policy = Policy()) -> Regression | None:
    """Store a regression for ``record`` when it has findings, and flag the run; None otherwise."""
    if session.exec(select(Regression).where(Regression.run_id == record.id)).first() is not None:
        return None
    baseline = baseline_for(record, session=session)
    claims = claims_of(record.paper_key, session=session)
    found = findings(record, baseline, claims, failure=failure, policy=policy)
    if not found:
        return None
    differences = {}
    if baseline is not None:
        compared = compare(baseline, record)
        differences = {"config": compared["config"], "env": compared["env"]}
    regression = Regression(run_id=record.id, baseline_id=baseline.id if baseline else None, runner=record.runner,
                            preset=record.preset, job_id=job_id, findings=found, differences=differences)
    record.info = {**record.info, "regression": True}
    session.add(record)
    session.add(regression)
    session.flush()
    return regression


def as_document(regression: Regression) -> dict[str, Any]:
    """The regression as the notifier and ``--json`` get it."""
    data = regression.model_dump()
    data["created"] = regression.created.isoformat()
    data["summary"] = f"{regression.runner} ({regression.preset}) regressed in run {regression.run_id}: " + "; ".join(
        f["message"] for f in regression.findings)
    return data


def notify(regression: Regression, *, command: str) -> str | None:
    """Run the notifier with the regression as JSON on stdin; returns why it failed, or None."""
    try:
        done = subprocess.run(command, shell=True, input=json.dumps(as_document(regression), ensure_ascii=False),
                              capture_output=True, text=True, timeout=NOTIFY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"the notifier {command!r} did not finish within {NOTIFY_TIMEOUT_S}s"
    except OSError as exc:
        return f"the notifier {command!r} could not start: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or [""]
        return f"the notifier {command!r} exited with {done.returncode}: {tail[0][:300]}"
    return None


def check_job(settings: Settings, job_id: int, *, policy: Policy = Policy(), command: str | None = None) -> Regression | None:
    """Compare the run of a finished scheduled job; store, flag and announce a regression."""
    with session_scope(settings) as session:
        job = session.get(Job, job_id)
        record = session.get(RunRecord, job.run_id) if job.run_id else None
        if job.schedule_id is None or record is None:
            return None
        failure = job.error or "no error recorded" if job.status == "failed" else None
        regression = detect(settings, record, session=session, failure=failure, job_id=job_id, policy=policy)
    if regression is None:
        return None
    write_record(record)
    write_regression(regression, record.run_dir)
    if not command:
        return regression
    problem = notify(regression, command=command)
    with session_scope(settings) as session:
        stored = session.get(Regression, regression.id)
        stored.notified, stored.notify_error = problem is None, problem
        session.add(stored)
    regression.notified, regression.notify_error = problem is None, problem
    write_regression(regression, record.run_dir)
    return regression


def list_regressions(*, session: Session, runner: str | None = None, limit: int | None = 50) -> list[Regression]:
    query = select(Regression).order_by(Regression.created.desc(), Regression.id.desc())
    if runner:
        query = query.where(Regression.runner == runner)
    if limit:
        query = query.limit(limit)
    return list(session.exec(query))


def count_regressions(*, session: Session, runner: str | None = None) -> int:
    """How many regressions ``list_regressions`` lists without a limit."""
    query = select(func.count()).select_from(Regression)
    if runner:
        query = query.where(Regression.runner == runner)
    return session.exec(query).one()
