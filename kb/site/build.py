"""``kb site build`` and ``kb site serve``: catalog -> Markdown pages + figures -> MkDocs -> site.

The generated pages go to ``<KB_HOME>/site-src/`` (never committed); MkDocs renders them with the
project's ``mkdocs.yml`` into the output folder; the search index kb's worker reads is written
last (a rebuild updates the last build's index, kept in ``site-src/.kb-index``, writing only its
parts that changed). Drawn figures stay in ``site-src/figures/`` under names that carry a digest of their data,
so a rebuild draws only the figures of new runs.

Incremental: a page's Markdown is rewritten only when it changed, and a rebuild into the same
folder with the same theme, assets and ``mkdocs.yml`` (``_stamp``) asks MkDocs to render only the
pages whose Markdown is newer than their HTML (its ``dirty`` build); the navigation, the only thing
an unchanged page would take from the others, lists the five fixed sections. Anything else gets a
full build. Many pages to render are split over the cores: each process renders its share of
them (``_render_share``), since Python-Markdown, most of the time, holds the GIL.
"""

import hashlib
import json
import logging
import shutil
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from kb import cache
from kb.db import session_scope
from kb.errors import BadInput, KBError
from kb.settings import Settings
from kb.glossary import concepts
from kb.site import figures
from kb.site.feed_pages import add_feed_pages
from kb.site.pages import generate
from kb.site.search_index import (FOLDER, INDEX, IndexState, Tokens, documents, index_state, packed, tokens_version,
                                  updated_index)
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
    rendered: int = 0                                   # pages MkDocs rendered (all of them in a full build)
    full: bool = True                                   # a full build, not an incremental one
    phases: dict[str, float] = field(default_factory=dict)   # seconds per step, for the benchmark


def source_dir(settings: Settings) -> Path:
    return settings.home / "site-src"


def default_out(settings: Settings) -> Path:
    return settings.project / "site"


# A folder holding one of these is a kb site (the second: the index of kb before it was cut into parts).
_SITE_MARKERS = (INDEX, "search/kb_index.json.gz")
_STAMP = ".kb-build.json"          # in site-src: what the last build rendered, and into which folder
_INDEX_STATE = ".kb-index"          # in site-src: the last build's search index (``IndexState``), for the next one
_TOKENS = ".kb-tokens.marshal"     # in site-src: each search document's tokens (``index_parts``' cache)
_DIRTY_NOTICE = "A 'dirty' build"  # MkDocs' warning for the incremental build kb chose on purpose
PARALLEL_PAGES = 200               # fewer pages to render than this: one process (starting more costs ~1 s)


