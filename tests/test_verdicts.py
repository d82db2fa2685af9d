"""Verdicts you can trust: a claim judged only on a run of its setting, over seeds, data-free claims
from an architecture-only run, overrides in the record, and the model-index export."""

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from kb.db import session_scope
from kb.ingest.sync import sync
from kb.models import RunRecord
from kb.paperfile import parse_paper_yaml
from kb.runs.execute import Request, reproduce
from kb.runs.verdict import judge_all, rounding_tolerance, summary
from tests.conftest import ROOT, write_paper

FIXTURES = Path(__file__).parent / "fixtures"
COUNTER_CLAIMS = """claims:
  - {metric: slope, dataset: points-test, value: 0, direction: higher, tolerance: 0, source: Table 2, seeds: 3}
"""
TRIVIAL_CLAIMS = """claims:
  - {metric: accuracy, dataset: trivial-set, value: 0.9, direction: higher, tolerance: 0.05, source: Table 1,
     task: image-classification, model: Trivial, split: test}
  - {metric: parameters, dataset: trivial-set, value: 7.85, unit: K, direction: lower, source: Sec. 3}
  - {metric: parameters, dataset: trivial-set, value: 8.0, unit: K, direction: lower, source: Sec. 4}
  - {metric: flops, dataset: trivial-set, value: 15680, direction: lower, source: Sec. 3}
  - {metric: model_mb, dataset: trivial-set, value: 0.03, direction: lower, source: Sec. 3}
"""


def shipped_claims(slug: str) -> list[dict]:
    text = (ROOT / "papers" / slug / "paper.yaml").read_text(encoding="utf-8")
    return parse_paper_yaml(text, where=slug, folder_slug=slug).fields["claims"]


def by_source(verdicts: list[dict]) -> dict[str, dict]:
    return {v["source"]: v for v in verdicts}


@pytest.fixture
def settings(kb_env, monkeypatch):
    """The counter (seed-dependent slope) and trivial (a Linear(784, 10) model) runners with their papers."""
    monkeypatch.setenv("KB_RUNNERS", f"{FIXTURES / 'framework_runners'}:{FIXTURES / 'runners'}")
    write_paper(kb_env.papers, "counter", "1901.00001", "Counting", extra="runners: [counter]\n" + COUNTER_CLAIMS)
    write_paper(kb_env.papers, "trivial", "2401.00001", "A Trivial Paper", extra="runners: [trivial]\n" + TRIVIAL_CLAIMS)
    from kb.settings import load_settings

    settings = load_settings()
    sync(settings)
    return settings


def test_bnn_1000_epoch_claim_is_not_comparable_for_a_2_epoch_or_subset_run():
    from runners.bnn.config import PRESETS
    from kb.runs.config import to_dict

    (claim,) = shipped_claims("bnn")
    common = {"final": {"test_error": 1.5}, "dataset": "mnist-test", "synthetic": False, "device_name": "cpu"}
    short = dataclasses.replace(PRESETS["paper"], epochs=2)
    (verdict,) = judge_all([claim], config=to_dict(short), **common)
    assert verdict["verdict"] == "not comparable"
    assert "epochs=1000" in verdict["reason"] and "this run has epochs=2" in verdict["reason"]
    subset = dataclasses.replace(PRESETS["paper"], train_limit=400)
    (verdict,) = judge_all([claim], config=to_dict(subset), **common)
    assert verdict["verdict"] == "not comparable" and "this run has train_limit=400" in verdict["reason"]
    (verdict,) = judge_all([claim], config=to_dict(PRESETS["paper"]), **common)
    assert verdict["verdict"] == "not reproduced"            # the paper's setting: judged (1.5 > 0.96 + 0.3)


