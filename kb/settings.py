"""Settings read from the environment: the one place that knows every ``KB_*`` variable.

``VARIABLES`` names each one with its meaning; ``load_settings`` reads them once per command and
everything else asks the ``Settings`` it is given (``settings.get("KB_JOB_STALE")``), so a
variable is read in one place and ``kb schedule install`` can pass every one a worker needs.
"""

import os
from dataclasses import dataclass, field
from pathlib import Path

ARXIV_API_DEFAULT = "https://export.arxiv.org/api/query"

# name -> (meaning, passed on to scheduled ticks and workers by ``kb schedule install``)
VARIABLES: dict[str, tuple[str, bool]] = {
    "KB_PAPERS": ("the git-tracked papers/ folder (default: papers/ of the project kb runs in)", True),
    "KB_HOME": ("machine-local state: catalog, caches, run folders (default: <project>/.kb)", True),
    "KB_DATABASE_URL": ("any SQLAlchemy URL (default: sqlite:///<KB_HOME>/catalog.db)", True),
    "KB_ARXIV_API": ("the arXiv query endpoint (a lab's mirror or proxy)", True),
    "KB_ARXIV_DELAY": ("seconds between arXiv requests, machine-wide (default 3, arXiv's rule)", True),
    "KB_ARXIV_RSS": ("arXiv's RSS announcement feeds, one per category under it (default https://rss.arxiv.org/rss/)", True),
    "KB_FEED_CATEGORIES": ("categories `kb feed` and `kb triage` read when none are given, space- or comma-separated (default cs.CV)", True),
    "KB_RUNNERS": ("extra folders holding runner packages, ':'-separated", True),
    "KB_DATA": ("where datasets live when --data is not given", True),
    "KB_EXECUTOR": ("where workers run jobs: local or slurm (default local)", True),
    "KB_SLURM_PARTITION": ("SLURM partition for the slurm executor", True),
    "KB_SLURM_ACCOUNT": ("SLURM account for the slurm executor", True),
    "KB_SLURM_CLUSTER": ("submitit's cluster: slurm, or local/debug to try the path without one", True),
    "KB_JOB_HEARTBEAT": ("seconds between a running job's heartbeats (default 10)", True),
    "KB_JOB_STALE": ("seconds without a heartbeat after which a job is lost (default 90)", True),
    "KB_JOB_BACKOFF": ("seconds a lost job waits before its retry, doubled each time (default 30)", True),
    "KB_JOB_GRACE": ("seconds a stopping run may take to checkpoint before it is killed (default 120)", True),
    "KB_ON_REGRESSION": ("a shell command given each regression as JSON on stdin", True),
    "KB_REGRESSION_THROUGHPUT_DROP": ("share of throughput a run may lose before it is a regression (0.3)", True),
    # Set by whoever copies a tree without .git to another machine; never the same for two runs.
    "KB_GIT_COMMIT": ("the commit a copied tree without .git was taken from", False),
    "KB_GIT_DIRTY": ("1 when that copied tree had uncommitted changes", False),
}


def find_project_root(start: Path | None = None) -> Path:
    """The nearest folder above ``start`` holding ``papers/`` or ``pyproject.toml`` of kb."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "papers").is_dir() or (folder / "mkdocs.yml").is_file():
            return folder
    # Fall back to the checkout kb itself was installed from (an editable install).
    return Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    project: Path
    papers: Path
    home: Path
    database_url: str
    arxiv_api: str
    arxiv_delay: float
    runner_paths: tuple[Path, ...]
    data: Path | None
    environment: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    def get(self, name: str) -> str | None:
        """The value of one ``KB_*`` variable as this command saw it (None when unset or empty)."""
        if name not in VARIABLES:
            raise KeyError(f"{name} is not a kb setting; add it to kb.settings.VARIABLES")
        return self.environment.get(name) or None

    def number(self, name: str, default: float) -> float:
        return _number(self.environment, name, default)

    def passed_on(self) -> dict[str, str]:
        """Every setting a scheduled tick or worker must see, as this command resolved it."""
        values = {name: value for name, value in self.environment.items() if VARIABLES[name][1]}
        values.update(KB_HOME=str(self.home), KB_PAPERS=str(self.papers))
        return {name: values[name] for name in VARIABLES if values.get(name)}


def read_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The ``KB_*`` variables kb knows, from ``env`` or the process environment."""
    source = os.environ if env is None else env
    return {name: source[name] for name in VARIABLES if source.get(name)}


def load_settings(env: dict[str, str] | None = None) -> Settings:
    values = read_environment(env)
    project = find_project_root()
    papers = Path(values.get("KB_PAPERS") or project / "papers").expanduser().resolve()
    home = Path(values.get("KB_HOME") or project / ".kb").expanduser().resolve()
    url = values.get("KB_DATABASE_URL") or f"sqlite:///{home / 'catalog.db'}"
    runner_paths = tuple(Path(p).expanduser().resolve() for p in values.get("KB_RUNNERS", "").split(":") if p)
    data = Path(values["KB_DATA"]).expanduser() if values.get("KB_DATA") else None
    return Settings(
        project=project,
        papers=papers,
        home=home,
        database_url=url,
        arxiv_api=values.get("KB_ARXIV_API") or ARXIV_API_DEFAULT,
        arxiv_delay=_number(values, "KB_ARXIV_DELAY", 3.0),
        runner_paths=runner_paths,
        data=data,
        environment=values,
    )


def _number(env: dict[str, str], key: str, default: float) -> float:
    from kb.errors import BadInput

    raw = env.get(key)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise BadInput(f"{key}={raw!r} is not a number") from None
