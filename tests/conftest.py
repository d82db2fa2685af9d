"""Shared fixtures: no network beyond localhost, a throwaway kb home, a local arXiv, the CLI."""

import ast
import io
import socket
import subprocess
import sys
import threading
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures import arxiv_feed

# Fixtures of the job queue tests (lab catalogs, a PostgreSQL server), shared by several modules.
pytest_plugins = ["tests.jobs_fixtures"]

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
_LOCAL = {"127.0.0.1", "::1", "localhost", "0.0.0.0"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any connection to a host other than this machine fails the test."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in _LOCAL:
            raise AssertionError(f"test tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, a: guarded(self, a) or 0)


@pytest.fixture
def kb_env(request, tmp_path, monkeypatch):
    """A fresh KB_HOME and KB_PAPERS; arXiv is the local stand-in when a test asks for it,
    otherwise a closed local port (an offline machine)."""
    from kb.db import _ready_engine

    home, papers = tmp_path / "home", tmp_path / "papers"
    papers.mkdir()
    monkeypatch.setenv("KB_HOME", str(home))
    monkeypatch.setenv("KB_PAPERS", str(papers))
    if "arxiv_server" in request.fixturenames:
        request.getfixturevalue("arxiv_server")
    else:
        monkeypatch.setenv("KB_ARXIV_API", "http://127.0.0.1:9/api/query")
    monkeypatch.setenv("KB_ARXIV_DELAY", "0")
    for key in ("KB_DATABASE_URL", "KB_RUNNERS", "KB_DATA"):
        monkeypatch.delenv(key, raising=False)
    _ready_engine.cache_clear()
    from kb.settings import load_settings

    yield load_settings()
    _ready_engine.cache_clear()


class RecordedHandler(BaseHTTPRequestHandler):
    """A local stand-in's request handler: it keeps the paths asked for and answers with a body."""

    requests: list[str] = []

    def answer(self, body: bytes, content_type: str = "application/atom+xml") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler]):
    """``handler`` served on a free localhost port for the ``with`` block; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _ArxivHandler(RecordedHandler):
    fail_next: list[int] = []
    answer_next: list[bytes] = []   # bodies served as they are, before the recorded answers

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        if type(self).fail_next:
            self.send_response(type(self).fail_next.pop(0))
            self.end_headers()
            return
        query = parse_qs(urlsplit(self.path).query)
        if type(self).answer_next:
            body = type(self).answer_next.pop(0)
        elif query.get("id_list", [""])[0]:
            from kb.ids import parse_id

            body = arxiv_feed.feed([parse_id(k).key for k in query["id_list"][0].split(",")])
        else:
            words = [w.split(":", 1)[1] for w in query.get("search_query", [""])[0].split(" AND ") if ":" in w]
            body = arxiv_feed.feed(arxiv_feed.title_search(words))
        self.answer(body)


@pytest.fixture
def arxiv_server(monkeypatch):
    """A local stand-in for the arXiv API serving recorded entries (tests/fixtures/arxiv_feed.py)."""
    _ArxivHandler.requests = []
    _ArxivHandler.fail_next = []
    _ArxivHandler.answer_next = []
    with local_server(_ArxivHandler) as base:
        monkeypatch.setenv("KB_ARXIV_API", f"{base}/api/query")
        yield _ArxivHandler


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def kb():
    """Run the kb CLI in-process: ``kb("list", "--json")`` -> CliResult."""
    from kb.cli.main import main

    def run(*args: str, input: str | None = None) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        old_stdin = sys.stdin
        sys.stdin = io.StringIO(input or "")
        code = 0
        try:
            with redirect_stdout(out), redirect_stderr(err):
                main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.stdin = old_stdin
        return CliResult(code, out.getvalue(), err.getvalue())

    return run


def write_paper(papers: Path, slug: str, key: str, title: str, *, notes: dict[str, str] | None = None,
                extra: str = "") -> Path:
    """A minimal papers/<slug>/ folder for tests."""
    folder = papers / slug
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "paper.yaml").write_text(
        f'id: "{key}"\nslug: {slug}\ntitle: "{title}"\nauthors: [Ada Lovelace, Alan Turing]\nyear: 2016\n{extra}',
        encoding="utf-8")
    for lang, body in (notes or {}).items():
        (folder / f"notes.{lang}.md").write_text(f'---\npaper: "{key}"\nlang: {lang}\n---\n{body}\n', encoding="utf-8")
    return folder


def loaded_after(commands: list[list[str]], modules: tuple[str, ...]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run kb's ``commands`` one after another in one fresh process (what any of them imported stays
    loaded), each expected to exit 0; returns the process and which of ``modules`` it had imported."""
    code = ("import sys\nfrom kb.cli.main import main\n"
            f"for argv in {commands!r}:\n"
            "    try:\n        main(argv)\n    except SystemExit as exit:\n        assert exit.code in (0, None), argv\n"
            f"print('LOADED', [m for m in {modules!r} if m in sys.modules], file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    marker = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    loaded = ast.literal_eval(marker[-1].removeprefix("LOADED ")) if done.returncode == 0 and marker else None
    return done, loaded
