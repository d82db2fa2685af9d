"""`kb reproduce yolo` as a new user runs it: the smoke preset on the generated set, a VOC devkit and a
Roboflow-style YOLO folder given with --data, and one-line errors for a wrong path or a broken file."""

import json
import shutil

import pytest

from tests.conftest import ROOT
from tests.test_yolo_data import _split_folder, _vocdevkit


@pytest.fixture
def catalog(kb, kb_env):
    """The shipped YOLO entry (with its Table 1 claims) in a fresh catalog."""
    (kb_env.papers / "yolo").mkdir()
    shutil.copy(ROOT / "papers" / "yolo" / "paper.yaml", kb_env.papers / "yolo" / "paper.yaml")
    assert kb("sync").code == 0
    return kb_env


def _only_run(kb) -> dict:
    """The one yolo run, as `kb run show --json` records it."""
    (row,) = json.loads(kb("runs", "--runner", "yolo", "--json").out)
    return json.loads(kb("run", "show", row["id"], "--json").out)


def test_smoke_on_the_generated_set_has_a_full_record_and_verdicts(kb, catalog):
    result = kb("reproduce", "yolo", "--config", "smoke", "--seed", "3")
    assert result.code == 0, result.err
    assert "generated-shapes" in result.out + result.err  # says what data it used
    run = _only_run(kb)
    assert run["status"] == "succeeded" and run["preset"] == "smoke" and run["seed"] == 3
    assert run["dataset"] == "generated-shapes" and run["dataset_fingerprint"]
    assert {"map", "map_allpoint", "fps", "fps_batch64"} <= set(run["final"])
    verdicts = {(v["metric"], v["claimed"]): v for v in run["verdicts"]}
    assert set(verdicts) == {("map", 63.4), ("fps", 45), ("map", 52.7), ("fps", 155)}
    assert all(v["verdict"] == "not comparable" for v in verdicts.values())
    shown = kb("run", "show", run["id"])
    assert shown.code == 0 and "63.4" in shown.out and "not comparable" in shown.out
    # In a log (stderr not a terminal) no bar: a whole line per evaluation, the run id uncut.
    progress = [line for line in result.err.splitlines() if line.startswith(run["id"] + " ")]
    assert [line.split(" · ")[0] for line in progress] == [f"{run['id']} epoch {n}/2" for n in (1, 2)]
    assert all("map " in line and "samples/s" in line for line in progress) and "…" not in result.err


def test_a_vocdevkit_trains_and_is_scored_on_voc2007_test(kb, catalog, tmp_path):
    _vocdevkit(tmp_path, {"2007": {"trainval": "000005 000007 000009 000011", "test": "000001 000002"}})
    result = kb("reproduce", "yolo", "--config", "smoke", "--data", str(tmp_path / "VOCdevkit"))
    assert result.code == 0, result.err
    run = _only_run(kb)
    assert run["status"] == "succeeded" and run["dataset"] == "voc2007-test"
    # The right test set, but the smoke net is not Fast YOLO at 448 px: shown, named, not judged.
    fast = next(v for v in run["verdicts"] if v["metric"] == "map" and v["claimed"] == 52.7)
    assert fast["verdict"] == "not comparable" and "image_size=448" in fast["reason"]


def test_a_roboflow_export_trains_and_evaluates_on_valid(kb, catalog, tmp_path):
    root = tmp_path / "export"
    _split_folder(root, "train", 8)
    _split_folder(root, "valid", 3)
    (root / "data.yaml").write_text("names: [box]\n")
    result = kb("reproduce", "yolo", "--config", "smoke", "--data", str(root))
    assert result.code == 0, result.err
    run = _only_run(kb)
    assert run["status"] == "succeeded" and run["dataset"] == "yolo-folder:export"


def test_wrong_path_and_malformed_annotation_are_one_line(kb, catalog, tmp_path):
    missing = kb("reproduce", "yolo", "--config", "smoke", "--data", str(tmp_path / "nope"))
    assert missing.code == 2 and "no such file or folder" in missing.err
    devkit = _vocdevkit(tmp_path, {"2007": {"trainval": "000005 000007", "test": "000001"}})
    (devkit / "VOC2007" / "Annotations" / "000007.xml").write_text("<annotation><size><width>200")
    broken = kb("reproduce", "yolo", "--config", "smoke", "--data", str(devkit))
    assert broken.code != 0 and "Traceback" not in broken.err
    (line,) = [l for l in broken.err.splitlines() if "000007.xml" in l]
    assert "not a readable VOC annotation XML" in line
    assert all(r["status"] != "running" for r in json.loads(kb("runs", "--json").out))


