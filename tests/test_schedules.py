"""kb.schedules: cron parsing, due times by hand, exactly-once ticks (also when concurrent or late)."""

import json
from datetime import timezone

import pytest
from sqlmodel import select, update

from kb.db import session_scope
from kb.errors import BadInput
from kb.models import Job, Schedule
from kb.schedules import install_files, next_due, pause, resume, tick
from tests.jobs_fixtures import add_schedule, at, concurrent_ticks, schedule_jobs

UTC = timezone.utc


@pytest.mark.parametrize("expression, reason", [
    ("* * * *", "expected five fields"),
    ("0 0 * * * *", "expected five fields"),
    ("61 * * * *", "out of range"),
    ("0 0 30 2 *", "never fires"),
    ("every day", "expected five fields"),
])
def test_bad_cron_expressions_are_refused_with_the_reason(expression, reason):
    with pytest.raises(BadInput, match=reason):
        next_due(expression, "UTC", at("2025-01-01T00:00:00"))


def test_due_times_follow_the_schedule_zone_by_hand():
    # 03:00 in Tokyo (UTC+9, no DST) is 18:00 UTC the day before.
    assert next_due("0 3 * * *", "Asia/Tokyo", at("2025-06-01T12:00:00")) == at("2025-06-01T18:00:00")
    # Noon in Berlin: 11:00 UTC in winter time, 10:00 UTC after the switch on 2024-03-31.
    assert next_due("0 12 * * *", "Europe/Berlin", at("2024-03-30T00:00:00")) == at("2024-03-30T11:00:00")
    assert next_due("0 12 * * *", "Europe/Berlin", at("2024-03-30T11:00:00")) == at("2024-03-31T10:00:00")
    assert next_due("@daily", "UTC", at("2025-01-01T00:00:00")) == at("2025-01-02T00:00:00")
    with pytest.raises(BadInput, match="not a time zone"):
        next_due("@daily", "Mars/Olympus", at("2025-01-01T00:00:00"))


def test_tick_enqueues_each_due_time_once(lab):
    schedule = add_schedule(lab, "0 * * * *", at("2025-01-01T00:30:00"), overrides=("steps=2",))
    assert schedule.next_due == at("2025-01-01T01:00:00")
    assert tick(lab.settings, now=at("2025-01-01T00:59:59")) == []
    (job,) = tick(lab.settings, now=at("2025-01-01T01:00:00"))
    assert (job.runner, job.preset, job.overrides, job.due, job.missed) == ("trivial", "smoke", ["steps=2"], at("2025-01-01T01:00:00"), 0)
    assert tick(lab.settings, now=at("2025-01-01T01:00:30")) == []
    assert len(tick(lab.settings, now=at("2025-01-01T02:00:00"))) == 1
    assert [j.due for j in schedule_jobs(lab)] == [at("2025-01-01T01:00:00"), at("2025-01-01T02:00:00")]


def test_a_late_tick_collapses_the_missed_due_times_into_one_job(lab):
    add_schedule(lab, "*/10 * * * *", at("2025-01-01T00:05:00"))
    (job,) = tick(lab.settings, now=at("2025-01-01T03:07:00"))   # due 00:10, 00:20, ..., 03:00: 18 times
    assert job.due == at("2025-01-01T03:00:00") and job.missed == 17
    assert "17 earlier due time(s)" in job.info["note"] and job.info["missed"][0] == "2025-01-01T00:10:00+00:00"
    with session_scope(lab.settings) as session:
        (schedule,) = session.exec(select(Schedule))
    assert schedule.next_due == at("2025-01-01T03:10:00")


def test_paused_schedules_are_skipped_and_resume_skips_what_was_missed(lab):
    schedule = add_schedule(lab, "0 * * * *", at("2025-01-01T00:30:00"))
    with session_scope(lab.settings) as session:
        pause(lab.settings, schedule.id, session=session)
    assert tick(lab.settings, now=at("2025-01-01T05:00:00")) == []
    with session_scope(lab.settings) as session:
        assert resume(lab.settings, schedule.id, session=session, now=at("2025-01-01T05:10:00")).next_due == at("2025-01-01T06:00:00")
    assert tick(lab.settings, now=at("2025-01-01T05:30:00")) == []


def test_concurrent_ticks_at_a_due_time_enqueue_one_job(lab):
    assert concurrent_ticks(lab, processes=4, rounds=5) == [1] * 5


def test_the_job_table_itself_refuses_a_due_time_twice(lab):
    from sqlalchemy.exc import IntegrityError

    add_schedule(lab, "0 * * * *", at("2025-01-01T00:00:00"))
    tick(lab.settings, now=at("2025-01-01T01:00:00"))
    (job,) = schedule_jobs(lab)
    with pytest.raises(IntegrityError):
        with session_scope(lab.settings) as session:
            session.add(Job(runner="trivial", preset="smoke", time_limit_s=60, schedule_id=job.schedule_id, due=job.due))
    with session_scope(lab.settings) as session:  # a tick that lost the race on next_due changes nothing
        session.exec(update(Schedule).values(next_due=job.due))
    assert tick(lab.settings, now=at("2025-01-01T01:30:00")) == []


