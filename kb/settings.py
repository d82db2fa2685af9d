"""Settings read from the environment, resolved once per command.

``KB_PAPERS``        the git-tracked ``papers/`` folder (default: ``papers/`` of the project kb runs in)
``KB_HOME``          machine-local state: catalog, arXiv cache, run folders (default: ``<project>/.kb``)
``KB_DATABASE_URL``  any SQLAlchemy URL (default: ``sqlite:///<KB_HOME>/catalog.db``)
``KB_ARXIV_API``     the arXiv query endpoint (a lab's mirror or proxy; tests point it at localhost)
``KB_ARXIV_DELAY``   seconds between arXiv requests, machine-wide (default 3, arXiv's rule)
``KB_RUNNERS``       extra folders holding runner packages, ``:``-separated (tests use it)
``KB_DATA``          where datasets live when ``--data`` is not given
"""

import os
from dataclasses import dataclass
from pathlib import Path

ARXIV_API_DEFAULT = "https://export.arxiv.org/api/query"


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

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    project = find_project_root()
    papers = Path(env.get("KB_PAPERS") or project / "papers").expanduser().resolve()
    home = Path(env.get("KB_HOME") or project / ".kb").expanduser().resolve()
    url = env.get("KB_DATABASE_URL") or f"sqlite:///{home / 'catalog.db'}"
    runner_paths = tuple(Path(p).expanduser().resolve() for p in env.get("KB_RUNNERS", "").split(":") if p)
    data = Path(env["KB_DATA"]).expanduser() if env.get("KB_DATA") else None
    return Settings(
        project=project,
        papers=papers,
        home=home,
        database_url=url,
        arxiv_api=env.get("KB_ARXIV_API") or ARXIV_API_DEFAULT,
        arxiv_delay=_number(env, "KB_ARXIV_DELAY", 3.0),
        runner_paths=runner_paths,
        data=data,
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
