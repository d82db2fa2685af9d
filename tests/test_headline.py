"""The headline rule (kb/runs/headline.py) the site and ``kb runners`` lead with: the best comparable run,
else the run closest to the paper's setting labelled why it is not comparable; never a smoke run merely
because it is newest. Checked on hand-made runs and on the YOLO runs shipped in papers/yolo/runs/."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from kb.runs.headline import headline, labels, main_metric
from kb.runs.record_file import read_run
from kb.runs.verdict import judge_all, summary
from kb.site.snapshot import RunView

ROOT = Path(__file__).resolve().parent.parent
# A claim with a setting: runs of another width or fewer epochs are not comparable.
CLAIM = {"metric": "accuracy", "dataset": "mnist-test", "value": 99.0, "unit": "%", "direction": "higher",
         "tolerance": 0.5, "source": "Table 1", "when": {"width": 64, "epochs": 20}}
ERROR = {"metric": "error", "dataset": "mnist-test", "value": 1.0, "direction": "lower", "tolerance": 0.1,
         "source": "Table 2", "when": {"width": 64, "epochs": 20}}
PARAMETERS = {"metric": "parameters", "dataset": "mnist-test", "value": 0.8, "unit": "M", "direction": "lower",
              "source": "Table 1"}
PAPER = {"width": 64, "epochs": 20, "lr": 0.01}


def run(run_id: str, *, minute: int, preset: str = "paper", config: dict | None = None, seed: int = 0,
        dataset: str = "mnist-test", synthetic: bool = False, claims=(CLAIM,), kind: str = "train",
        overrides: dict | None = None, **final: float) -> RunView:
    config = dict(PAPER if config is None else config)
    verdicts = judge_all(list(claims), config=config, final=final, dataset=dataset, synthetic=synthetic,
                         device_name="cpu", kind=kind)
    return RunView(id=run_id, runner="demo", paper_key="0000.00001", preset=preset, status="succeeded",
                   verdict=summary(verdicts), verdicts=tuple(verdicts), dataset=dataset, dataset_synthetic=synthetic,
                   final=final, config=config, overrides=overrides or {}, kind=kind, seed=seed,
                   created=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minute))


def test_a_newer_smoke_run_never_displaces_the_comparable_one():
    paper = run("paper", minute=1, accuracy=98.8)
    smoke = run("smoke", minute=9, preset="smoke", config={**PAPER, "width": 8, "epochs": 1}, synthetic=True,
                dataset="generated", accuracy=10.0)
    best = headline([CLAIM], [smoke, paper])
    assert best.run is paper and best.comparable and best.label == ""
    assert (best.metric, best.value, best.claim) == ("accuracy", 98.8, CLAIM)
    assert best.verdict["verdict"] == "reproduced"
    assert labels(smoke) == ["smoke", "generated data"] and labels(paper) == []


def test_without_a_comparable_run_the_paper_setting_leads_labelled_not_comparable():
    # All on generated data (as YOLO's shipped runs are): the run of the paper's setting leads, not the
    # newest (smoke), not the best-scoring one of a smaller setting, not one with overrides.
    smoke = run("smoke", minute=9, preset="smoke", config={**PAPER, "width": 8, "epochs": 1}, synthetic=True,
                dataset="generated", accuracy=0.0)
    small = run("small", minute=5, preset="cpu", config={**PAPER, "width": 16}, synthetic=True,
                dataset="generated", accuracy=99.9)
    overridden = run("overridden", minute=7, config={**PAPER, "lr": 0.5}, overrides={"lr": 0.5}, synthetic=True,
                     dataset="generated", accuracy=99.5)
    full = run("full", minute=2, synthetic=True, dataset="generated", accuracy=94.3)
    best = headline([CLAIM], [smoke, small, overridden, full])
    assert best.run is full and not best.comparable
    assert best.label == "not comparable: generated data" and best.value == 94.3
    assert labels(overridden) == ["overrides --set lr=0.5", "generated data"]


def test_other_setting_on_real_data_names_the_fields():
    short = run("short", minute=1, config={**PAPER, "epochs": 2}, accuracy=97.0)
    best = headline([CLAIM], [short])
    assert not best.comparable and best.label == "not comparable: other setting (epochs)"


def test_more_claims_reproduced_beats_a_better_number_and_lower_is_better_where_the_claim_says_so():
    claims = [CLAIM, ERROR]
    both = run("both", minute=1, claims=claims, accuracy=99.0, error=1.05)
    one = run("one", minute=2, claims=claims, config={**PAPER, "lr": 0.1}, accuracy=99.9, error=2.0)
    assert headline(claims, [one, both]).run is both
    low = run("low", minute=1, claims=[ERROR], config={**PAPER, "lr": 0.1}, error=0.9)
    high = run("high", minute=2, claims=[ERROR], error=1.0)
    assert headline([ERROR], [high, low]).run is low           # both reproduce: the lower error leads


def test_seeds_of_one_experiment_give_their_mean_from_the_newest_run_of_each_seed():
    seeds = [run(f"s{seed}", minute=10 + seed, seed=seed, accuracy=value)
             for seed, value in ((0, 98.0), (1, 99.0), (2, 100.0))]
    old_repeat = run("old", minute=1, seed=0, accuracy=50.0)
    best = headline([CLAIM], [old_repeat, *seeds])
    assert best.run.id == "s2" and [r.id for r in best.seeds] == ["s0", "s1", "s2"]
    assert best.value == pytest.approx(99.0) and best.seed_values == (98.0, 99.0, 100.0)


def test_architecture_runs_lead_only_without_a_training_run():
    architecture = run("arch", minute=9, kind="architecture", claims=(CLAIM, PARAMETERS), parameters=800_000.0)
    trained = run("trained", minute=1, synthetic=True, dataset="generated", accuracy=90.0)
    assert headline([CLAIM, PARAMETERS], [architecture, trained]).run is trained
    alone = headline([CLAIM, PARAMETERS], [architecture])
    assert alone.run is architecture and alone.comparable and alone.metric == "parameters"
    assert alone.value == 0.8                                 # in the claim's unit (M), as the paper prints it
    assert labels(architecture) == ["architecture only"]


def test_main_metric_is_the_first_claimed_metric_recorded_else_the_runners_first():
    assert main_metric(run("a", minute=1, claims=(), loss=1.0, accuracy=2.0), [ERROR, CLAIM]) == "accuracy"
    assert main_metric(run("b", minute=1, claims=(), loss=1.0, top5=2.0), [CLAIM]) == "loss"
    assert main_metric(run("c", minute=1, claims=()), [CLAIM]) is None


def test_nothing_succeeded_means_no_headline():
    failed = replace(run("f", minute=1, accuracy=1.0), status="failed")
    assert headline([CLAIM], [failed]) is None and headline([CLAIM], []) is None


def test_after_the_quick_start_yolo_leads_with_the_shipped_h100_run():
    """README's Quick start adds a smoke run (newest, 0 mAP on generated shapes) to the shipped runs."""
    claims = yaml.safe_load((ROOT / "papers" / "yolo" / "paper.yaml").read_text(encoding="utf-8"))["claims"]
    folder = ROOT / "papers" / "yolo" / "runs"
    shipped = [read_run(path, metrics=False).record for path in sorted(folder.glob("*.json"))]
    newest = max(shipped, key=lambda r: r.created)
    smoke = newest.model_copy(update={
        "id": "yolo-smoke", "preset": "smoke", "created": newest.created + timedelta(days=1), "final": {"map": 0.0},
        "config": {**newest.config, "image_size": 64, "width": 0.0625, "hidden": 64, "epochs": 1}})
    best = headline(claims, [smoke, *shipped])
    assert best.run.preset == "default" and best.run.device.startswith("NVIDIA H100")
    assert best.metric == "map" and round(best.value, 1) == 94.3
    assert best.label == "not comparable: generated data"
    assert best.claim["value"] == 52.7                        # Fast YOLO's mAP: the claim of its architecture
    assert labels(smoke) == ["smoke", "generated data"]
