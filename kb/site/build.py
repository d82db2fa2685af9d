"""``kb site build`` and ``kb site serve``: catalog -> Markdown pages + figures -> MkDocs -> site.

The generated pages go to ``<KB_HOME>/site-src/`` (never committed); MkDocs renders them with the
project's ``mkdocs.yml`` into the output folder; the search index kb's worker reads is written
last. Drawn figures stay in ``site-src/figures/`` under names that carry a digest of their data,
so a rebuild draws only the figures of new runs.
"""

import logging
import shutil
import time
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from kb.db import session_scope
from kb.errors import BadInput, KBError
from kb.settings import Settings
from kb.site import figures
from kb.site.feed_pages import add_feed_pages
from kb.site.pages import generate
from kb.site.search_index import INDEX, index_files
from kb.site.snapshot import load_snapshot


@dataclass
class BuildReport:
    out: Path
    pages: int
    figures: int
    figures_drawn: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    runner_problems: list[str] = field(default_factory=list)


def source_dir(settings: Settings) -> Path:
    return settings.home / "site-src"


def default_out(settings: Settings) -> Path:
    return settings.project / "site"


def _check_out(out: Path, settings: Settings) -> None:
    """MkDocs empties the output folder first: refuse one that holds anything but a kb site."""
    out = out.resolve()
    for precious in (settings.project, settings.papers, settings.home):
        if out == precious.resolve() or precious.resolve().is_relative_to(out):
            raise BadInput(f"--out {out} would overwrite {precious}; choose a folder of its own (default: site/)")
    if out.is_file():
        raise BadInput(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / INDEX).is_file():
        raise BadInput(f"--out {out} is not empty and holds no kb site; building would delete its contents; choose an empty folder")


def _sync_pages(pages: dict[str, str], docs: Path) -> None:
    """Make ``docs`` hold exactly ``pages`` as .md files, rewriting only what changed."""
    for stale in docs.rglob("*.md"):
        if stale.relative_to(docs).as_posix() not in pages:
            stale.unlink()
    for relative, markdown in pages.items():
        target = docs / relative
        if target.is_file() and target.read_text(encoding="utf-8") == markdown:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(markdown, encoding="utf-8")


def _sync_figures(plan: figures.FigurePlan, docs: Path) -> int:
    for stale in (docs / "figures").rglob("*.svg"):
        if stale.relative_to(docs).as_posix() not in plan.specs:
            stale.unlink()
    return figures.render(plan.specs, docs)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _mkdocs(config_file: Path, docs: Path, out: Path) -> list[str]:
    """Run MkDocs on ``docs`` into ``out``; returns its warnings (it logs, kb's library never prints)."""
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException

    logger = logging.getLogger("mkdocs")
    collect, propagate = _Collect(), logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    try:
        # Directory URLs: the search index's page locations assume them. The config file's path is
        # given too, or MkDocs compares it with sys.stdin.buffer, which a replaced stdin lacks.
        config = load_config(str(config_file), config_file_path=str(config_file), docs_dir=str(docs),
                             site_dir=str(out), use_directory_urls=True)
        build(config)
    except MkDocsException as exc:
        raise KBError(f"MkDocs could not build the site: {exc}") from None
    finally:
        logger.removeHandler(collect)
        logger.propagate = propagate
    return collect.messages


def build_site(settings: Settings, out: Path | None = None) -> BuildReport:
    """Build the whole site from the catalog into ``out`` (default ``<project>/site``)."""
    start = time.perf_counter()
    config_file = settings.project / "mkdocs.yml"
    if not config_file.is_file():
        raise KBError(f"no mkdocs.yml in {settings.project}; run kb site build inside the kb project")
    out = (out or default_out(settings)).expanduser().resolve()
    _check_out(out, settings)
    with session_scope(settings) as session:
        snapshot = load_snapshot(settings, session=session)
        pages = generate(snapshot)
        add_feed_pages(pages, settings, session=session)
    docs = source_dir(settings)
    docs.mkdir(parents=True, exist_ok=True)
    _sync_pages(pages, docs)
    shutil.copytree(settings.project / "docs" / "assets", docs / "assets", dirs_exist_ok=True)
    plan = figures.plan(snapshot)
    drawn = _sync_figures(plan, docs)
    warnings = _mkdocs(config_file, docs, out)
    for relative, content in index_files(snapshot).items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return BuildReport(out=out, pages=len(pages), figures=len(plan.specs), figures_drawn=drawn,
                       seconds=time.perf_counter() - start, warnings=warnings,
                       runner_problems=list(snapshot.runner_problems))


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
        pass


def site_server(folder: Path, port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """An HTTP server for a built site (the caller runs ``serve_forever`` and closes it)."""
    if not (folder / "index.html").is_file():
        raise KBError(f"{folder} holds no built site; run kb site build first")

    def handler(*args, **kwargs):
        return _QuietHandler(*args, directory=str(folder), **kwargs)

    try:
        return ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise KBError(f"cannot serve on {host}:{port} ({exc.strerror or exc}); choose another --port") from None
