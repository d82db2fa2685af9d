"""kb.jobs on SQLite: the queue's rules, the worker's outcomes, killed and stopped workers, SLURM."""

import json
import os
import signal
import stat
import time
from datetime import timedelta

import pytest
from sqlmodel import update

from kb.db import session_scope
from kb.errors import BadInput
from kb.jobs import (SlurmOptions, Timing, Worker, cancel, claim, enqueue, recover_stale, retry, slurm_parameters,
                     submit)
from kb.models import Job, utcnow
from kb.runs.execute import Request
from kb.runs.registry import Resources
from tests.jobs_fixtures import job_row, queue, running_run, runs_of, stop_process, wait_for


def test_reproduce_queue_then_worker_records_a_run_with_its_verdict(lab, kb):
    queued = kb("reproduce", "trivial", "--config", "smoke", "--queue")
    assert queued.code == 0 and "queued job 1: trivial (smoke)" in queued.out, queued
    assert [job["status"] for job in json.loads(kb("jobs", "--status", "queued", "--json").out)] == ["queued"]

    report = lab.drain()

    assert report.outcomes == {"succeeded": 1}
    job = job_row(lab, 1)
    (run,) = runs_of(lab, 1)
    assert (job.status, job.run_id, job.attempts, job.worker) == ("succeeded", run.id, 1, report.worker)
    assert run.status == "succeeded" and run.final["accuracy"] == 0.9
    assert [v["verdict"] for v in run.verdicts] == ["reproduced"]
    assert lab.executions() == [run.id]


def test_queueing_checks_the_request_like_reproduce_does(lab):
    with pytest.raises(BadInput, match="no preset 'nope'"):
        enqueue(lab.settings, Request(runner="trivial", preset="nope"))
    with pytest.raises(BadInput, match="has no field 'nope'"):
        queue(lab, "nope=1")
    assert queue(lab, "steps=2").time_limit_s == 10 * 60  # the runner's resources.time_min


def test_cancel_and_retry_follow_the_job_status(lab, kb):
    job = queue(lab)
    with session_scope(lab.settings) as session:
        with pytest.raises(BadInput, match="only failed or cancelled"):
            retry(job.id, session=session)
        assert cancel(job.id, session=session).status == "cancelled"
    assert lab.drain().claimed == 0
    with session_scope(lab.settings) as session:
        assert retry(job.id, session=session).status == "queued"
    lab.drain()
    with session_scope(lab.settings) as session:
        with pytest.raises(BadInput, match="already succeeded"):
            cancel(job.id, session=session)
        with pytest.raises(BadInput, match="succeeded; only failed or cancelled"):
            retry(job.id, session=session)
    assert kb("jobs", "cancel", "99").err == "kb: error: no job 99; see `kb jobs`\n"
    refused = kb("jobs", "retry", str(job.id))
    assert refused.code == 2 and refused.err.startswith(f"kb: error: job {job.id} is succeeded; only failed or cancelled")


def test_a_failing_run_fails_its_job_once_without_retries(lab):
    job = queue(lab, "fail=true")
    report = lab.drain()
    assert report.outcomes == {"failed": 1}
    job = job_row(lab, job.id)
    assert job.status == "failed" and "deliberately broken runner" in job.error
    assert job.attempts == 1 and len(lab.executions()) == 1


def test_time_limit_interrupts_with_a_checkpoint_and_retry_resumes(lab):
    job = queue(lab, "steps=20", "step_s=0.1", time_limit_s=1)
    started = time.monotonic()
    lab.drain()
    assert time.monotonic() - started < 8
    job = job_row(lab, job.id)
    (run,) = runs_of(lab, job.id)
    assert job.status == "failed" and "time limit of 0:00:01 reached" in job.error
    assert run.status == "interrupted" and (lab.settings.runs_dir / run.id / "checkpoints" / "last.pt").exists()

    with session_scope(lab.settings) as session:
        session.exec(update(Job).where(Job.id == job.id).values(time_limit_s=600))
        retry(job.id, session=session)
    lab.drain()
    (resumed,) = runs_of(lab, job.id)
    assert job_row(lab, job.id).status == "succeeded"
    assert resumed.id == run.id and resumed.resumed == 1 and resumed.info["resumed_from_step"] > 0


