"""What a user sees when things go wrong: one line on stderr, no traceback, README's exit codes
(0 success, 1 failure, 2 bad usage or input), for the inputs and situations of issue 14."""

import ctypes
import errno
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import event
from sqlmodel import update

from kb.db import engine_for, session_scope
from kb.models import Job, RunRecord, utcnow
from tests.conftest import write_paper
from tests.jobs_fixtures import job_row, queue, runs_of

BIG = "x" * 100_000
# Linux capabilities that let root write where the mode bits say no (capability.h numbers).
_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER = 1, 2, 3
_PR_CAPBSET_DROP = 24


def one_line(result, code: int) -> str:
    """The error line of a failed command, after checking its exit code and that it is one line."""
    err = getattr(result, "err", None) or getattr(result, "stderr", "")
    code_seen = getattr(result, "code", getattr(result, "returncode", None))
    assert code_seen == code, (code_seen, err[-2000:])
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("kb: error: "), err[-2000:]
    return lines[0]


def _without_root_overrides() -> None:
    """In the child before exec: drop the capabilities that make root ignore mode bits, so a
    folder made read-only with chmod is read-only for this process too (the tests may run as root)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH, _CAP_FOWNER):
        if libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def kb_unprivileged(*args: str) -> subprocess.CompletedProcess:
    """``kb ARGS`` in a new process that mode bits apply to, whoever runs the tests."""
    return subprocess.run([sys.executable, "-m", "kb.cli.main", *args], capture_output=True, text=True, timeout=60, check=False,
                          preexec_fn=_without_root_overrides if os.geteuid() == 0 else None)


def make_read_only(*folders: Path) -> None:
    for folder in folders:
        for path in [folder, *folder.rglob("*")]:
            path.chmod(0o555 if path.is_dir() else 0o444)


def test_read_only_kb_home_and_papers_still_list_search_and_show(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection",
                notes={"ja": "グリッドごとに物体を検出する。"})
    assert kb("sync").code == 0
    # A run whose process died: listing runs would mark it failed, which a read-only catalog refuses.
    gone = subprocess.Popen(["true"])
    gone.wait()
    with session_scope(kb_env) as session:
        session.add(RunRecord(id="yolo-dead", runner="yolo", paper_key="1506.02640", preset="smoke", status="running",
                              run_dir=str(kb_env.runs_dir / "yolo-dead"), host=socket.gethostname(), info={"pid": gone.pid}))
    engine_for(kb_env).dispose()  # no kb process is left running on the catalog
    make_read_only(kb_env.home, kb_env.papers)
    try:
        probe = kb_unprivileged("tag", "yolo", "+fast")
        line = one_line(probe, 1)
        assert line.startswith(f"kb: error: permission denied: {kb_env.home / 'catalog.db'}")

        listed = kb_unprivileged("list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert [p["slug"] for p in json.loads(listed.stdout)] == ["yolo"]
        found = kb_unprivileged("search", "検出", "--json")
        assert found.returncode == 0 and [h["slug"] for h in json.loads(found.stdout)] == ["yolo"], found.stderr
        shown = kb_unprivileged("show", "1506.02640")
        assert shown.returncode == 0 and "You Only Look Once" in shown.stdout, shown.stderr
        runs = kb_unprivileged("runs", "--json")
        assert runs.returncode == 0, runs.stderr
        assert [(r["id"], r["status"]) for r in json.loads(runs.stdout)] == [("yolo-dead", "running")]  # not markable
        assert not (kb_env.home / "catalog.db-wal").exists()  # nothing was written beside the catalog

        added = kb_unprivileged("add", "1506.02640", "--offline")
        # kb sync left cache/ (the runner specs' cache): writing the arXiv cache in it is what is refused
        assert one_line(added, 1).startswith(f"kb: error: permission denied: {kb_env.home / 'cache'}; ")
    finally:
        for folder in (kb_env.home, kb_env.papers):
            for path in [folder, *folder.rglob("*")]:
                path.chmod(0o755 if path.is_dir() else 0o644)


def test_read_only_papers_folder_names_the_folder(kb_env, kb, tmp_path):
    (tmp_path / "memo.md").write_text('---\npaper: "1506.02640"\n---\nメモ\n', encoding="utf-8")
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once")
    assert kb("sync").code == 0
    make_read_only(kb_env.papers)
    try:
        denied = f"kb: error: permission denied: {kb_env.papers / 'yolo'}; give this user write access"
        imported = kb_unprivileged("import", str(tmp_path / "memo.md"), "--offline")
        assert one_line(imported, 1).startswith(denied)
        assert not (kb_env.papers / "yolo" / "notes").exists()
        tagged = kb_unprivileged("tag", "yolo", "+fast")  # the folder refuses paper.yaml's temporary file
        assert one_line(tagged, 1).startswith(denied)
    finally:
        for path in [kb_env.papers, *kb_env.papers.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_full_disk_names_the_file_and_writes_nothing(arxiv_server, kb_env, kb, monkeypatch):
    real_write_bytes = Path.write_bytes

    def full(path, data):
        if kb_env.home in path.parents:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # write(2) names no file
        return real_write_bytes(path, data)

    monkeypatch.setattr(Path, "write_bytes", full)
    line = one_line(kb("add", "1506.02640"), 1)
    assert line.startswith(f"kb: error: disk full: {kb_env.home / 'cache' / 'arxiv' / 'raw'}")
    assert line.endswith("; free some space and run the command again")
    assert list(kb_env.papers.iterdir()) == []


def test_site_serve_refuses_a_port_out_of_range_and_one_in_use(kb_env, kb, tmp_path):
    assert one_line(kb("site", "serve", "--port", "99999"), 2) == (
        "kb: error: --port 99999: a port is a number from 0 to 65535 (0: any free port)")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(kb("site", "serve", "--port", str(port), "--out", str(tmp_path / "site")), 1)
    assert line.startswith(f"kb: error: cannot serve on 127.0.0.1:{port} (") and "choose another --port" in line


def test_a_missing_editor_is_named_with_what_to_set(kb_env, kb, monkeypatch):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once")
    assert kb("sync").code == 0
    monkeypatch.delenv("VISUAL", raising=False)
    for editor, reason in (("no-such-editor-h5 --wait", "not found"), ('vim "', "no closing quotation"),
                           (str(kb_env.papers / "yolo" / "paper.yaml"), "permission denied")):
        monkeypatch.setenv("EDITOR", editor)
        line = one_line(kb("note", "yolo", "--edit"), 1)
        assert line.startswith(f"kb: error: the editor {editor!r} cannot be run ({reason}); set EDITOR to an editor")


def test_broken_xml_from_arxiv_is_not_reported_as_not_found(arxiv_server, kb_env, kb):
    # An answer cut off mid-entry (a proxy's timeout, a truncated body).
    arxiv_server.answer_next = [b'<?xml version="1.0"?>\n<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>http://arxiv']
    line = one_line(kb("add", "1506.02640"), 1)
    assert line.startswith("kb: error: arXiv returned a response that could not be read (") and "not found" not in line
    offline = one_line(kb("add", "1506.02640", "--offline"), 1)
    assert "not in the cache" in offline  # the garbled answer was not cached as an empty one
    assert kb("add", "1506.02640").code == 0  # the next, good answer is read


def test_a_100_kb_argument_is_not_echoed_in_full(kb_env, kb):
    shown = BIG[:80] + "… (100,000 characters)"
    assert one_line(kb("add", BIG), 2) == (f"kb: error: not an arXiv id: '{shown}' (nothing was added; "
                                           "expected e.g. 1506.02640 or https://arxiv.org/abs/1506.02640)")
    assert one_line(kb("show", BIG), 1) == (f"kb: error: no paper '{shown}' in the catalog; see `kb list`, "
                                            f"or add it with `kb add {shown}`")
    assert len(one_line(kb("run", "show", BIG), 1)) < 300
    long_path = str(kb_env.home / ("d" * (150 - len(str(kb_env.home)))))  # a long path is not input to hide
    assert one_line(kb("import", long_path), 2) == f"kb: error: {long_path}: no such file or folder"
    searched = kb("search", BIG)
    assert (searched.code, searched.out, searched.err) == (0, "no matches\n", "")


def test_a_50_mb_note_is_refused_by_name_with_the_limit(kb_env, kb, tmp_path, monkeypatch):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once", notes={"en": "fine"})
    huge = tmp_path / "dump.md"
    with huge.open("wb") as out:
        out.truncate(50 * 2**20)  # sparse: 50 MB on paper, nothing to write
    imported = kb("import", str(huge), "--offline")
    assert imported.code == 1 and "Traceback" not in imported.err
    assert f"problem: {huge}: 50.0 MB is over the 5 MB limit for a notes file" in imported.err

    grown = kb_env.papers / "yolo" / "notes.en.md"
    editor = tmp_path / "grow"  # an "editor" that leaves the note at 6 MB
    editor.write_text(f"#!/bin/sh\n{sys.executable} -c \"open('$1', 'a').write('x' * (6 << 20))\"\n")
    editor.chmod(0o755)
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", str(editor))
    assert kb("sync").code == 0
    shown = f"{kb_env.papers.name}/yolo/notes.en.md"   # notes in papers/ are named as papers/<slug>/...
    line = one_line(kb("note", "yolo", "--edit"), 2)
    assert line.startswith(f"kb: error: {shown}: 6.0 MB is over the 5 MB limit")
    synced = kb("sync")
    assert synced.code == 1 and f"problem: {shown}: 6.0 MB is over the 5 MB limit" in synced.err
    assert grown.stat().st_size > 6 << 20  # refused, never cut


def test_import_reads_shift_jis_and_utf16_and_fails_visibly_on_unreadable(kb_env, kb, tmp_path):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once")
    assert kb("sync").code == 0
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    memo = '---\npaper: "1506.02640"\nlang: ja\n---\n## 概要\nグリッドごとに箱とクラスを同時に予測する。\n'
    (inbox / "windows.txt").write_bytes(memo.replace("\n", "\r\n").encode("cp932"))
    (inbox / "notepad.md").write_bytes(b"\xff\xfe" + memo.encode("utf-16-le"))
    (inbox / "latin.md").write_bytes("Résumé: très bien noté".encode("latin-1"))

    imported = kb("import", str(inbox), "--offline", "--json")

    assert imported.code == 1 and imported.err.count("\n") == 1
    report = json.loads(imported.out)
    assert sorted(i["origin"] for i in report["imported"]) == ["notepad.md#1", "windows.txt#1"]
    assert report["problems"] == [(f"{inbox / 'latin.md'}: not UTF-8 text (bad byte at offset 1), nor Shift_JIS "
                                   "Japanese; save it as UTF-8 and import it again")]
    body = (kb_env.papers / "yolo" / "notes" / "windows.ja.md").read_text(encoding="utf-8")
    assert "グリッドごとに箱とクラスを同時に予測する。" in body


def test_runs_status_must_be_a_run_status(kb_env, kb):
    assert one_line(kb("runs", "--status", "nosuch"), 2) == (
        "kb: error: --status 'nosuch': use one of queued, running, succeeded, failed, interrupted")
    assert kb("runs", "--status", "interrupted").code == 0


def test_worker_once_runs_the_stale_job_it_requeues(lab, kb):
    job = queue(lab)
    long_ago = utcnow().replace(year=2020)
    with session_scope(lab.settings) as session:   # a worker claimed it, then died without a trace
        session.exec(update(Job).where(Job.id == job.id).values(status="running", worker="ghost:1", attempts=1,
                                                                 heartbeat=long_ago, claimed=long_ago))
    done = kb("worker", "--once", "--poll", "0.2")
    assert done.code == 0 and "now queued" in done.err and "waiting" in done.err
    finished = job_row(lab, job.id)
    assert (finished.status, finished.attempts, finished.lost) == ("succeeded", 2, 1)
    assert [r.status for r in runs_of(lab, job.id)] == ["succeeded"]


def test_jobs_cancel_says_a_queued_job_is_cancelled_at_once(lab, kb):
    job = queue(lab)
    done = kb("jobs", "cancel", str(job.id))
    assert done.code == 0
    assert done.out == f"job {job.id} cancelled; it had not started, so the cancellation took effect at once\n"
    assert job_row(lab, job.id).status == "cancelled"
    assert one_line(kb("jobs", "cancel", "999"), 1) == "kb: error: no job 999; see `kb jobs`"


def test_usage_errors_are_one_line_with_where_help_is(kb_env, kb):
    assert one_line(kb("list", "--year", "abc"), 2).startswith("kb: error: Invalid value for '--year': ")
    assert one_line(kb("list", "--year", BIG), 2).endswith("(see `kb list --help`)")
    assert one_line(kb("frobnicate"), 2) == "kb: error: No such command 'frobnicate'. (see `kb --help`)"
    assert one_line(kb("tag", "yolo"), 2) == "kb: error: Missing argument '+TAG|-TAG...'. (see `kb tag --help`)"
    for command in (("list",), ("search", "x"), ("jobs",), ("runs",), ("regressions",)):
        assert one_line(kb(*command, "--limit", "0"), 2).startswith("kb: error: Invalid value for '--limit': ")
    helped = kb("runs", "--help")
    assert helped.code == 0 and helped.out.startswith("Usage: kb runs")


def test_a_full_catalog_disk_names_the_catalog_and_keeps_the_files(arxiv_server, kb_env, kb):
    assert kb("list").code == 0
    engine = engine_for(kb_env)
    # SQLite's own "database or disk is full": the catalog may not grow by a page.
    event.listen(engine, "connect", lambda connection, _record: connection.execute("PRAGMA max_page_count=1"))
    engine.dispose()
    line = one_line(kb("add", "1506.02640"), 1)
    assert line == (f"kb: error: disk full: {kb_env.home / 'catalog.db'}; nothing was changed; "
                    "free some space and run the command again")
    assert list(kb_env.papers.iterdir()) == []