def test_a_config_field_the_run_lacks_is_a_mismatch_not_a_match():
    claim = {"metric": "err", "dataset": "d", "value": 1.0, "direction": "lower", "source": "T1",
             "when": {"hidden": 4096, "epochs": 1000}}
    (verdict,) = judge_all([claim], config={"hidden": 4096}, final={"err": 0.5}, dataset="d", synthetic=False,
                           device_name="cpu")
    assert verdict["verdict"] == "not comparable"
    assert verdict["reason"] == ("the claim is for epochs=1000; this run's config has no epochs "
                                 "(a run of an older runner version)")


def test_yolo_voc_claims_assume_a_pretrained_backbone():
    from runners.yolo.config import PRESETS
    from kb.runs.config import to_dict

    claims = [c for c in shipped_claims("yolo") if c["metric"] == "map"]
    common = {"final": {"map": 70.0}, "dataset": "voc2007-test", "synthetic": False, "device_name": "cpu"}
    scratch = to_dict(PRESETS["paper"])
    pretrained = to_dict(dataclasses.replace(PRESETS["paper"], backbone_weights="/weights/darknet.pt"))
    verdicts = by_source(judge_all(claims, config=scratch, **common))
    assert verdicts["Table 1"]["verdict"] == "not comparable" and "backbone_weights not ''" in verdicts["Table 1"]["reason"]
    yolo = [v for v in judge_all(claims, config=pretrained, **common) if v["claimed"] == 63.4]
    assert [v["verdict"] for v in yolo] == ["reproduced"]


def test_a_claim_over_seeds_is_judged_on_their_mean():
    claim = {"metric": "gain", "dataset": "d", "value": 0, "direction": "higher", "tolerance": 0, "source": "T",
             "seeds": 3}
    common = {"config": {}, "final": {"gain": 0.1}, "dataset": "d", "synthetic": False, "device_name": "cpu"}
    (two,) = judge_all([claim], seeds=[{"gain": 0.1}, {"gain": -0.3}], **common)
    assert two["verdict"] == "needs 3 seeds (have 2)" and summary([two]) == "needs 3 seeds (have 2)"
    (three,) = judge_all([claim], seeds=[{"gain": 0.1}, {"gain": -0.3}, {"gain": 0.5}], **common)
    # mean (0.1 - 0.3 + 0.5) / 3 = 0.1; sd = sqrt((0^2 + 0.4^2 + 0.4^2) / 2) = 0.4
    assert three["verdict"] == "reproduced" and three["seeds"] == 3
    assert math.isclose(three["ours"], 0.1) and math.isclose(three["sd"], 0.4)
    assert three["reason"].startswith("mean of 3 seeds 0.1 ± 0.4 vs claimed 0")


def test_a_third_seed_updates_the_verdicts_of_the_first_two(settings):
    first = reproduce(settings, Request("counter", preset="smoke", seed=0))
    second = reproduce(settings, Request("counter", preset="smoke", seed=1))
    assert [v["verdict"] for v in second.verdicts] == ["needs 3 seeds (have 2)"]
    assert summary(second.verdicts) == "needs 3 seeds (have 2)"       # not counted as reproduced
    third = reproduce(settings, Request("counter", preset="smoke", seed=2))
    slopes = [first.final["slope"], second.final["slope"], third.final["slope"]]
    mean = sum(slopes) / 3
    sd = math.sqrt(sum((s - mean) ** 2 for s in slopes) / 2)
    with session_scope(settings) as session:
        for run_id in (first.id, second.id, third.id):
            (verdict,) = session.get(RunRecord, run_id).verdicts
            assert verdict["verdict"] == ("reproduced" if mean >= 0 else "not reproduced") and verdict["seeds"] == 3
            assert math.isclose(verdict["ours"], mean) and math.isclose(verdict["sd"], sd)


