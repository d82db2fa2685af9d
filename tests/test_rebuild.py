"""Files are the truth: deleting, damaging or upgrading the catalog loses nothing (issue 14).

A catalog with papers, notes, runs (succeeded, failed, interrupted; the trivial runner's and the
shipped runners' exports), a regression and schedules is deleted; ``kb sync`` gives back every
``--json`` listing as it was. Two copies of one run load the more complete; an unreadable run file
is named and skipped; a catalog of the last released schema (kb 21d6e5e) is migrated in place; a
damaged one is moved aside and rebuilt.
"""

import json
import os
import shutil
import sqlite3
from pathlib import Path

from kb.db import _ready_engine, session_scope
from kb.models import SCHEMA_VERSION, Job
from kb.runs.execute import Request, reproduce
from kb.runs.records import metrics_of
from kb.runs.regression import check_job
from tests.conftest import write_paper
from tests.jobs_fixtures import add_schedule, at

SHIPPED = Path(__file__).resolve().parent.parent / "papers"
V1_CATALOG = Path(__file__).resolve().parent / "fixtures" / "catalog_v1.sql"


class _StopAtOnce:
    """A reporter that asks the run to stop at its first step (as Ctrl-C does)."""

    def update(self, run, _line) -> None:
        run.request_stop()


def forget_catalog(settings) -> None:
    """``rm .kb/catalog.db``, as a user would, with this process's engines closed first."""
    _ready_engine(settings.database_url).dispose()
    _ready_engine.cache_clear()
    for suffix in ("", "-wal", "-shm"):
        (settings.home / f"catalog.db{suffix}").unlink(missing_ok=True)


def listings(kb) -> dict:
    """Every --json listing of the catalog, and ``kb run show --json`` of each run."""
    shown = {}
    for args in (("list",), ("runs", "--limit", "1000"), ("regressions",), ("schedule", "list"), ("runners",)):
        result = kb(*args, "--json")
        assert result.code == 0, (args, result.err)
        shown[" ".join(args)] = json.loads(result.out)
    for schedule in shown["schedule list"]:
        schedule.pop("in")          # "in 0:59:58": how long until it is due, a second later a second less
    for run in shown["runs --limit 1000"]:
        result = kb("run", "show", run["id"], "--json")
        assert result.code == 0, result.err
        shown[f"run show {run['id']}"] = json.loads(result.out)
    return shown


def build_catalog(lab, kb) -> dict[str, str]:
    """Papers, notes, runs of every kind, a regression and schedules; returns run ids by kind.

    Each paper.yaml says when the paper was added, as `kb add` writes it: a hand-written one
    without ``added:`` is dated by the catalog that first saw it.
    """
    papers = lab.settings.papers
    write_paper(papers, "noted", "1512.03385", "Deep Residual Learning", extra="added: 2025-01-02\n",
                notes={"en": "Residual blocks.", "ja": "残差ブロック。"})
    with (papers / "trivial" / "paper.yaml").open("a") as out:
        out.write("added: 2025-01-01\n")
    for day, (slug, export) in enumerate((("bnn", "bnn-20261123-045119-0f25"),
                                          ("kervolution", "kervolution-20261123-043630-0a08"),
                                          ("yolo", "yolo-20261123-043847-6f28")), start=3):
        (papers / slug / "runs").mkdir(parents=True)
        shipped = (SHIPPED / slug / "paper.yaml").read_text()
        (papers / slug / "paper.yaml").write_text(shipped + f"\nadded: 2025-01-0{day}\n")
        shutil.copy(SHIPPED / slug / "runs" / f"{export}.json", papers / slug / "runs")
    assert kb("sync").code == 0
    settings = lab.settings
    good = reproduce(settings, Request("trivial", preset="smoke"))
    failed = reproduce(settings, Request("trivial", preset="smoke", overrides=("fail=true",)))
    interrupted = reproduce(settings, Request("trivial", preset="default", overrides=("step_s=0.01",)),
                            reporter=_StopAtOnce())
    assert (good.status, failed.status, interrupted.status) == ("succeeded", "failed", "interrupted")
    first = add_schedule(lab, "0 3 * * *", at("2025-01-01T00:00:00"))
    add_schedule(lab, "*/5 * * * *", at("2025-01-01T00:00:00"), overrides=("steps=2",))
    assert kb("schedule", "pause", str(first.id)).code == 0
    regress(settings, failed, first.id)
    return {"succeeded": good.id, "failed": failed.id, "interrupted": interrupted.id}


def regress(settings, failed, schedule_id: int) -> None:
    """The failed run as a scheduled job's run: a regression against the last succeeded one."""
    with session_scope(settings) as session:
        job = Job(runner="trivial", preset="smoke", time_limit_s=60, schedule_id=schedule_id, status="failed",
                  run_id=failed.id, error=failed.error)
        session.add(job)
        session.flush()
        job_id = job.id
    assert check_job(settings, job_id) is not None


