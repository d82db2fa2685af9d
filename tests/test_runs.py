"""The run framework through a tiny runner: records, verdicts, interruption, resume, failures."""

import json
from pathlib import Path

import pytest

from kb.ingest.sync import sync
from kb.db import session_scope
from kb.errors import KBError, NotFound
from kb.models import Metric, RunRecord
from kb.runs.execute import Request, mark_dead_runs, reproduce
from kb.runs.records import thin_steps
from kb.runs.registry import Registry, RunnerSpec, load_registry
from kb.runs.verdict import judge_all, summary
from tests.conftest import write_paper

RUNNERS = Path(__file__).parent / "fixtures" / "framework_runners"
CLAIMS = """claims:
  - {metric: mse, dataset: points-test, value: 0.02, direction: lower, tolerance: 0.01, source: Table 1}
  - {metric: slope, dataset: points-test, value: 3.0, direction: higher, tolerance: 0.001, source: Table 2}
  - {metric: mse, dataset: points-test, value: 0.5, direction: lower, source: Table 3, when: {lr: 0.5}}
"""


@pytest.fixture
def settings(kb_env, monkeypatch):
    monkeypatch.setenv("KB_RUNNERS", str(RUNNERS))
    write_paper(kb_env.papers, "counter", "1901.00001", "Counting", extra="runners: [counter]\n" + CLAIMS)
    from kb.settings import load_settings

    settings = load_settings()
    sync(settings)
    return settings


def test_a_run_records_everything_a_reviewer_needs(settings):
    record = reproduce(settings, Request("counter", seed=3))
    assert record.status == "succeeded" and record.preset == "default" and record.seed == 3
    assert record.config["steps"] == 400 and record.dataset == "points-test" and record.dataset_fingerprint == "abc123"
    assert record.env["python"] and record.env["torch"] and record.device.startswith("CPU") and record.host
    assert record.git_commit and record.git_dirty is not None
    assert record.throughput and record.throughput > 0
    run_dir = Path(record.run_dir)
    for name in ("config.json", "env.json", "metrics.csv", "final.json", "log", "checkpoints/last.pt"):
        assert (run_dir / name).exists(), name
    assert json.loads((run_dir / "final.json").read_text())["metrics"]["mse"] == record.final["mse"]
    with session_scope(settings) as session:
        steps = [m for m in session.exec(Metric.__table__.select().where(Metric.run_id == record.id))]
    assert len([m for m in steps if m.kind == "step"]) == 400 and record.epochs[0]["mse"] == record.final["mse"]
    verdicts = {v["source"]: v for v in record.verdicts}
    assert set(verdicts) == {"Table 1", "Table 2"}            # Table 3 applies only when lr=0.5
    assert verdicts["Table 1"]["verdict"] == "reproduced"
    assert verdicts["Table 2"]["verdict"] == "not reproduced" and verdicts["Table 2"]["difference"] < 0


def test_synthetic_or_other_data_is_not_comparable(settings):
    record = reproduce(settings, Request("counter", preset="smoke", overrides=("dataset=generated", "lr=0.5")))
    assert {v["verdict"] for v in record.verdicts} == {"not comparable"}
    assert len(record.verdicts) == 3 and "synthetic" in record.verdicts[0]["reason"]


def test_a_claim_for_another_setting_is_shown_as_not_comparable_with_the_difference():
    claims = [{"metric": "err", "dataset": "d", "value": 1.0, "direction": "lower", "source": "Table 1",
               "when": {"hidden": 4096, "layers": 3}},
              {"metric": "fps", "dataset": "d", "value": 45, "direction": "higher", "source": "Table 2",
               "when": {"arch": "big"}},
              {"metric": "fps", "dataset": "d", "value": 155, "direction": "higher", "source": "Table 3",
               "when": {"arch": "fast"}}]
    verdicts = judge_all(claims, config={"hidden": 1024, "layers": 3, "arch": "fast"}, final={"err": 3.0, "fps": 200},
                         dataset="d", synthetic=False, device_name="cpu")
    by_source = {v["source"]: v for v in verdicts}
    assert set(by_source) == {"Table 1", "Table 3"}      # Table 2's metric has a claim that applies
    assert by_source["Table 3"]["verdict"] == "reproduced"
    assert by_source["Table 1"]["verdict"] == "not comparable" and "difference" not in by_source["Table 1"]
    assert by_source["Table 1"]["reason"] == "the claim is for hidden=4096; this run has hidden=1024"
    assert by_source["Table 1"]["claimed"] == 1.0 and by_source["Table 1"]["ours"] == 3.0


