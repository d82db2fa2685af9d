"""All catalog tables (SQLModel). One module, as the house style asks.

JSON columns hold small ordered lists (authors, tags) and records that are read whole (claims,
configs, environments). Anything filtered or joined on is a real column.
"""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, TypeDecorator, UniqueConstraint
from sqlmodel import Field, SQLModel

from kb.schema import SCHEMA_VERSION  # noqa: F401 - kb.db and the tests read it here


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """A moment in time stored as naive UTC and read back as aware UTC.

    Every stored time uses it (one convention): schedules and jobs are compared with "now" inside
    SQL (due, stale, backoff), and papers, notes and runs are sorted and shown by time, so every
    value must mean the same instant on SQLite (no time zones) and PostgreSQL (``timestamp``),
    whatever the server's time zone is, and read back aware.
    """

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=UTC) if value is not None else None


class Meta(SQLModel, table=True):
    """Key/value facts about the catalog itself (``schema_version``)."""

    __tablename__ = "kb_meta"
    key: str = Field(primary_key=True)
    value: str


class Paper(SQLModel, table=True):
    __tablename__ = "paper"
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True, unique=True)          # 1506.02640, hep-th/9901001, doi:10.1038/...
    version: int | None = None                          # latest arXiv version seen
    slug: str = Field(index=True, unique=True)
    title: str
    other_titles: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    abstract: str = Field(default="", sa_column=Column(Text))
    summary: str = Field(default="", sa_column=Column(Text))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    primary_category: str | None = None
    published: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    updated: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    year: int | None = Field(default=None, index=True)
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None
    venue: str | None = None
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    runners: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    claims: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    code: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))   # paper.yaml's code: entries
    star: int = Field(default=0, index=True)           # the most ★ any of its notes gives it (0: none)
    added: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Note(SQLModel, table=True):
    __tablename__ = "note"
    __table_args__ = (UniqueConstraint("paper_id", "path"),)
    id: int | None = Field(default=None, primary_key=True)
    paper_id: int = Field(foreign_key="paper.id", index=True, ondelete="CASCADE")
    lang: str = Field(index=True)
    title: str | None = None
    body: str = Field(sa_column=Column(Text))
    source: str | None = None            # where the note came from (URL or imported file)
    path: str                            # the file under papers/, relative to it
    content_hash: str
    posted: str | None = None            # the post's date as the note gives it ('2019-02-27', '2017-06')
    important: bool = False              # a ★ on the note's title
    star: int = 0                        # how many ★ (importance) the writer gave the paper
    mentions: list[str] = Field(default_factory=list, sa_column=Column(JSON))   # keys of other papers it names
    created: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    updated: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class SearchDoc(SQLModel, table=True):
    """Pre-tokenized text of one paper (see kb/search.py): the index on databases other than SQLite."""

    __tablename__ = "search_doc"
    paper_id: int = Field(primary_key=True, foreign_key="paper.id", ondelete="CASCADE")
    title: str = Field(sa_column=Column(Text))
    authors: str = Field(sa_column=Column(Text))
    abstract: str = Field(sa_column=Column(Text))
    notes: str = Field(sa_column=Column(Text))


class SourceFile(SQLModel, table=True):
    """A file under ``papers/`` as ``kb sync`` last loaded it: a folder whose files all still match is skipped.

    ``mtime_ns`` is 0 for a file written too shortly before it was read for its time stamp to tell a
    later edit apart (kb/ingest/sync.py): the next sync compares its ``digest`` instead.
    """

    __tablename__ = "source_file"
    path: str = Field(primary_key=True)                 # under papers/: yolo/paper.yaml, yolo/notes/x.ja.md
    paper_id: int = Field(foreign_key="paper.id", index=True, ondelete="CASCADE")
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    mtime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    ctime_ns: int = Field(sa_column=Column(BigInteger, nullable=False))
    inode: int = Field(sa_column=Column(BigInteger, nullable=False))
    digest: str                                         # blake2b of the bytes


class RunRecord(SQLModel, table=True):
    """One execution of a runner (kb/runs/execute.py)."""

    __tablename__ = "run"
    id: str = Field(primary_key=True)                  # also the run folder's name
    runner: str = Field(index=True)
    paper_key: str = Field(index=True)
    preset: str
    kind: str = "train"                               # train | architecture (--architecture-only: no data)
    config: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    overrides: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))   # --set fields: value
    status: str = Field(index=True)                   # queued running succeeded failed interrupted
    created: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    started: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    ended: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    git_commit: str | None = None
    git_dirty: bool | None = None
    env: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    device: str | None = None
    host: str | None = None
    seed: int = 0
    dataset: str | None = None
    dataset_fingerprint: str | None = None
    dataset_synthetic: bool = False
    final: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON))
    epochs: list[dict[str, float]] = Field(default_factory=list, sa_column=Column(JSON))
    info: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    verdicts: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    throughput: float | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    run_dir: str
    resumed: int = 0                                  # how many times the run was resumed
    job_id: int | None = Field(default=None, index=True)