def test_deleting_the_catalog_loses_no_paper_note_run_verdict_regression_or_schedule(lab, kb):
    ids = build_catalog(lab, kb)
    before = listings(kb)
    runs = {r["id"]: r for r in before["runs --limit 1000"]}
    # What is compared: 3 trivial runs and one export of each shipped runner; the trivial claim
    # (accuracy 0.9 +- 0.05) is met by the succeeded run's 0.9; one regression; two schedules.
    assert len(runs) == 6 and {r["runner"] for r in runs.values()} == {"trivial", "bnn", "kervolution", "yolo"}
    assert runs[ids["succeeded"]]["verdict"].startswith("reproduced")
    assert [r["run_id"] for r in before["regressions"]] == [ids["failed"]]
    assert [s["paused"] for s in before["schedule list"]] == [True, False]
    assert {p["slug"] for p in before["list"]} == {"trivial", "noted", "bnn", "kervolution", "yolo"}
    for run_id in ids.values():
        assert (lab.settings.runs_dir / run_id / "record.json").is_file()

    forget_catalog(lab.settings)
    result = kb("sync")
    assert result.code == 0, result.err
    assert listings(kb) == before


def test_an_unreadable_run_file_is_named_and_the_rest_loads(lab, kb):
    settings = lab.settings
    good = reproduce(settings, Request("trivial", preset="smoke"))
    broken = reproduce(settings, Request("trivial", preset="smoke", overrides=("accuracy=0.5",)))
    exported = settings.papers / "trivial" / "runs" / "trivial-20250101-000000-cafe.json"
    assert kb("runs", "export", good.id, "--out", str(exported.parent)).code == 0
    text = (exported.parent / f"{good.id}.json").read_text()
    (exported.parent / f"{good.id}.json").unlink()
    # A merge gone wrong in papers/ and a record.json cut short.
    exported.write_text("<<<<<<< HEAD\n" + text.replace(good.id, exported.stem) + "=======\n>>>>>>> theirs\n")
    record = settings.runs_dir / broken.id / "record.json"
    record.write_text(record.read_text()[:200])
    result = kb("sync")              # with the run still in the catalog, the damage is named too
    assert result.code == 1 and f"{record}:cannotreadrunfile" in "".join(result.err.split())
    forget_catalog(settings)
    result = kb("sync")
    assert result.code == 1
    problems = "".join(result.err.split())       # the console wraps long lines
    assert f"{exported}:cannotreadrunfile" in problems and f"{record}:cannotreadrunfile" in problems
    listed = {r["id"] for r in json.loads(kb("runs", "--json").out)}
    assert listed == {good.id}


def test_a_run_folder_and_an_export_of_one_run_load_the_more_complete(lab, kb):
    settings = lab.settings
    interrupted = reproduce(settings, Request("trivial", preset="default", overrides=("step_s=0.01",)),
                            reporter=_StopAtOnce())
    assert kb("runs", "export", interrupted.id).code == 0
    resumed = reproduce(settings, Request("trivial", resume=interrupted.id))
    assert resumed.status == "succeeded" and resumed.resumed == 1
    forget_catalog(settings)
    assert kb("sync").code == 0
    # The export says interrupted, the folder says succeeded after a resume: the folder's wins.
    shown = json.loads(kb("run", "show", interrupted.id, "--json").out)
    assert (shown["status"], shown["resumed"]) == ("succeeded", 1)

    # The other way round: the export has the ended run, the folder is behind (it says running).
    assert kb("runs", "export", interrupted.id).code == 0
    record = settings.runs_dir / interrupted.id / "record.json"
    document = json.loads(record.read_text())
    document["run"].update(status="running", ended=None)
    record.write_text(json.dumps(document))
    forget_catalog(settings)
    assert kb("sync").code == 0
    assert json.loads(kb("run", "show", interrupted.id, "--json").out)["status"] == "succeeded"


def test_runs_import_takes_a_run_folder(lab, kb):
    settings = lab.settings
    run = reproduce(settings, Request("trivial", preset="smoke"))
    folder = settings.runs_dir / run.id
    forget_catalog(settings)
    assert kb("runs", "--json").out.strip() == "[]"
    result = kb("runs", "import", str(folder))
    assert result.code == 0 and "imported 1 runs" in result.out
    shown = json.loads(kb("run", "show", run.id, "--json").out)
    # The trivial runner logs loss = 1/step for steps 1..3, and reports accuracy 0.9.
    assert shown["final"]["accuracy"] == 0.9 and shown["status"] == "succeeded"
    with session_scope(settings) as session:
        losses = [(m.step, m.value) for m in metrics_of(run.id, "step", session=session) if m.name == "loss"]
    assert losses == [(1, 1.0), (2, 0.5), (3, 1 / 3)]