def test_the_one_word_verdict_does_not_hide_a_claim_that_failed():
    def v(word):
        return {"verdict": word}

    assert summary([v("reproduced"), v("not comparable")]) == "reproduced"
    assert summary([v("reproduced"), v("not reproduced")]) == "partly reproduced (1 of 2)"
    assert summary([v("not reproduced"), v("not comparable")]) == "not reproduced"
    assert summary([v("not comparable")]) == "not comparable" and summary([]) == "no matching claim"


def test_sync_judges_runs_again_when_the_claims_change(settings, kb, kb_env):
    record = reproduce(settings, Request("counter", seed=3))
    assert {v["source"]: v["verdict"] for v in record.verdicts}["Table 2"] == "not reproduced"
    looser = CLAIMS.replace("tolerance: 0.001, source: Table 2", "tolerance: 5, source: Table 2")
    write_paper(kb_env.papers, "counter", "1901.00001", "Counting", extra="runners: [counter]\n" + looser)
    report = sync(settings)
    assert report.verdicts_updated == 1
    with session_scope(settings) as session:
        again = session.get(RunRecord, record.id)
        assert {v["source"]: v["verdict"] for v in again.verdicts}["Table 2"] == "reproduced"
    assert sync(settings).verdicts_updated == 0                    # nothing changed: nothing rewritten
    write_paper(kb_env.papers, "counter", "1901.00001", "Counting", extra="runners: [counter]\n" + CLAIMS)
    result = kb("sync")
    assert result.code == 0 and "verdicts of 1 runs updated" in result.out


def test_interrupted_run_resumes_to_the_same_result(settings, kb):
    straight = reproduce(settings, Request("counter", seed=7))
    stopped = reproduce(settings, Request("counter", seed=7, overrides=("interrupt_at=25",)))
    assert stopped.status == "interrupted" and "--resume" in stopped.error
    assert (Path(stopped.run_dir) / "checkpoints" / "last.pt").exists()
    resumed = reproduce(settings, Request("", resume=stopped.id))
    assert resumed.id == stopped.id and resumed.status == "succeeded" and resumed.resumed == 1
    assert resumed.info["earlier_segments"] == [{"git_commit": stopped.git_commit, "git_dirty": stopped.git_dirty,
                                                 "device": stopped.device, "host": stopped.host,
                                                 "torch": stopped.env["torch"], "torch_threads": stopped.env.get("torch_threads")}]
    assert "segment 1 before a resume: code" in kb("run", "show", resumed.id).out
    assert resumed.final == straight.final
    with session_scope(settings) as session:
        steps = session.exec(Metric.__table__.select().where(Metric.run_id == resumed.id, Metric.kind == "step")).all()
    assert sorted(m.step for m in steps) == list(range(1, 401))


def test_overrides_are_recorded_shown_and_a_resume_cannot_change_them(settings, kb, tmp_path):
    stopped = json.loads(kb("reproduce", "counter", "--set", "interrupt_at=5", "--set", "steps=30", "--json").out)
    assert stopped["status"] == "interrupted" and stopped["overrides"] == {"interrupt_at": 5, "steps": 30}
    config_json = json.loads((Path(stopped["run_dir"]) / "config.json").read_text())
    assert config_json["overrides"] == {"interrupt_at": 5, "steps": 30} and config_json["preset"] == "default"
    shown = json.loads(kb("run", "show", stopped["id"], "--json").out)
    assert shown["overrides"] == {"interrupt_at": 5, "steps": 30}
    assert "overrides: --set interrupt_at=5 --set steps=30" in kb("run", "show", stopped["id"]).out

    changed = kb("reproduce", "--resume", stopped["id"], "--set", "lr=0.5")
    assert changed.code == 2 and "cannot change lr" in changed.err and len(changed.err.strip().splitlines()) == 1
    assert kb("reproduce", "--resume", stopped["id"], "--config", "smoke").code == 2
    assert kb("reproduce", "trivial", "--resume", stopped["id"]).code == 2
    same = kb("reproduce", "--resume", stopped["id"], "--set", "steps=30", "--json")   # repeating it changes nothing
    assert same.code == 0, same.err
    assert json.loads(same.out)["status"] == "succeeded"

    plain = json.loads(kb("reproduce", "counter", "--config", "smoke", "--json").out)
    compared = json.loads(kb("runs", "compare", plain["id"], stopped["id"], "--json").out)
    assert compared["started_as"]["overrides"] == [{}, {"interrupt_at": 5, "steps": 30}]
    assert compared["started_as"]["preset"] == ["smoke", "default"]


