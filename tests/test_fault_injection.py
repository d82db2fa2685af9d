"""kill -9 at random points of kb add, kb import, kb sync, a checkpoint write and a worker's claim.

Each trial forks this (warm) process; the child counts the points where a crash can leave a mark
(every SQL statement, every commit, every fsync, before and after every os.replace, halfway
through writing a checkpoint) and SIGKILLs itself at the Nth, N drawn from a seeded RNG over the
points the same operation passed through when it last ran to the end. The parent then checks that
nothing acknowledged (an operation that returned) is missing, that no file is torn, and that the
catalog holds nothing the files lack; at the end a `kb sync` of the files equals a rebuild into an
empty catalog.
"""

import multiprocessing
import os
import random
import signal
import sqlite3
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import select

from kb.arxiv_api import Metadata
from kb.db import session_scope
from kb.ingest import add as ingest_add
from kb.ingest.add import add_papers
from kb.ingest.notes import import_notes
from kb.ingest.sync import sync
from kb.jobs import Timing, claim, new_job, recover_stale
from kb.models import Job, Note, Paper, utcnow
from kb.notes import parse_file
from kb.paperfile import note_files, parse_paper_yaml
from kb.runs.registry import load_registry

SEED = 14
JOBS = 60
KILLS = {"add": 50, "import": 40, "sync": 40, "checkpoint": 36, "claim": 40}


