"""Workers and ticks under concurrency, on SQLite and on a real PostgreSQL server.

The PostgreSQL server comes from Debian's packages (`.ci/run` installs them); without its binaries
these tests fail with the reason instead of skipping.
"""

import json
import signal

import pytest

from kb.runs.execute import Request
from tests.jobs_fixtures import concurrent_ticks, drain_concurrently, job_row, queue, running_run, runs_of, stop_process

CATALOGS = ["lab", "pg_lab"]


@pytest.mark.parametrize("catalog", CATALOGS)
def test_two_workers_drain_200_jobs_each_exactly_once(catalog, request):
    result = drain_concurrently(request.getfixturevalue(catalog), jobs=200, workers=2)
    assert result["exit_codes"] == [0, 0], result["outputs"]
    assert (result["succeeded"], result["executions"], result["distinct_runs"]) == (200, 200, 200)
    assert (result["duplicates"], result["lost"]) == (0, 0)
    assert len(result["per_worker"]) == 2 and sum(result["per_worker"]) == 200


@pytest.mark.parametrize("catalog", CATALOGS)
def test_concurrent_ticks_enqueue_one_job_per_due_time(catalog, request):
    assert concurrent_ticks(request.getfixturevalue(catalog), processes=4, rounds=3) == [1, 1, 1]


def test_a_sigkilled_worker_job_completes_through_another_worker_on_postgresql(pg_lab):
    job = queue(pg_lab, "steps=40", "step_s=0.05")
    first = pg_lab.worker("--poll", "0.2")
    try:
        running_run(pg_lab, job.id)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        second = pg_lab.worker("--max-jobs", "1", "--poll", "0.2")
        output, _ = second.communicate(timeout=60)
    finally:
        stop_process(first)
    done = job_row(pg_lab, job.id)
    assert (done.status, done.attempts, done.lost) == ("succeeded", 2, 1), output
    assert [run.status for run in runs_of(pg_lab, job.id)] == ["failed", "succeeded"]


def test_the_catalog_commands_work_on_postgresql(pg_lab, kb):
    from kb.runs.execute import reproduce

    synced = kb("sync")
    assert synced.code == 0 and "synced 1 papers" in synced.out, synced
    assert [p["slug"] for p in json.loads(kb("list", "--json").out)] == ["trivial"]
    assert "trivial" in kb("search", "Trivial Paper").out
    record = reproduce(pg_lab.settings, Request(runner="trivial", preset="smoke"))
    assert record.status == "succeeded"
    (row,) = json.loads(kb("runs", "--json").out)
    assert row["id"] == record.id and row["verdict"] == "reproduced"
    assert "trivial" in [runner["name"] for runner in json.loads(kb("runners", "--json").out)]
    assert kb("reproduce", "trivial", "--config", "smoke", "--queue").code == 0
    assert [j["status"] for j in json.loads(kb("jobs", "--json").out)] == ["queued"]