def test_a_resume_whose_checkpoint_is_missing_says_so(settings, kb):
    crashed = reproduce(settings, Request("counter", overrides=("crash_at=5",)))
    assert crashed.status == "failed" and not (Path(crashed.run_dir) / "checkpoints" / "last.pt").exists()
    result = kb("reproduce", "--resume", crashed.id)
    assert result.code == 1
    assert f"run {crashed.id} had trained to step 5 but its checkpoint" in result.err and "is missing" in result.err
    assert "kb reproduce counter --config default --set crash_at=5" in result.err


def test_ctrl_c_before_training_starts_stops_at_once(settings, kb):
    result = kb("reproduce", "counter", "--set", "slow_setup=true")
    assert result.code == 1 and "interrupted; resume with: kb reproduce --resume counter-" in result.err
    assert "preparing a lot of data" in result.err  # the runner's set-up note is shown
    (row,) = json.loads(kb("runs", "--json").out)
    record = json.loads(kb("run", "show", row["id"], "--json").out)
    assert record["status"] == "interrupted" and record["dataset"] == "points-test"  # set-up did not finish


def test_a_crash_is_recorded_as_failed_with_the_error(settings, kb):
    record = reproduce(settings, Request("counter", overrides=("crash_at=5",)))
    assert record.status == "failed" and "ValueError: exploded on purpose" in record.error
    assert "Traceback" in (Path(record.run_dir) / "log").read_text()
    result = kb("reproduce", "counter", "--set", "crash_at=3")
    assert result.code == 1 and "exploded on purpose" in result.err
    assert "failed and is recorded (kb run show counter-" in result.err and "Traceback" not in result.err
    assert result.err.count("exploded on purpose") == 1          # said once, not in a summary and again


def test_a_corrupt_checkpoint_gives_a_clear_error(settings):
    stopped = reproduce(settings, Request("counter", overrides=("interrupt_at=5",)))
    (Path(stopped.run_dir) / "checkpoints" / "last.pt").write_bytes(b"not a checkpoint")
    resumed = reproduce(settings, Request("", resume=stopped.id))
    assert resumed.status == "failed" and "corrupt or not a kb checkpoint" in resumed.error


def test_a_killed_process_does_not_leave_a_run_running_forever(settings):
    record = reproduce(settings, Request("counter", preset="smoke"))
    with session_scope(settings) as session:
        row = session.get(RunRecord, record.id)
        row.status, row.info = "running", {**row.info, "pid": 2**22 + 12345}
        session.add(row)
    with session_scope(settings) as session:
        assert mark_dead_runs(session=session) == 1
        assert session.get(RunRecord, record.id).status == "failed"


def test_registry_refuses_duplicates_and_suggests_names(settings):
    registry = Registry()
    spec = RunnerSpec("yolo", "1506.02640", "", (), ("default",), "x:y", "x")
    registry.register(spec)
    with pytest.raises(KBError, match="unique"):
        registry.register(spec)
    with pytest.raises(NotFound, match="did you mean 'counter'"):
        load_registry(settings.runner_paths).get("countr")


def test_cli_reproduce_runs_and_listing(settings, kb):
    unknown = kb("reproduce", "yollo")
    assert unknown.code == 1 and "did you mean 'yolo'" in unknown.err
    assert kb("reproduce", "counter", "--set", "nope=1").code == 2
    assert kb("reproduce", "counter", "--set", "steps=abc").code == 2
    assert kb("reproduce", "counter", "--config", "huge").code == 2
    assert kb("reproduce", "counter", "--device", "cuda:0").code == 2
    assert kb("reproduce", "counter", "--data", "/no/such/folder").code == 2
    dry = json.loads(kb("reproduce", "counter", "--set", "steps=5", "--dry-run", "--json").out)
    assert dry["config"]["steps"] == 5 and dry["preset"] == "default"
    ran = kb("reproduce", "counter", "--config", "smoke", "--seed", "1")
    assert ran.code == 0 and "reproduced" in ran.out
    other = kb("reproduce", "counter", "--config", "smoke", "--seed", "2", "--json")
    b = json.loads(other.out)["id"]
    runs = json.loads(kb("runs", "--json").out)
    assert len(runs) == 2 and runs[0]["id"] == b
    assert json.loads(kb("runs", "--runner", "counter", "--status", "failed", "--json").out) == []
    a = runs[1]["id"]
    assert a in kb("run", "show", a).out
    diff = json.loads(kb("runs", "compare", a, b, "--json").out)
    assert diff["env"]["seed"] == [1, 2] and "slope" in diff["metrics"]
    listed = json.loads(kb("runners", "--json").out)
    counter = next(r for r in listed if r["name"] == "counter")
    assert counter["last_run"]["id"] == b and len(counter["claims"]) == 3