def test_a_setting_out_of_range_is_refused_before_a_run_exists(kb, catalog):
    refused = kb("reproduce", "yolo", "--config", "smoke", "--set", "batch_size=0")
    assert refused.code == 2 and refused.err.strip() == "kb: error: batch_size=0: must be at least 1"
    assert json.loads(kb("runs", "--json").out) == []


def test_no_flags_on_a_machine_without_gpu_runs_the_cpu_preset(kb, catalog, monkeypatch):
    plain = kb("reproduce", "yolo", "--dry-run", "--device", "cpu")
    assert plain.code == 0 and "preset: cpu" in plain.out
    assert "no GPU found: running yolo's CPU preset 'cpu' instead of 'default'" in plain.err
    assert "data: the runner's default data" in plain.out
    named = kb("reproduce", "yolo", "--dry-run", "--device", "cpu", "--config", "default")
    assert "preset: default" in named.out and "no GPU found" not in named.err
    queued = kb("reproduce", "yolo", "--queue", "--device", "cpu", "--json")  # the worker's machine decides
    assert json.loads(queued.out)["preset"] == "default"


def test_fit_to_machine_keeps_gpu_runs_and_named_presets(catalog, monkeypatch):
    import kb.runs.environment as environment
    from kb.runs.execute import Request, plan
    from kb.settings import load_settings

    settings = load_settings()
    fitted = plan(settings, Request("yolo", device="cpu"), here=True)
    assert (fitted.preset, fitted.instead_of, fitted.device) == ("cpu", "default", "cpu")
    assert plan(settings, Request("yolo", preset="paper", device="cpu"), here=True).instead_of is None
    assert plan(settings, Request("kervolution", device="cpu"), here=True).instead_of is None  # its default fits a CPU
    assert plan(settings, Request("yolo", device="cpu")).preset == "default"          # queued: the worker decides
    monkeypatch.setattr(environment, "resolve_device", lambda requested: "cuda:0")
    on_gpu = plan(settings, Request("yolo"), here=True)
    assert (on_gpu.preset, on_gpu.instead_of, on_gpu.device) == ("default", None, "cuda:0")


def test_scheduling_a_gpu_preset_on_a_machine_without_gpu_says_so(kb, catalog):
    gpu = kb("schedule", "add", "yolo", "--cron", "0 3 * * 1")
    assert gpu.code == 0 and "yolo 'default' is sized for a GPU (`--config smoke` or `--config cpu` are" in gpu.err
    assert "a `kb worker` here would take hours per run" in gpu.err
    assert "sized for a GPU" not in kb("schedule", "add", "yolo", "--cron", "0 3 * * 1", "--config", "smoke").err
    assert "sized for a GPU" not in kb("schedule", "add", "yolo", "--cron", "0 3 * * 1", "--executor", "slurm").err


def test_a_gpu_preset_named_on_a_cpu_runs_with_a_note(kb, catalog):
    tiny = ["--set", "generated_train=4", "--set", "generated_test=2", "--set", "epochs=1", "--set", "batch_size=2",
            "--set", "image_size=64", "--set", "width=0.125", "--set", "hidden=16", "--set", "speed_iters=1"]
    result = kb("reproduce", "yolo", "--config", "default", "--device", "cpu", *tiny)
    assert result.code == 0, result.err
    assert "note: yolo 'default' is sized for a GPU (`--config smoke` or `--config cpu` are sized for a CPU) and " \
           "will be slow on this CPU" in result.err
    assert _only_run(kb)["preset"] == "default"


def test_the_paper_recipe_from_scratch_warns_before_it_diverges(kb, catalog):
    tiny = ["--set", "generated_train=32", "--set", "generated_test=4", "--set", "epochs=1", "--set", "batch_size=4",
            "--set", "image_size=64", "--set", "width=0.125", "--set", "hidden=16", "--set", "speed_iters=1"]
    result = kb("reproduce", "yolo", "--config", "paper", "--device", "cpu", *tiny)
    assert "no backbone_weights: the paper's recipe starts from ImageNet-pretrained conv layers" in result.err
    assert "Traceback" not in result.err