def test_a_field_added_to_the_runner_later_does_not_split_an_experiment(settings):
    from kb.runs.records import rejudged

    def run(seed: int, slope: float, config: dict) -> RunRecord:
        return RunRecord(id=f"counter-{seed}", runner="counter", paper_key="1901.00001", preset="smoke", config=config,
                         status="succeeded", seed=seed, run_dir="/nowhere", dataset="points-test",
                         dataset_fingerprint="abc123", final={"slope": slope})

    with session_scope(settings) as session:
        session.add_all([run(0, 0.3, {"lr": 0.2}), run(1, -0.1, {"lr": 0.2, "noise": 0.1}),
                         run(2, 0.1, {"lr": 0.2, "noise": 0.1}), run(3, 9.0, {"lr": 0.5, "noise": 0.1})])
        session.flush()
        rejudged(session=session)
        verdicts = {r.id: r.verdicts[0] for r in session.exec(select(RunRecord))}
    # Seeds 0-2 are one experiment (seed 0 predates "noise"; the others agree on it): mean (0.3 - 0.1 + 0.1) / 3.
    assert [verdicts[f"counter-{s}"]["seeds"] for s in range(3)] == [3, 3, 3]
    assert math.isclose(verdicts["counter-0"]["ours"], 0.1) and verdicts["counter-0"]["verdict"] == "reproduced"
    assert verdicts["counter-3"]["verdict"] == "needs 3 seeds (have 1)"        # another lr: another experiment