def test_runs_export_and_import_round_trip(settings, kb, tmp_path, monkeypatch):
    record = reproduce(settings, Request("counter", preset="smoke"))
    assert kb("runs", "export", record.id).code == 0
    exported = settings.papers / "counter" / "runs" / f"{record.id}.json"
    assert exported.exists()
    # Another machine: a fresh catalog built from papers/ alone has the run, metrics included.
    from kb.db import _ready_engine
    from kb.settings import load_settings

    monkeypatch.setenv("KB_HOME", str(tmp_path / "elsewhere"))
    _ready_engine.cache_clear()
    other = load_settings()
    assert sync(other).runs_imported == 1
    with session_scope(other) as session:
        copy = session.get(RunRecord, record.id)
        count = len(session.exec(Metric.__table__.select().where(Metric.run_id == record.id)).all())
    assert copy.final == record.final and copy.verdicts == record.verdicts and count == 21
    document = json.loads(exported.read_text())
    assert document["format"] == "kb-run/2" and "steps_thinned" not in document
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    result = kb("runs", "import", str(bad))
    assert result.code == 2 and "not a kb run file" in result.err


def test_a_checkpoint_carries_the_cuda_random_state(tmp_path, monkeypatch):
    import torch

    from kb.runs.context import Run

    states = [torch.arange(16, dtype=torch.uint8), torch.arange(16, 32, dtype=torch.uint8)]
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: states)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", restored.extend)
    run = Run(id="r", dir=tmp_path, device="cuda", data_dir=None, seed=0, config=None)
    run.checkpoint({"step": 5})
    run.close()
    again = Run(id="r", dir=tmp_path, device="cuda", data_dir=None, seed=0, config=None, resuming=True)
    assert again.resume_state() == {"step": 5}
    again.close()
    assert [t.tolist() for t in restored] == [t.tolist() for t in states]


def test_export_thins_long_step_curves_and_reads_old_files(settings, kb, tmp_path):
    record = reproduce(settings, Request("counter", seed=1))          # 400 steps of loss
    assert kb("runs", "export", record.id, "--out", str(tmp_path), "--max-points", "50").code == 0
    path = tmp_path / f"{record.id}.json"
    document = json.loads(path.read_text())
    steps = [row for row in document["metrics"] if row[0] == "step" and row[3] == "loss"]
    assert len(steps) == 50 and steps[-1][1] == 400 and steps[0][1] == 8          # every 8th step, the last kept
    assert document["steps_thinned"]["every"]["loss"] == 8
    assert len(path.read_text().splitlines()) < 200                      # one row per line, not one number
    sparse = [Metric(run_id="x", kind="step", step=4 * i, name="loss", value=float(i)) for i in range(1, 101)]
    kept, strides = thin_steps(sparse, 50)               # logged every 4th step: half of them stay
    assert strides == {"loss": 2} and [m.step for m in kept][:3] == [8, 16, 24] and len(kept) == 50
    # A kb-run/1 file (metrics inside "run") still loads.
    old = {"format": "kb-run/1", "run": {**document["run"], "metrics": document["metrics"]}}
    path.write_text(json.dumps(old))
    assert kb("runs", "import", str(path)).code == 0
    with session_scope(settings) as session:
        rows = session.exec(Metric.__table__.select().where(Metric.run_id == record.id, Metric.kind == "step")).all()
    assert len([r for r in rows if r.name == "loss"]) == 50


def test_git_state_of_a_copied_tree_comes_from_the_sender(tmp_path, monkeypatch):
    from kb.runs.environment import git_state

    monkeypatch.delenv("KB_GIT_COMMIT", raising=False)
    assert git_state(tmp_path) == (None, None)  # not a git checkout, nothing said
    monkeypatch.setenv("KB_GIT_COMMIT", "abc1234")
    assert git_state(tmp_path) == ("abc1234", None)
    monkeypatch.setenv("KB_GIT_DIRTY", "1")
    assert git_state(tmp_path) == ("abc1234", True)


def test_a_data_folder_refused_before_training_is_bad_input_and_leaves_no_run(settings, kb, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    refused = kb("reproduce", "counter", "--config", "smoke", "--data", str(folder))
    assert refused.code == 2 and refused.err.strip().splitlines() == [f"kb: error: {folder} lacks points.csv"]
    assert kb("runs", "--runner", "counter").out.startswith("no runs")
    assert not list(settings.runs_dir.glob("counter-*"))
    (folder / "points.csv").write_text("x", encoding="utf-8")
    assert kb("reproduce", "counter", "--config", "smoke", "--data", str(folder)).code == 0