def _check_out(out: Path, settings: Settings) -> None:
    """MkDocs empties the output folder first: refuse one that holds anything but a kb site."""
    out = out.resolve()
    for precious in (settings.project, settings.papers, settings.home):
        if out == precious.resolve() or precious.resolve().is_relative_to(out):
            raise BadInput(f"--out {out} would overwrite {precious}; choose a folder of its own (default: site/)")
    if out.is_file():
        raise BadInput(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not any((out / marker).is_file() for marker in _SITE_MARKERS):
        raise BadInput(f"--out {out} is not empty and holds no kb site; building would delete its contents; choose an empty folder")


def _write_changed(target: Path, content: bytes) -> bool:
    """Write ``content`` unless ``target`` holds it already (its time then stays: MkDocs' dirty build
    and browsers' caches go by it); returns whether it wrote."""
    try:
        if target.stat().st_size == len(content) and target.read_bytes() == content:
            return False
    except FileNotFoundError:
        target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return True


def _sync_pages(pages: dict[str, str], docs: Path) -> tuple[int, list[str]]:
    """Make ``docs`` hold exactly ``pages`` as .md files, rewriting only what changed; returns how many
    were written and the removed pages."""
    removed = []
    for stale in docs.rglob("*.md"):
        if stale.relative_to(docs).as_posix() not in pages:
            stale.unlink()
            removed.append(stale.relative_to(docs).as_posix())
    written = sum(_write_changed(docs / relative, markdown.encode()) for relative, markdown in pages.items())
    return written, removed


def _sync_tree(source: Path, target: Path) -> None:
    """Copy the files of ``source`` into ``target`` where they differ."""
    for path in source.rglob("*"):
        if path.is_file():
            _write_changed(target / path.relative_to(source), path.read_bytes())


def _sync_figures(plan: figures.FigurePlan, docs: Path) -> tuple[int, list[str]]:
    """Draw the planned figures not drawn yet and remove the others; returns how many were drawn and
    the removed ones (paths relative to ``docs``)."""
    removed = []
    for stale in [*(docs / "figures").rglob("*.svg"), *(docs / "figures").rglob("*.png")]:
        if stale.relative_to(docs).as_posix() not in plan.specs:
            stale.unlink()
            removed.append(stale.relative_to(docs).as_posix())
    return figures.render(plan.specs, docs), removed


def _stamp(settings: Settings, out: Path) -> str:
    """What every page's HTML depends on besides its own Markdown: mkdocs.yml, the theme overrides, kb's
    assets, the installed MkDocs and Material, and the output folder."""
    from importlib.metadata import version

    digest = hashlib.sha1(str(out).encode())
    for name in ("mkdocs", "mkdocs-material"):
        digest.update(version(name).encode())
    files = [settings.project / "mkdocs.yml", *sorted((settings.project / "docs" / "overrides").rglob("*")),
             *sorted((settings.project / "docs" / "assets").rglob("*"))]
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(settings.project).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def _remove_output(out: Path, pages: list[str], static: list[str]) -> None:
    """Remove from ``out`` what removed pages and files rendered (a dirty build never deletes)."""
    from kb.site.search_index import url_of

    for page in pages:
        html = out / url_of(page) / "index.html"
        html.unlink(missing_ok=True)
        if html.parent != out and html.parent.is_dir() and not any(html.parent.iterdir()):
            html.parent.rmdir()
    for path in static:
        (out / path).unlink(missing_ok=True)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _mkdocs(config_file: Path, docs: Path, out: Path, *, dirty: bool, share: tuple[int, int] = (0, 1)) -> list[str]:
    """Run MkDocs on ``docs`` into ``out``; returns its warnings (it logs, kb's library never prints).

    Args:
        dirty: render only the pages whose Markdown is newer than their HTML, and keep ``out``.
        share: ``(k, n)``: render only the k-th of n shares of those pages and files (``_render_share``).
    """
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import MkDocsException
    from mkdocs.structure.files import File

    logger = logging.getLogger("mkdocs")
    collect, propagate = _Collect(), logger.propagate
    logger.addHandler(collect)
    logger.propagate = False
    modified = File.is_modified
    if share[1] > 1:
        # MkDocs asks each file whether it changed; this process answers yes only for its share.
        File.is_modified = lambda file: (zlib.crc32(file.src_uri.encode()) % share[1] == share[0]) and modified(file)
    try:
        # Directory URLs: the search index's page locations assume them. The config file's path is
        # given too, or MkDocs compares it with sys.stdin.buffer, which a replaced stdin lacks.
        config = load_config(str(config_file), config_file_path=str(config_file), docs_dir=str(docs),
                             site_dir=str(out), use_directory_urls=True)
        build(config, dirty=dirty)
    except MkDocsException as exc:
        raise KBError(f"MkDocs could not build the site: {exc}") from None
    finally:
        File.is_modified = modified
        logger.removeHandler(collect)
        logger.propagate = propagate
    return [message for message in collect.messages if not message.startswith(_DIRTY_NOTICE)]


def _render_share(config_file: Path, docs: Path, out: Path, share: tuple[int, int]) -> list[str]:
    return _mkdocs(config_file, docs, out, dirty=True, share=share)


def _render(config_file: Path, docs: Path, out: Path, *, full: bool, pages: int,
            meanwhile: Callable[[], Any]) -> tuple[list[str], Any]:
    """Render ``pages`` changed pages (all of them when ``full``) with MkDocs, over several processes
    when there are many; returns MkDocs' warnings and, with several processes, what ``meanwhile()``
    returns, which this process computes while they render (None when it renders alone)."""
    from kb import parallel

    workers = min(parallel.cores(), max(1, pages // PARALLEL_PAGES))
    if workers == 1:
        return _mkdocs(config_file, docs, out, dirty=not full), None
    if full and out.is_dir():
        shutil.rmtree(out)              # what MkDocs' full build does first; the shares then all write
    out.mkdir(parents=True, exist_ok=True)
    with parallel.pool(workers) as workers_pool:
        shares = workers_pool.map(_render_share, *zip(*[(config_file, docs, out, (k, workers)) for k in range(workers)]))
        result = meanwhile()            # the shares started with map: this process would only wait for them
        return sorted({message for found in shares for message in found}), result


@dataclass
class _Index:
    """The search index a build writes, the last build's it was updated from (None: built whole), and the
    documents' tokens (``search_index.Tokens``) to keep for the next build."""

    index: IndexState
    before: IndexState | None
    tokens: Tokens


def _search_index(found: list[dict[str, str]], glossary: tuple[tuple[str, ...], ...], docs: Path, *,
                  incremental: bool) -> _Index:
    """The search index of the documents ``found``: when ``incremental`` (the output folder holds the last
    build's site), updated from the last build's ``IndexState`` in ``docs``, else built whole."""
    version = tokens_version()
    before = IndexState.load(cache.read(docs / _INDEX_STATE, version)) if incremental else None
    # Tokens of another tokenizer or kb (``tokens_version``), or an unreadable file: tokenize again.
    tokens = cache.read(docs / _TOKENS, version) or {}
    index = updated_index(before, found, glossary, cache=tokens) if before is not None else None
    if index is None:
        before, index = None, index_state(found, glossary, cache=tokens)
    return _Index(index, before, tokens)


def _write_index(built: _Index, docs: Path, out: Path) -> None:
    """Write the index's files into ``out`` (an update: only those that changed) and keep it and the tokens
    in ``docs`` for the next build."""
    index, before, version = built.index, built.before, tokens_version()
    if before is None or index.keys != before.keys:
        cache.write(docs / _TOKENS, version, packed(built.tokens))
    for relative, content in index.files.items():
        # Material's search plugin writes its own stubs (STUB) on every build: kb's are put back; a part
        # gone from ``out`` since (deleted by hand) is written again.
        if (before is None or before.files.get(relative) != content or not relative.startswith(FOLDER)
                or not (out / relative).is_file()):
            _write_changed(out / relative, content)
    for stale in (out / FOLDER).glob("*.js"):
        if stale.relative_to(out).as_posix() not in index.files:
            stale.unlink()
    (out / _SITE_MARKERS[1]).unlink(missing_ok=True)
    cache.write(docs / _INDEX_STATE, version, index.dump())


_PHASES = 5                 # build_site's laps: catalog, pages, figures, mkdocs, search index


def build_site(settings: Settings, out: Path | None = None, *,
               progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Build the whole site from the catalog into ``out`` (default ``<project>/site``).

    ``progress(done, total)`` is called after each of its phases (the CLI's progress bar).
    """
    start = time.perf_counter()
    config_file = settings.project / "mkdocs.yml"
    if not config_file.is_file():
        raise KBError(f"no mkdocs.yml in {settings.project}; run kb site build inside the kb project")
    out = (out or default_out(settings)).expanduser().resolve()
    _check_out(out, settings)
    phases: dict[str, float] = {}

    def lap(name: str) -> None:
        phases[name] = time.perf_counter() - start - sum(phases.values())
        if progress is not None:
            progress(len(phases), _PHASES)

    with session_scope(settings) as session:
        snapshot = load_snapshot(settings, session=session)
        lap("catalog")
        pages = generate(snapshot)
        add_feed_pages(pages, session=session)
    lap("pages")
    docs = source_dir(settings)
    docs.mkdir(parents=True, exist_ok=True)
    stamp_file = docs / _STAMP
    stamp = _stamp(settings, out)
    try:
        full = json.loads(stamp_file.read_text(encoding="utf-8")) != stamp or not (out / "index.html").is_file()
    except (FileNotFoundError, ValueError):
        full = True
    stamp_file.unlink(missing_ok=True)      # until this build is done: one that stops half-way leaves a full build next
    written, removed = _sync_pages(pages, docs)
    _sync_tree(settings.project / "docs" / "assets", docs / "assets")
    plan = figures.plan(snapshot)
    drawn, stale_figures = _sync_figures(plan, docs)
    lap("figures")
    if not full:
        _remove_output(out, removed, stale_figures)
    incremental = not full and (out / INDEX).is_file()

    def search_index() -> _Index:
        return _search_index(documents(snapshot), concepts(settings.papers), docs, incremental=incremental)

    # Over several render processes, this one computes the search index while they work (~2 s of a full
    # build at 1,000 papers): the "mkdocs" lap then holds both, and "search index" the writing only.
    warnings, index = _render(config_file, docs, out, full=full, pages=len(pages) if full else written,
                              meanwhile=search_index)
    lap("mkdocs")
    _write_index(index or search_index(), docs, out)
    stamp_file.write_text(json.dumps(stamp), encoding="utf-8")
    lap("search index")
    return BuildReport(out=out, pages=len(pages), figures=len(plan.specs), figures_drawn=drawn,
                       seconds=time.perf_counter() - start, warnings=warnings,
                       runner_problems=list(snapshot.runner_problems), rendered=len(pages) if full else written,
                       full=full, phases=phases)


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