def test_schedule_commands(lab, kb):
    bad = kb("schedule", "add", "trivial", "--cron", "61 * * * *")
    assert bad.code == 2 and bad.err.startswith("kb: error: cron expression '61 * * * *': ") and bad.err.count("\n") == 1
    assert kb("schedule", "add", "trivial", "--cron", "0 3 * * *", "--config", "nope").code == 2
    unknown = kb("schedule", "add", "trivail", "--cron", "0 3 * * *")
    assert unknown.code == 1 and unknown.err == "kb: error: no runner named 'trivail'; did you mean 'trivial'?\n"
    added = kb("schedule", "add", "trivial", "--cron", "0 3 * * *", "--config", "smoke", "--set", "steps=2", "--tz", "Asia/Tokyo")
    assert added.code == 0 and "schedule 1: trivial (smoke) at 0 3 * * * Asia/Tokyo; next due" in added.out
    (row,) = json.loads(kb("schedule", "list", "--json").out)
    assert row["next_due_local"].endswith("T03:00:00+09:00") and row["overrides"] == ["steps=2"]
    assert "paused" in kb("schedule", "pause", "1").out and json.loads(kb("schedule", "list", "--json").out)[0]["paused"]
    assert "active; next due" in kb("schedule", "resume", "1").out
    assert kb("schedule", "tick").out == "nothing due\n"
    assert kb("schedule", "remove", "1").out == "schedule 1 removed\n"
    assert kb("schedule", "remove", "1").err == "kb: error: no schedule 1; see `kb schedule list`\n"


def test_install_prints_a_crontab_and_systemd_units_calling_tick_and_a_worker(lab, kb, monkeypatch):
    worker_needs = {"KB_ON_REGRESSION": "notify-chat", "KB_SLURM_CLUSTER": "debug", "KB_JOB_STALE": "600",
                    "KB_JOB_HEARTBEAT": "20", "KB_JOB_BACKOFF": "5", "KB_JOB_GRACE": "30",
                    "KB_REGRESSION_THROUGHPUT_DROP": "0.5", "KB_ARXIV_API": "http://mirror.lab/api/query",
                    "KB_ARXIV_DELAY": "5", "KB_SLURM_PARTITION": "a100", "KB_EXECUTOR": "slurm"}
    for name, value in worker_needs.items():
        monkeypatch.setenv(name, value)
    files = install_files(lab.settings, kb_command="/opt/kb/bin/kb")
    tick_line, reboot_line = files.crontab.splitlines()
    assert tick_line.startswith("* * * * * cd ") and tick_line.split(" >> ")[0].endswith("/opt/kb/bin/kb schedule tick")
    assert f"KB_HOME={lab.settings.home}" in tick_line
    for name, value in worker_needs.items():
        assert f"{name}={value}" in tick_line and f"{name}={value}" in reboot_line, name
        assert f'Environment="{name}={value}"' in files.units["kb-worker.service"], name
    assert reboot_line.startswith("@reboot ") and "/opt/kb/bin/kb worker" in reboot_line
    assert set(files.units) == {"kb-tick.service", "kb-tick.timer", "kb-worker.service"}
    assert "ExecStart=/opt/kb/bin/kb schedule tick" in files.units["kb-tick.service"]
    assert "OnCalendar=*-*-* *:*:00" in files.units["kb-tick.timer"]
    assert "ExecStart=/opt/kb/bin/kb worker" in files.units["kb-worker.service"]
    assert "KillSignal=SIGTERM" in files.units["kb-worker.service"]
    printed = kb("schedule", "install").out
    assert "schedule tick" in printed and "[Timer]" in printed and "kb-worker.service" in printed


def test_schedule_install_through_the_cli_carries_the_cluster_and_the_stale_time(lab, kb, monkeypatch):
    monkeypatch.setenv("KB_SLURM_CLUSTER", "local")
    monkeypatch.setenv("KB_JOB_STALE", "300")
    printed = kb("schedule", "install").out
    assert printed.count("KB_SLURM_CLUSTER=local") >= 2 and printed.count("KB_JOB_STALE=300") >= 2


def test_every_kb_variable_the_code_names_is_a_known_setting():
    # An independent reading of the sources: any KB_* name in kb/ or runners/ must be declared
    # in kb.settings (so install passes it on), and only kb/settings.py reads the environment.
    import re
    from pathlib import Path

    from kb.settings import VARIABLES

    root = Path(__file__).resolve().parent.parent
    named, readers = set(), []
    for path in [*root.joinpath("kb").rglob("*.py"), *root.joinpath("runners").rglob("*.py")]:
        text = path.read_text(encoding="utf-8")
        named |= set(re.findall(r"\bKB_[A-Z_]+[A-Z]\b", text))
        if re.search(r"os\.environ(\.get)?[\[(]\s*[\"']KB_", text) and path.name != "settings.py":
            readers.append(path.relative_to(root).as_posix())
    assert named - set(VARIABLES) == set()
    assert readers == []