def test_an_exported_regression_comes_back_on_another_machine(lab, kb, tmp_path):
    settings = lab.settings
    reproduce(settings, Request("trivial", preset="smoke"))
    failed = reproduce(settings, Request("trivial", preset="smoke", overrides=("fail=true",)))
    regress(settings, failed, add_schedule(lab, "0 3 * * *", at("2025-01-01T00:00:00")).id)
    assert kb("runs", "export", failed.id, "--out", str(tmp_path / "out")).code == 0
    exported = json.loads((tmp_path / "out" / f"{failed.id}.json").read_text())
    assert "job_id" not in exported["run"] and exported["regression"]["baseline_id"] is not None
    # Another machine: no catalog, no run folders; the export alone brings the regression.
    forget_catalog(settings)
    shutil.rmtree(settings.runs_dir)
    assert kb("runs", "import", str(tmp_path / "out")).code == 0
    regressions = json.loads(kb("regressions", "--json").out)
    assert [(r["run_id"], r["findings"][0]["kind"]) for r in regressions] == [(failed.id, "failure")]
    assert json.loads(kb("runs", "--json").out)[0]["regression"] is True


def _v1_catalog(settings) -> None:
    """The catalog of kb 21d6e5e with its two run folders as that kb left them (no record.json)."""
    settings.home.mkdir(parents=True, exist_ok=True)
    for run_id in ("trivial-20250101-000100-aaaa", "trivial-20250102-000100-bbbb"):
        (settings.runs_dir / run_id).mkdir(parents=True)
        (settings.runs_dir / run_id / "metrics.csv").write_text("kind,step,epoch,name,value\nstep,1,,loss,1.0\n")
    connection = sqlite3.connect(settings.home / "catalog.db")
    connection.executescript(V1_CATALOG.read_text().replace("RUNS/", f"{settings.runs_dir}/"))
    connection.execute("PRAGMA journal_mode=WAL")       # as kb keeps its catalogs
    connection.close()


def test_a_catalog_of_the_last_released_schema_is_migrated_without_losing_anything(lab, kb, caplog, monkeypatch):
    settings = lab.settings
    forget_catalog(settings)
    _v1_catalog(settings)
    # Opened read-only it cannot be migrated: one line says who can, and it stays as it was.
    catalog = settings.home / "catalog.db"
    with monkeypatch.context() as read_only:
        read_only.setenv("KB_DATABASE_URL", f"sqlite:///file:{catalog}?mode=ro&uri=true")
        result = kb("runs")
        assert result.code == 1 and f"has schema version 1 and could not be migrated to {SCHEMA_VERSION}" in result.err
    _ready_engine.cache_clear()
    with sqlite3.connect(catalog) as connection:
        assert connection.execute("SELECT value FROM kb_meta").fetchone() == ("1",)
    with (settings.papers / "trivial" / "paper.yaml").open("a") as out:
        out.write("added: 2025-01-01\n")       # as the catalog has it (see build_catalog)
    runs = json.loads(kb("runs", "--json").out)
    assert "migrated the catalog" in caplog.text and f"from schema 1 to {SCHEMA_VERSION}" in caplog.text
    assert [(r["id"], r["status"]) for r in runs] == [("trivial-20250102-000100-bbbb", "failed"),
                                                     ("trivial-20250101-000100-aaaa", "succeeded")]
    shown = json.loads(kb("run", "show", "trivial-20250101-000100-aaaa", "--json").out)
    # The columns schema 2 added hold their defaults; the rest is as the old kb wrote it.
    assert shown["kind"] == "train" and shown["overrides"] == {} and shown["host"] == "old-host"
    assert [s["cron"] for s in json.loads(kb("schedule", "list", "--json").out)] == ["0 3 * * *"]
    assert [r["run_id"] for r in json.loads(kb("regressions", "--json").out)] == ["trivial-20250102-000100-bbbb"]

    # kb sync writes the run folders' record.json from the catalog, so the catalog can go.
    assert kb("sync").code == 0
    assert (settings.runs_dir / "trivial-20250101-000100-aaaa" / "record.json").is_file()
    before = listings(kb)
    forget_catalog(settings)
    assert kb("sync").code == 0
    assert listings(kb) == before