def test_sigterm_stops_the_worker_cleanly_and_requeues_the_job(lab):
    job = queue(lab, "steps=40", "step_s=0.05")
    worker = lab.worker("--poll", "0.2")
    try:
        run = running_run(lab, job.id)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        stop_process(worker)
    stopped = job_row(lab, job.id)
    assert stopped.status == "queued" and "worker stopping" in stopped.error
    assert runs_of(lab, job.id)[0].status == "interrupted"

    lab.drain()
    (resumed,) = runs_of(lab, job.id)
    assert job_row(lab, job.id).status == "succeeded"
    assert resumed.id == run.id and resumed.resumed == 1
    assert lab.executions() == [run.id, run.id]


def test_a_sigkilled_worker_leaves_a_job_that_another_worker_completes(lab):
    job = queue(lab, "steps=40", "step_s=0.05")
    first = lab.worker("--poll", "0.2")
    try:
        run = running_run(lab, job.id)
        child = run.info["pid"]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        # The job's process dies with its worker: nothing runs the job until it is found stale.
        wait_for(lambda: not os.path.exists(f"/proc/{child}") or open(f"/proc/{child}/stat").read().split()[2] == "Z",
                 5, "the killed worker's child to die")
        second = lab.worker("--max-jobs", "1", "--poll", "0.2")
        output, _ = second.communicate(timeout=60)
    finally:
        stop_process(first)
    assert second.returncode == 0, output
    assert "without a heartbeat" in output
    done = job_row(lab, job.id)
    lost, finished = runs_of(lab, job.id)
    assert (done.status, done.attempts, done.lost) == ("succeeded", 2, 1)
    assert lost.status == "failed" and "was lost" in lost.error
    assert finished.status == "succeeded" and finished.started > lost.ended - timedelta(seconds=1)
    assert lab.executions() == [lost.id, finished.id]


def test_stale_jobs_back_off_and_fail_with_the_reason_after_the_limit(lab):
    timing = Timing(heartbeat_s=0.2, stale_s=1.0, backoff_s=60, grace_s=1)
    job = queue(lab)
    claim(lab.settings, worker="ghost:1")
    long_ago = utcnow() - timedelta(seconds=30)
    with session_scope(lab.settings) as session:
        session.exec(update(Job).where(Job.id == job.id).values(heartbeat=long_ago))
    ((seen, status),) = recover_stale(lab.settings, timing=timing)
    again = job_row(lab, job.id)
    assert status == "queued" and again.lost == 1 and "worker ghost:1 stopped heartbeating" in again.error
    assert timedelta(seconds=55) < again.not_before - utcnow() <= timedelta(seconds=60)
    assert claim(lab.settings, worker="w") is None  # still backing off
    assert recover_stale(lab.settings, timing=timing) == []

    with session_scope(lab.settings) as session:
        session.exec(update(Job).where(Job.id == job.id).values(not_before=long_ago, lost=2))
    claim(lab.settings, worker="ghost:2")
    with session_scope(lab.settings) as session:
        session.exec(update(Job).where(Job.id == job.id).values(heartbeat=long_ago))
    recover_stale(lab.settings, timing=timing)
    given_up = job_row(lab, job.id)
    assert given_up.status == "failed" and given_up.error.startswith("gave up after 3 lost attempts")
    assert "ghost:2" in given_up.error


def test_cancelling_a_running_job_stops_its_run(lab, kb):
    job = queue(lab, "steps=200", "step_s=0.05")
    worker = lab.worker("--once", "--poll", "0.2")
    try:
        running_run(lab, job.id)
        assert "its run stops at its next step" in kb("jobs", "cancel", str(job.id)).out
        wait_for(lambda: job_row(lab, job.id).status == "cancelled", 20, "the job to be cancelled")
        worker.wait(timeout=20)
    finally:
        stop_process(worker)
    assert runs_of(lab, job.id)[0].status == "interrupted"


def test_worker_cli_rejects_bad_options_and_bad_timing(lab, kb, monkeypatch):
    done = kb("worker", "--executor", "kubernetes")
    assert (done.code, done.err) == (2, "kb: error: executor 'kubernetes': use local or slurm\n")
    monkeypatch.setenv("KB_JOB_STALE", "0.1")
    done = kb("worker", "--once")
    assert done.code == 2 and "at least three heartbeats" in done.err


# -- SLURM through submitit --------------------------------------------------------------------


def test_slurm_parameters_carry_the_runner_needs_and_lab_settings():
    job = Job(id=7, runner="yolo", preset="smoke", time_limit_s=3600)
    options = SlurmOptions(partition="gpu", account="lab")
    assert slurm_parameters(Resources(gpus=2, cpus=16, mem_gb=64, time_min=60), job, options) == {
        "name": "kb-yolo-7", "timeout_min": 65, "gpus_per_node": 2, "cpus_per_task": 16, "mem_gb": 64,
        "slurm_partition": "gpu", "slurm_account": "lab"}
    assert SlurmOptions.from_env({"KB_SLURM_PARTITION": "a100"}) == SlurmOptions(partition="a100")


