"""kb.runs.regression: what counts as a regression (by hand), and the scheduled path end to end."""

import json
from datetime import datetime, timezone

from sqlmodel import select, update

from kb.db import session_scope
from kb.models import Job, Regression, RunRecord, Schedule
from kb.runs.regression import Policy, findings
from kb.schedules import add, tick

CLAIMS = [
    {"metric": "accuracy", "dataset": "set", "value": 0.9, "direction": "higher", "tolerance": 0.05},
    {"metric": "error", "dataset": "set", "value": 2.0, "direction": "lower", "tolerance": 0.5},
    {"metric": "bleu", "dataset": "set", "value": 30.0, "direction": "higher", "when": {"arch": "big"}},
]


def run(final: dict, *, throughput: float = 100.0, verdicts: list | None = None, config: dict | None = None) -> RunRecord:
    return RunRecord(id="r", runner="x", paper_key="p", preset="smoke", status="succeeded", run_dir="/", final=final,
                     throughput=throughput, verdicts=verdicts or [], config=config or {"arch": "small"})


def kinds(found):
    return [(f["kind"], f.get("metric")) for f in found]


def test_worse_beyond_the_claims_tolerance_in_either_direction():
    baseline = run({"accuracy": 0.90, "error": 2.0, "bleu": 30.0})
    # accuracy -0.06 > 0.05 (worse); error +0.4 <= 0.5 (within); bleu's claim is for arch=big only.
    found = findings(run({"accuracy": 0.84, "error": 2.4, "bleu": 1.0}), baseline, CLAIMS, failure=None, policy=Policy())
    assert kinds(found) == [("metric", "accuracy")]
    assert found[0]["before"] == 0.90 and found[0]["after"] == 0.84
    found = findings(run({"accuracy": 0.86, "error": 2.6}), baseline, CLAIMS, failure=None, policy=Policy())
    assert kinds(found) == [("metric", "error")]
    assert findings(run({"accuracy": 0.99, "error": 1.0}), baseline, CLAIMS, failure=None, policy=Policy()) == []


def test_a_claim_lost_a_failure_and_a_throughput_drop():
    reproduced = [{"metric": "accuracy", "dataset": "set", "verdict": "reproduced", "claimed": 0.9, "ours": 0.9}]
    lost = [{"metric": "accuracy", "dataset": "set", "verdict": "not reproduced", "claimed": 0.9, "ours": 0.86,
             "reason": "0.86 vs claimed 0.9"}]
    baseline = run({"accuracy": 0.90}, verdicts=reproduced)
    found = findings(run({"accuracy": 0.86}, verdicts=lost), baseline, CLAIMS, failure=None, policy=Policy())
    assert kinds(found) == [("claim", "accuracy")]
    # 100 -> 69 samples/s is a 31 % drop, beyond the default 30 %; 100 -> 71 is not.
    assert kinds(findings(run({}, throughput=69.0), baseline, CLAIMS, failure=None, policy=Policy())) == [("throughput", None)]
    assert findings(run({}, throughput=71.0), baseline, CLAIMS, failure=None, policy=Policy()) == []
    failed = findings(run({}), baseline, CLAIMS, failure="RuntimeError: boom", policy=Policy())
    assert kinds(failed) == [("failure", None)] and "RuntimeError: boom" in failed[0]["message"]
    assert findings(run({"accuracy": 0.1}), None, CLAIMS, failure=None, policy=Policy()) == []  # nothing to compare with


def _schedule(lab, *overrides: str) -> None:
    with session_scope(lab.settings) as session:
        schedule = session.exec(select(Schedule)).first()
        if schedule is None:
            add(lab.settings, "trivial", session=session, cron="0 * * * *", preset="smoke", overrides=overrides,
                now=datetime(2025, 1, 1, tzinfo=timezone.utc))
        else:
            session.exec(update(Schedule).values(overrides=list(overrides)))


def _tick_and_drain(lab, hour: int) -> RunRecord:
    (job,) = tick(lab.settings, now=datetime(2025, 1, 1, hour, tzinfo=timezone.utc))
    lab.drain()
    with session_scope(lab.settings) as session:
        return session.get(RunRecord, session.get(Job, job.id).run_id)


def _regressions(lab) -> list[Regression]:
    with session_scope(lab.settings) as session:
        return list(session.exec(select(Regression).order_by(Regression.id)))


def test_scheduled_smoke_run_then_a_broken_runner_gives_a_regression_and_a_notification(lab, kb, monkeypatch):
    notified = lab.root / "notified.jsonl"
    monkeypatch.setenv("KB_ON_REGRESSION", f"cat >> {notified}; echo >> {notified}")
    _schedule(lab)
    good = _tick_and_drain(lab, 1)
    assert good.status == "succeeded" and [v["verdict"] for v in good.verdicts] == ["reproduced"]
    assert _regressions(lab) == [] and not notified.exists()

    _schedule(lab, "accuracy=0.5", "images_per_s=100")
    worse = _tick_and_drain(lab, 2)
    _schedule(lab, "fail=true")
    broken = _tick_and_drain(lab, 3)

    first, second = _regressions(lab)
    assert (first.run_id, first.baseline_id) == (worse.id, good.id)
    assert [f["kind"] for f in first.findings] == ["metric", "claim", "throughput"]
    assert first.differences["config"]["accuracy"] == [0.9, 0.5]
    assert (second.run_id, second.baseline_id) == (broken.id, good.id)
    assert [f["kind"] for f in second.findings] == ["failure"] and "deliberately broken runner" in second.findings[0]["message"]
    assert first.notified and second.notified
    messages = [json.loads(line) for line in notified.read_text().splitlines() if line.strip()]
    assert [m["run_id"] for m in messages] == [worse.id, broken.id]
    assert "regressed in run" in messages[0]["summary"] and messages[0]["differences"]["config"]["accuracy"] == [0.9, 0.5]

    runs = json.loads(kb("runs", "--json").out)
    assert [r["regression"] for r in runs] == [True, True, False]
    shown = kb("regressions").out
    assert f"REGRESSION {worse.id}" in shown and "config accuracy: 0.9 -> 0.5" in shown


def test_a_failing_notifier_never_loses_the_record(lab, monkeypatch):
    monkeypatch.setenv("KB_ON_REGRESSION", "echo chat is down >&2; exit 3")
    _schedule(lab)
    _tick_and_drain(lab, 1)
    _schedule(lab, "fail=true")
    broken = _tick_and_drain(lab, 2)
    (regression,) = _regressions(lab)
    assert regression.run_id == broken.id and not regression.notified
    assert regression.notify_error.endswith("exited with 3: chat is down")
    with session_scope(lab.settings) as session:
        assert session.get(RunRecord, broken.id).info["regression"] is True