def test_a_damaged_catalog_is_moved_aside_and_rebuilt(lab, kb, caplog):
    settings = lab.settings
    run = reproduce(settings, Request("trivial", preset="smoke"))
    catalog = settings.home / "catalog.db"
    _ready_engine(settings.database_url).dispose()
    with sqlite3.connect(catalog) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    _ready_engine.cache_clear()
    os.truncate(catalog, catalog.stat().st_size // 2)          # a copy cut short
    result = kb("sync")
    assert result.code == 0, result.err
    moved = [p for p in settings.home.glob("catalog.db.corrupt-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(moved) == 1 and "was damaged" in caplog.text and f"moved it to {moved[0].name}" in caplog.text
    assert [r["id"] for r in json.loads(kb("runs", "--json").out)] == [run.id]

    forget_catalog(settings)
    catalog.write_bytes(b"this is not an SQLite file" * 100)
    result = kb("sync")
    assert result.code == 0, result.err
    moved = [p for p in settings.home.glob("catalog.db.corrupt-*") if p.read_bytes().startswith(b"this is not")]
    assert len(moved) == 1 and f"moved it to {moved[0].name}" in caplog.text
    assert "(file is not a database)" in caplog.text
    assert [r["id"] for r in json.loads(kb("runs", "--json").out)] == [run.id]


def test_a_newer_or_foreign_database_is_refused_and_left_alone(lab, kb):
    settings = lab.settings
    forget_catalog(settings)
    path = settings.home / "catalog.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE patients (id INTEGER PRIMARY KEY)")
    connection.commit()
    result = kb("list")
    assert result.code == 1 and "is not a kb catalog" in result.err
    assert not list(settings.home.glob("catalog.db.*"))
    assert connection.execute("SELECT count(*) FROM patients").fetchone() == (0,)
    connection.execute("DROP TABLE patients")
    connection.execute("CREATE TABLE kb_meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
    connection.execute("INSERT INTO kb_meta VALUES ('schema_version', '99')")
    connection.commit()
    connection.close()
    _ready_engine.cache_clear()
    result = kb("sync")
    assert result.code == 1 and "schema version 99, newer than this kb's" in result.err and "kb sync" not in result.err


def test_on_postgresql_an_older_catalog_is_migrated_and_a_rebuilt_one_keeps_schedule_ids(pg_lab, kb, caplog,
                                                                                         postgres_server, monkeypatch):
    from sqlalchemy import text

    from kb.db import engine_for
    from tests.jobs_fixtures import new_database

    settings = pg_lab.settings
    run = reproduce(settings, Request("trivial", preset="smoke"))
    add_schedule(pg_lab, "0 3 * * *", at("2025-01-01T00:00:00"))
    add_schedule(pg_lab, "0 4 * * *", at("2025-01-01T00:00:00"))
    assert kb("schedule", "remove", "1").code == 0
    # Back to schema 1, as kb 21d6e5e left it: no run.kind, no run.overrides.
    with engine_for(settings).begin() as connection:
        connection.execute(text("ALTER TABLE run DROP COLUMN kind, DROP COLUMN overrides"))
        connection.execute(text("UPDATE kb_meta SET value = '1' WHERE key = 'schema_version'"))
    engine_for(settings).dispose()
    _ready_engine.cache_clear()
    shown = json.loads(kb("run", "show", run.id, "--json").out)
    assert f"from schema 1 to {SCHEMA_VERSION} (added " in caplog.text and "run.kind, run.overrides)" in caplog.text
    assert (shown["kind"], shown["overrides"], shown["status"]) == ("train", {}, "succeeded")

    # A new, empty database: kb sync gives the schedule back as number 2, and the next one is 3.
    engine_for(settings).dispose()
    monkeypatch.setenv("KB_DATABASE_URL", new_database(postgres_server, f"kb_rebuilt_{os.getpid()}"))
    _ready_engine.cache_clear()
    assert kb("sync").code == 0
    assert [s["id"] for s in json.loads(kb("schedule", "list", "--json").out)] == [2]
    added = kb("schedule", "add", "trivial", "--cron", "0 5 * * *", "--config", "smoke", "--json")
    assert json.loads(added.out)["id"] == 3
    assert [r["id"] for r in json.loads(kb("runs", "--json").out)] == [run.id]


def test_a_hand_written_paper_without_added_keeps_the_day_kb_first_saw_it(kb_env, kb):
    # Shipped paper.yaml files have no added: (kb never writes it into a hand-written file), yet
    # kb list --json shows and sorts by it: a rebuilt catalog must give the same day back.
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once")
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net", extra="added: 2015-06-01\n")
    assert kb("sync").code == 0
    before = json.loads(kb("list", "--json").out)
    forget_catalog(kb_env)
    assert kb("sync").code == 0
    assert json.loads(kb("list", "--json").out) == before
    assert "added" not in (kb_env.papers / "yolo" / "paper.yaml").read_text(encoding="utf-8")
    assert {p["slug"]: p["added"][:10] for p in before}["unet"] == "2015-06-01"