class CrashPoints:
    """In the child: count crash points, SIGKILL at the ``kill_at``-th (0: never)."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at, self.seen = kill_at, 0

    def __call__(self, *_args, **_kwargs) -> None:
        self.seen += 1
        if self.seen == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    def install(self) -> None:
        event.listen(Engine, "before_cursor_execute", self)
        event.listen(Engine, "commit", self)
        real_replace = os.replace

        def replace(src, dst):
            self()
            real_replace(src, dst)
            self()

        def fsync(_fd):
            self()          # a kill -9 keeps what reached the page cache: only power loss needs the sync

        os.replace, os.fsync = replace, fsync


def _child(settings, kill_at: int, operation, argument, results) -> None:
    ingest_add.arxiv_for = fake_arxiv
    crash = CrashPoints(kill_at)
    crash.install()
    operation(settings, argument, crash)
    results.put(crash.seen)


def fork_run(context, settings, operation, argument, kill_at: int) -> int | None:
    """Run ``operation(argument)`` in a child; its crash-point count, or None when it was killed."""
    results = context.SimpleQueue()
    child = context.Process(target=_child, args=(settings, kill_at, operation, argument, results))
    child.start()
    child.join(60)
    if child.exitcode == -signal.SIGKILL:
        return None
    assert child.exitcode == 0, f"{operation.__name__}({argument}) failed with exit code {child.exitcode}"
    return results.get()


# -- the operations, run in the child ------------------------------------------------------------


def add_one(settings, key: str, _crash) -> None:
    add_papers(settings, [key])


def import_one(settings, source: Path, _crash) -> None:
    report = import_notes(settings, [source], offline=True)
    assert len(report.imported) == 1, report


def sync_all(settings, _argument, _crash) -> None:
    sync(settings)


def checkpoint_step(settings, step: int, crash) -> None:
    import io

    import torch

    from kb.runs.context import Run

    real_save = torch.save

    def save_in_two_halves(obj, path):      # a kill halfway leaves half a file, as a real crash would
        buffer = io.BytesIO()
        real_save(obj, buffer)
        data = buffer.getvalue()
        with open(path, "wb") as out:
            out.write(data[: len(data) // 2])
            out.flush()
            crash()
            out.write(data[len(data) // 2:])

    torch.save = save_in_two_halves
    folder = settings.home / "runs" / "r1"
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(id="r1", dir=folder, device="cpu", data_dir=None, seed=0, config=None)
    run.checkpoint({"step": step, "weights": torch.full((2000,), float(step))})


def claim_one(settings, worker: str, _crash) -> None:
    job = claim(settings, worker=worker)
    assert job is not None and job.worker == worker


# -- the checks, in the parent ---------------------------------------------------------------------


def fake_arxiv(settings, *, offline, policy=None):
    """Metadata for any id (the arXiv client is not what is tested here)."""
    def by_ids(ids):
        return {p.key: Metadata(key=p.key, version=1, title=f"Paper {p.key}", authors=["Ada Lovelace"], abstract="x",
                                categories=["cs.LG"], primary_category="cs.LG", published=None, updated=None, doi=None,
                                journal_ref=None, comment=None) for p in ids}
    return SimpleNamespace(by_ids=by_ids, session=SimpleNamespace(used_cache=False))


_READ: dict[tuple[Path, int, int], object] = {}


def read_once(path: Path, read):
    """``read(path)``, parsed again only when the file changed (the checks run after every trial)."""
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    if key not in _READ:
        _READ[key] = read(path)
    return _READ[key]


def check_files_and_catalog(settings, acknowledged: dict[str, set]) -> int:
    """Every file readable, nothing acknowledged missing, nothing in the catalog the files lack.

    Returns how many acknowledged writes are missing (the test wants 0)."""
    keys = {}
    for folder in settings.papers.iterdir():
        if (folder / "paper.yaml").exists():
            keys[read_once(folder / "paper.yaml", lambda path: parse_paper_yaml(
                path.read_text(encoding="utf-8"), where=str(path), folder_slug=path.parent.name).key)] = folder.name
        for note in note_files(folder):
            assert read_once(note, lambda path: len(parse_file(path)[0])) == 1, note
    with session_scope(settings) as session:
        papers = {p.key: p.slug for p in session.exec(select(Paper))}
        notes = set(session.exec(select(Note.path)))
        jobs = list(session.exec(select(Job)))
    assert papers.items() <= keys.items()                       # the catalog is never ahead of the files
    assert all((settings.papers / path).is_file() for path in notes)
    assert len(jobs) == JOBS and all(job.status in ("queued", "running", "failed") for job in jobs)
    assert all(job.worker and job.claimed for job in jobs if job.status == "running")
    lost = len(acknowledged["add"] - set(papers)) + len(acknowledged["add"] - set(keys))
    lost += len(acknowledged["import"] - notes) + sum(not (settings.papers / p).is_file() for p in acknowledged["import"])
    if acknowledged["sync"]:                # the edit of the last acknowledged sync, or a later one
        with session_scope(settings) as session:
            title = session.exec(select(Paper.title).where(Paper.slug == "hand")).one()
        lost += int(title.split()[-1]) < max(acknowledged["sync"])
    running = {job.worker for job in jobs if job.status == "running"}
    lost += len(acknowledged["claim"] - running)
    last = settings.home / "runs" / "r1" / "checkpoints" / "last.pt"
    if acknowledged["checkpoint"]:
        import torch

        state = torch.load(last, weights_only=False)           # never a torn file
        assert state["weights"].eq(float(state["step"])).all()
        lost += state["step"] < max(acknowledged["checkpoint"])
    return lost


def prepare(name: str, trial: int, settings, sources: Path):
    """(operation, its argument, what must be in the files and catalog once it returned)."""
    if name == "add":
        key = f"2402.{trial:05d}"
        return add_one, key, key
    if name == "import":
        source = sources / f"note-{trial}.md"
        source.write_text(f'---\npaper: "2401.00001"\nlang: ja\n---\n## 概要\n{trial}\n', encoding="utf-8")
        return import_one, source, f"trivial/notes/note-{trial}.ja.md"
    if name == "sync":                      # a hand edit of paper.yaml for this sync to load
        (settings.papers / "hand").mkdir(exist_ok=True)
        (settings.papers / "hand" / "paper.yaml").write_text(f'id: "2403.00001"\ntitle: "Hand {trial}"\n',
                                                             encoding="utf-8")
        return sync_all, None, trial
    if name == "checkpoint":
        return checkpoint_step, trial, trial
    return claim_one, f"worker-{trial}", f"worker-{trial}"


def test_kill_9_at_random_points_loses_nothing_acknowledged(lab, monkeypatch, tmp_path, capsys):
    import torch  # noqa: F401  (imported once here, so the children fork with it loaded)

    settings = lab.settings
    children = multiprocessing.get_context("fork")
    spec = load_registry(settings.runner_paths).get("trivial")
    with session_scope(settings) as session:
        session.add_all([new_job(spec, preset="smoke") for _ in range(JOBS)])
    rng = random.Random(SEED)
    started = time.monotonic()
    acknowledged = {name: set() for name in KILLS}
    counts = {name: None for name in KILLS}
    kills = {name: 0 for name in KILLS}
    lost = completed = 0
    sources = tmp_path / "sources"
    sources.mkdir()
    trial = 0
    while any(kills[name] < KILLS[name] for name in KILLS):
        trial += 1
        assert trial < 600, kills
        name = rng.choice([n for n in KILLS if kills[n] < KILLS[n]])
        operation, argument, receipt = prepare(name, trial, settings, sources)
        # The first run of each operation measures its crash points; one run in five goes to the end.
        kill_at = rng.randint(1, counts[name]) if counts[name] and rng.random() > 0.2 else 0
        seen = fork_run(children, settings, operation, argument, kill_at)
        if seen is None:
            kills[name] += 1
        else:
            counts[name] = seen
            acknowledged[name].add(receipt)
            completed += 1
        lost += check_files_and_catalog(settings, acknowledged)
        if name == "claim" and seen is None:
            # The killed claim's job (if its claim committed) is stale: recovery puts it back.
            recover_stale(settings, timing=Timing(backoff_s=0), now=utcnow() + timedelta(hours=1))
            acknowledged["claim"].clear()

    with sqlite3.connect(settings.database_url.split("///", 1)[1]) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    report = sync(settings)                  # what the next kb sync makes of what the kills left
    assert report.problems == []
    assert not list(settings.papers.rglob("*.tmp"))             # it swept what killed writes left
    with session_scope(settings) as session:
        after = sorted((p.key, p.slug, tuple(p.tags)) for p in session.exec(select(Paper)))
        notes_after = sorted(session.exec(select(Note.path)))
    monkeypatch.setenv("KB_HOME", str(tmp_path / "rebuilt"))
    rebuilt_settings = lab.settings
    sync(rebuilt_settings)
    with session_scope(rebuilt_settings) as session:
        assert sorted((p.key, p.slug, tuple(p.tags)) for p in session.exec(select(Paper))) == after
        assert sorted(session.exec(select(Note.path))) == notes_after
    total = sum(kills.values())
    seconds = time.monotonic() - started
    with capsys.disabled():
        print(f"\nfault injection (seed {SEED}): {total} kills {kills}, {completed} runs to the end (acknowledged, each "
              f"checked after every later trial) in {seconds:.0f} s, {lost} acknowledged writes lost")
    assert total >= 200 and lost == 0