class Metric(SQLModel, table=True):
    """Per-step and per-epoch metrics of a run (also in the run folder's metrics.csv)."""

    __tablename__ = "metric"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, ondelete="CASCADE")
    kind: str                                          # step | epoch
    step: int
    epoch: int | None = None
    name: str
    value: float



class Schedule(SQLModel, table=True):
    """A cron expression that enqueues a job of one runner and preset (kb/schedules.py)."""

    __tablename__ = "schedule"
    id: int | None = Field(default=None, primary_key=True)
    runner: str = Field(index=True)
    preset: str
    overrides: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    cron: str
    tz: str = "UTC"
    executor: str | None = None                        # None: the worker's executor
    time_limit_s: int | None = None                    # None: the runner's resources.time_min
    paused: bool = False
    next_due: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    last_due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    created: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class Job(SQLModel, table=True):
    """One queued execution of a runner, claimed and run by a worker (kb/jobs.py).

    ``status``: queued, submitted (waiting in SLURM), running, succeeded, failed, cancelled.
    ``(schedule_id, due)`` is unique, so concurrent ticks cannot enqueue one due time twice.
    """

    __tablename__ = "job"
    __table_args__ = (UniqueConstraint("schedule_id", "due"),)
    id: int | None = Field(default=None, primary_key=True)
    runner: str = Field(index=True)
    preset: str
    overrides: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    seed: int = 0
    device: str = "auto"
    data: str | None = None
    resume: str | None = None                          # a run to continue instead of starting anew
    schedule_id: int | None = Field(default=None, index=True)
    due: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    missed: int = 0                                    # earlier due times collapsed into this job
    status: str = Field(default="queued", index=True)
    executor: str | None = None
    time_limit_s: int
    attempts: int = 0                                  # claims so far; the current one is the token
    lost: int = 0                                      # claims whose worker died without a result
    max_lost: int = 3
    not_before: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    created: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    claimed: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    heartbeat: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    ended: datetime | None = Field(default=None, sa_column=Column(UTCDateTime))
    worker: str | None = None
    stop: str | None = None                            # why the running job was asked to stop
    run_id: str | None = None
    external_id: str | None = None                     # the SLURM job id
    error: str | None = Field(default=None, sa_column=Column(Text))
    info: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class Regression(SQLModel, table=True):
    """A scheduled run that did worse than the last good run of its runner and preset (kb/runs/regression.py)."""

    __tablename__ = "regression"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="run.id", index=True, unique=True, ondelete="CASCADE")
    baseline_id: str | None = None                     # the last good run compared with
    runner: str = Field(index=True)
    preset: str
    job_id: int | None = None
    findings: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON))
    differences: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    created: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    notified: bool = False
    notify_error: str | None = Field(default=None, sa_column=Column(Text))


class FeedItem(SQLModel, table=True):
    """One paper as an arXiv announcement feed listed it (kb/feed); the latest listing wins."""

    __tablename__ = "feed_item"
    key: str = Field(primary_key=True)
    version: int | None = None
    title: str
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    abstract: str = Field(default="", sa_column=Column(Text))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    announce_type: str = "new"                         # new | cross | replace | replace-cross
    announced: str = Field(index=True)                 # the announcement day, YYYY-MM-DD
    first_seen: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class FeedDecision(SQLModel, table=True):
    """What the user decided about a feed item; replayed from KB_HOME/feed/decisions.jsonl by ``kb sync``."""

    __tablename__ = "feed_decision"
    key: str = Field(primary_key=True)
    action: str                                        # added | starred | skipped | later
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    decided: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class ReadingDay(SQLModel, table=True):
    """Daily counts of the reading log: feed items seen, added and starred that day (UTC)."""

    __tablename__ = "reading_day"
    day: str = Field(primary_key=True)                 # YYYY-MM-DD
    seen: int = 0
    added: int = 0
    starred: int = 0


class NotesVersion(SQLModel, table=True):
    """The arXiv version a paper's notes and claims were written for, when ``kb refresh`` saw arXiv move past it.

    Kept in KB_HOME/feed/versions.json (``kb refresh --ack`` moves it to the current version).
    """

    __tablename__ = "notes_version"
    key: str = Field(primary_key=True)
    written_for: int