def test_architecture_only_counts_a_linear_model_and_judges_only_data_free_claims(settings, kb):
    result = kb("reproduce", "trivial", "--config", "smoke", "--architecture-only", "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert record["kind"] == "architecture" and record["status"] == "succeeded"
    # nn.Linear(784, 10): 784 * 10 + 10 parameters, 4 bytes each in fp32; its forward on one input is
    # 784 * 10 multiply-adds, 2 FLOPs each (torch.utils.flop_counter counts the matmul).
    assert record["final"] == {"parameters": 7850.0, "model_bytes": 31400.0, "model_mb": 31400 / 2**20,
                               "flops": 15680.0, "mult_adds": 7840.0}
    verdicts = by_source(record["verdicts"])
    assert set(verdicts) == {"Sec. 3", "Sec. 4"}                   # the accuracy claim needs data: left out
    params = [v for v in record["verdicts"] if v["metric"] == "parameters"]
    assert {v["claimed"]: v["verdict"] for v in params} == {7.85: "reproduced", 8.0: "not reproduced"}
    assert params[0]["ours"] == 7.85 and params[0]["tolerance"] == 0.005   # 7.85K is 7845-7855
    mb = next(v for v in record["verdicts"] if v["metric"] == "model_mb")
    assert mb["verdict"] == "reproduced" and mb["tolerance"] == 0.005
    refused = kb("reproduce", "counter", "--architecture-only")          # counter declares no architecture
    assert refused.code == 2 and "declares no architecture" in refused.err
    assert kb("runs", "--runner", "counter").out.startswith("no runs")          # refused before any record
    trained = reproduce(settings, Request("trivial", preset="smoke"))
    assert [v["metric"] for v in trained.verdicts] == ["accuracy"]     # a training run: no data-free claims


def test_the_papers_rounding_is_the_tolerance():
    assert rounding_tolerance(0.8) == 0.05 and rounding_tolerance(63.4) == 0.05
    assert rounding_tolerance(7850) == 0.5 and rounding_tolerance(45.0) == 0.05
    assert rounding_tolerance(1e-05) == 5e-06


def test_the_site_run_page_shows_the_overrides():
    from kb.site.pages import generate, run_page
    from kb.site.snapshot import RunView, Snapshot

    run = RunView(id="r1", runner="bnn", paper_key="1602.02830", preset="paper", status="succeeded",
                  verdict="not comparable", overrides={"epochs": 2})
    page = generate(Snapshot(runs=(run,)))[run_page("r1")]
    assert "--set epochs=2" in page


def test_model_index_of_yolo_is_yaml_in_the_model_index_shape(kb, kb_env):
    (kb_env.papers / "yolo" / "runs").mkdir(parents=True)
    shutil.copy(ROOT / "papers" / "yolo" / "paper.yaml", kb_env.papers / "yolo")
    shutil.copy(ROOT / "papers" / "yolo" / "runs" / "yolo-20261123-084052-3a44.json", kb_env.papers / "yolo" / "runs")
    assert kb("sync").code == 0
    result = kb("export", "model-index", "yolo")
    assert result.code == 0, result.err
    entries = yaml.safe_load(result.out)["model-index"]
    claims = shipped_claims("yolo")
    paper = [e for e in entries if e["name"].endswith("(yolo, paper)")]
    assert [e["name"] for e in paper] == ["YOLO (yolo, paper)", "Fast YOLO (yolo, paper)"]
    results = [r for e in paper for r in e["results"]]
    assert sorted(r["metrics"][0]["value"] for r in results) == sorted(c["value"] for c in claims)
    for entry in entries:
        assert set(entry) == {"name", "results"}
        for item in entry["results"]:
            assert item["task"]["type"] == "object-detection"
            assert item["dataset"] == {"type": "voc2007-test", "name": "voc2007-test", "split": "test"}
            assert {"type", "value", "name"} <= set(item["metrics"][0]) and set(item["source"]) == {"name", "url"}
    assert paper[0]["results"][0]["source"] == {"name": "You Only Look Once: Unified, Real-Time Object Detection, Table 1",
                                                "url": "https://arxiv.org/abs/1506.02640"}
    # The shipped H100 run trained on generated shapes: comparable with no VOC claim, so it is not listed.
    assert len(entries) == 2


def test_model_index_keeps_a_measured_run_apart_from_the_paper(settings, kb):
    run = reproduce(settings, Request("trivial", preset="smoke"))
    entries = yaml.safe_load(kb("export", "model-index", "trivial").out)["model-index"]
    by_name = {e["name"]: e for e in entries}
    measured = by_name[f"Trivial (trivial, kb run {run.id})"]["results"]
    assert [m["metrics"][0] for m in measured] == [{"type": "accuracy", "value": 0.9, "name": "accuracy", "verified": False}]
    assert measured[0]["source"]["name"].startswith(f"kb run {run.id}: kb reproduce trivial --config smoke, seed 0")
    assert by_name["Trivial (trivial, paper)"]["results"][0]["metrics"][0] == {"type": "accuracy", "value": 0.9,
                                                                               "name": "accuracy"}


def ratio_architecture(config):
    """A model and a further data-free metric computed from the paper's baseline: a linear model of
    7850 parameters against a 784-1000-10 MLP baseline of 784 * 1000 + 1000 + 1000 * 10 + 10 = 795010."""
    import torch

    return torch.nn.Linear(784, 10), torch.zeros(1, 784), {"fewer_parameters": 795010 / 7850}


def test_a_further_data_free_metric_is_measured_and_judged_only_when_the_claim_says_data_free():
    from kb.runs.execute import measure_architecture
    from kb.runs.registry import RunnerSpec

    spec = RunnerSpec(name="ratio", paper="2401.00002", summary="", datasets=(), presets=("smoke",),
                      entrypoint="tests.test_verdicts:ratio_architecture", config="none",
                      architecture="tests.test_verdicts:ratio_architecture")
    final, _ = measure_architecture(spec, None)
    assert final["parameters"] == 7850.0 and math.isclose(final["fewer_parameters"], 101.2752, abs_tol=1e-4)
    text = """id: "2401.00002"
slug: ratio
title: "Ratio"
authors: [A]
claims:
  - {metric: fewer_parameters, dataset: none, value: 100, unit: x, direction: higher, tolerance: 2,
     source: Sec. 1, data_free: true}
  - {metric: fewer_parameters, dataset: none, value: 100, unit: x, direction: higher, tolerance: 2, source: Sec. 2}
"""
    claims = parse_paper_yaml(text, where="ratio", folder_slug="ratio").fields["claims"]
    verdicts = judge_all(claims, config={}, final=final, dataset=None, synthetic=False, device_name="cpu",
                         kind="architecture")
    # Only the claim marked data_free is an architecture claim; 101.27 is within 2 of 100.
    assert [(v["source"], v["verdict"]) for v in verdicts] == [("Sec. 1", "reproduced")]