def test_debug_executor_runs_the_job_through_submitit(lab):
    job = queue(lab, executor="slurm")
    Worker(lab.settings, timing=Timing.from_env(), slurm=SlurmOptions(cluster="debug")).run(once=True, poll=0.1)
    done = job_row(lab, job.id)
    assert done.status == "succeeded" and done.external_id.startswith("DEBUG_")
    assert runs_of(lab, job.id)[0].status == "succeeded"


def test_local_executor_runs_the_job_in_a_submitit_process_and_tracks_its_state(lab):
    job = queue(lab)
    report = Worker(lab.settings, executor="slurm", timing=Timing.from_env(),
                    slurm=SlurmOptions(cluster="local")).run(once=True, poll=0.2)
    done = job_row(lab, job.id)
    (run,) = runs_of(lab, job.id)
    assert report.outcomes == {"succeeded": 1}
    assert done.status == "succeeded" and done.external_id and done.info["slurm_state"] in ("FINISHED", "DONE", "COMPLETED")
    assert run.info["pid"] != os.getpid()


FAKE_SBATCH = """#!/bin/sh
cp "$1" "{captured}"
echo "Submitted batch job 4242"
"""


def test_sbatch_script_asks_for_the_runner_resources(lab, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    captured = tmp_path / "captured.sh"
    for name, text in {"sbatch": FAKE_SBATCH.format(captured=captured), "srun": "#!/bin/sh\nexit 0\n",
                       "sacct": "#!/bin/sh\necho 'JobID|State|NodeList'\necho '4242|PENDING|'\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    queue(lab, time_limit_s=1800)
    job = claim(lab.settings, worker="w")

    submitted = submit(lab.settings, job, slurm=SlurmOptions(partition="gpu-a100", account="vision-lab"), heartbeat_s=1)

    script = captured.read_text()
    for line in ("#SBATCH --partition=gpu-a100", "#SBATCH --account=vision-lab", "#SBATCH --gpus-per-node=1",
                 "#SBATCH --cpus-per-task=2", "#SBATCH --mem=4GB", "#SBATCH --time=35", "#SBATCH --job-name=kb-trivial-1"):
        assert line in script, script
    assert "submitit" in script and "srun" in script
    recorded = job_row(lab, job.id)
    assert submitted.job_id == "4242" and (recorded.status, recorded.external_id) == ("submitted", "4242")


def test_a_job_of_a_rebuilt_catalog_does_not_take_over_an_older_run_with_its_id(lab):
    # A rebuilt catalog numbers jobs from 1 again, while runs rebuilt from their files keep the job
    # id they had: job 1 of today must start its own run, not resume yesterday's job 1.
    from kb.jobs import _settle_lost, request_for
    from kb.models import RunRecord
    from kb.runs.record_file import read_run, write_record

    old_dir = lab.settings.runs_dir / "trivial-old"
    (old_dir / "checkpoints").mkdir(parents=True)
    (old_dir / "checkpoints" / "last.pt").write_bytes(b"checkpoint")
    with session_scope(lab.settings) as session:
        old = RunRecord(id="trivial-old", runner="trivial", paper_key="0000.00001", preset="smoke", status="running",
                        run_dir=str(old_dir), job_id=1, created=utcnow() - timedelta(days=1))
        session.add(old)
        write_record(old)
        job = Job(runner="trivial", preset="smoke", status="running", attempts=1, worker="w", claimed=utcnow(),
                  heartbeat=utcnow(), time_limit_s=60)
        session.add(job)
        session.flush()
        assert job.id == 1
        assert request_for(job, session=session).resume is None
        (lab.settings.runs_dir / "trivial-new").mkdir()
        mine = RunRecord(id="trivial-new", runner="trivial", paper_key="0000.00001", preset="smoke", status="running",
                         run_dir=str(lab.settings.runs_dir / "trivial-new"), job_id=1)
        session.add(mine)
        write_record(mine)
    assert _settle_lost(lab.settings, job, "worker vanished", Timing()) == "queued"
    # The job's own lost run fails in its file too; yesterday's run is not this job's and is left alone.
    lost = read_run(lab.settings.runs_dir / "trivial-new").record
    assert (lost.status, lost.error) == ("failed", "job 1 attempt 1 was lost: worker vanished")
    assert read_run(old_dir).record.status == "running"
