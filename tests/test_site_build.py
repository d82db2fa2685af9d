"""kb site build end to end without a browser: a small catalog with notes, claims and runs (one on
synthetic data, one on the claim's data, a failed regression), hostile titles and notes, a paper
with nothing; then the HTML, figures and search index MkDocs and kb write."""

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from kb.db import session_scope
from kb.errors import KBError
from kb.ingest.sync import sync
from kb.models import Metric, RunRecord
from kb.runs.verdict import judge_all
from kb.settings import Settings
from kb.site.build import build_site, site_server
from tests.conftest import write_paper

CLAIM = {"metric": "ap", "dataset": "kitti-bev", "value": 80.0, "unit": "%", "direction": "higher", "tolerance": 1.0,
         "source": "Table 1"}
HOSTILE_TITLE = '**Bold** _under_ [link](javascript:alert(1)) <script>alert("title")</script> | pipe # {: .x }'
HOSTILE_NOTE = """## <b>raw</b> heading
<script>window.__xss = 1</script>

<img src="x" onerror="window.__xss = 2">

[click](javascript:window.__xss=3) and [entity](&#106;avascript:window.__xss=4)

A paragraph with an attribute list
{: onclick="window.__xss = 5" }

```
<b>code</b> # not a heading
```
"""
RUNNER_SPEC = """from kb.runs.registry import RunnerSpec

RUNNER = RunnerSpec(name="sitedemo", paper="1902.06326", summary="A BEV detector for the site tests",
                    datasets=("kitti-bev", "generated"), presets=("smoke", "default"),
                    entrypoint="sitedemo.train:main", config="sitedemo.config")
"""


def add_run(session, run_id: str, *, dataset: str, synthetic: bool, ap: float | None, minutes: int,
            status: str = "succeeded", regression: bool = False, error: str | None = None,
            preset: str = "default") -> None:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    final = {"ap": ap} if ap is not None else {}
    verdicts = judge_all([CLAIM], config={}, final=final, dataset=dataset, synthetic=synthetic,
                         device_name="CPU (test)") if status == "succeeded" else []
    session.add(RunRecord(
        id=run_id, runner="sitedemo", paper_key="1902.06326", preset=preset, config={"epochs": 3, "lr": 0.01},
        status=status, created=created, started=created, ended=created + timedelta(minutes=2),
        env={"python": "3.11.7", "torch": "2.13.0", "device_name": "CPU (test)"}, device="cpu", host="testhost",
        dataset=dataset, dataset_synthetic=synthetic, final=final, verdicts=verdicts, run_dir=f"/tmp/{run_id}",
        info={"regression": True} if regression else {}, error=error, git_commit="0123456789abcdef0123"))
    session.flush()
    session.add_all([Metric(run_id=run_id, kind="step", step=step, name=name, value=value)
                     for step in range(30) for name, value in (("loss", 2.0 / (step + 1) ** 2), ("lr", 0.01))])
    session.add_all([Metric(run_id=run_id, kind="epoch", step=10 * epoch, epoch=epoch, name="ap", value=20.0 * epoch)
                     for epoch in range(1, 4)])


def make_catalog(settings, runners_dir: Path) -> None:
    """Papers (one hostile, one bare, one with a Japanese tag), notes, a registered runner and its runs."""
    write_paper(settings.papers, "bev", "1902.06326", "PIXOR: Real-time 3D Object Detection from Point Clouds",
                notes={"ja": "## 概要\n鳥瞰図 (BEV) に点群を投影し、物体を検出する。重みは共有する。\n## 実装\nsmooth L1 を使う。",
                       "en": "## Summary\nA single-stage detector on a bird's-eye-view grid of LiDAR points."},
                extra="tags: [detection, 点群]\nrunners: [sitedemo]\nclaims:\n  - " + json.dumps(CLAIM) + "\n")
    write_paper(settings.papers, "unet", "1505.04597", "U-Net: Convolutional Networks for Biomedical Image Segmentation",
                notes={"ja": "## 概要\nセグメンテーションの精度が高い。", "en": "## Summary\nSegmentation with skip connections."},
                extra="tags: [segmentation]\n")
    write_paper(settings.papers, "bare", "1409.1556", "Very Deep Convolutional Networks")
    hostile = settings.papers / "hostile"
    hostile.mkdir()
    (hostile / "paper.yaml").write_text(yaml.safe_dump({
        "id": "1512.03385", "slug": "hostile", "title": HOSTILE_TITLE, "authors": ["<img src=x onerror=alert(1)>"],
        "venue": "*CVPR* 2016", "tags": ["<script>", "a/b"], "abstract": "Uses <b>bold</b> & [links](x.md).",
    }, allow_unicode=True), encoding="utf-8")
    (hostile / "notes.ja.md").write_text(f"---\npaper: \"1512.03385\"\nlang: ja\nsource: \"javascript:alert(1)\"\n---\n{HOSTILE_NOTE}",
                                         encoding="utf-8")
    assert sync(settings).problems == []
    package = runners_dir / "sitedemo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(RUNNER_SPEC, encoding="utf-8")
    with session_scope(settings) as session:
        add_run(session, "sitedemo-synthetic", dataset="generated", synthetic=True, ap=95.0, minutes=1)
        add_run(session, "sitedemo-kitti", dataset="kitti-bev", synthetic=False, ap=80.5, minutes=2)
        add_run(session, "sitedemo-broken", dataset="kitti-bev", synthetic=False, ap=None, minutes=3, status="failed",
                regression=True, error="RuntimeError: <boom> ``` `x`")
        # The newest: a smoke run on generated data, as after README's Quick start; it never leads.
        add_run(session, "sitedemo-smoke", dataset="generated", synthetic=True, ap=0.0, minutes=4, preset="smoke")


@contextmanager
def catalog_settings(root: Path) -> Iterator[Settings]:
    """Settings for a fresh home, papers and runners folder under ``root``, holding ``make_catalog``."""
    from kb.db import _ready_engine
    from kb.settings import load_settings

    with pytest.MonkeyPatch.context() as patch:
        for key, folder in (("KB_HOME", "home"), ("KB_PAPERS", "papers"), ("KB_RUNNERS", "extra-runners")):
            (root / folder).mkdir(parents=True)
            patch.setenv(key, str(root / folder))
        patch.setenv("KB_ARXIV_API", "http://127.0.0.1:9/api/query")
        patch.delenv("KB_DATABASE_URL", raising=False)
        _ready_engine.cache_clear()
        settings = load_settings()
        make_catalog(settings, root / "extra-runners")
        yield settings
        _ready_engine.cache_clear()


@pytest.fixture
def site_settings(tmp_path):
    with catalog_settings(tmp_path / "catalog") as settings:
        yield settings


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One site for the read-only tests of this module."""
    root = tmp_path_factory.mktemp("site")
    with catalog_settings(root / "catalog") as settings:
        yield build_site(settings, root / "site")


class _Elements(HTMLParser):
    """Every element's tag and attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in_script = False


def parse(path: Path) -> _Elements:
    parser = _Elements()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_paper_page_shows_metadata_notes_claims_and_runs(built):
    page = (built.out / "paper" / "bev" / "index.html").read_text(encoding="utf-8")
    assert "PIXOR: Real-time 3D Object Detection from Point Clouds" in page
    assert 'href="https://arxiv.org/abs/1902.06326"' in page and 'href="https://arxiv.org/pdf/1902.06326"' in page
    # Notes in tabs, Japanese first, their sections kept one level down.
    assert page.index(">日本語<") < page.index(">English<")
    assert re.search(r"<h3 id=\"[^\"]*\">概要", page) and "鳥瞰図 (BEV) に点群を投影し" in page
    # Claimed vs reproduced: the run on the claim's data answers it, and it is reproduced.
    assert "kitti-bev" in page and "80.5" in page and "reproduced" in page
    elements = parse(built.out / "paper" / "bev" / "index.html").elements
    images = [attrs["src"] for tag, attrs in elements if tag == "img" and "figures/" in attrs.get("src", "")]
    assert any("figures/papers/bev-" in src for src in images) and any("figures/runs/" in src for src in images)
    for src in images:
        assert (built.out / "paper" / "bev" / src).resolve().is_file(), src


def test_figures_say_which_data_the_run_used(built):
    synthetic = next((built.out / "figures" / "runs").glob("sitedemo-synthetic-*.svg")).read_text(encoding="utf-8")
    assert "generated (synthetic)" in synthetic and "<svg" in synthetic
    chart = next((built.out / "figures" / "papers").glob("bev-*.svg")).read_text(encoding="utf-8")
    assert "kitti-bev" in chart and "reproduced" in chart


def test_a_synthetic_run_is_never_shown_as_a_reproduction(site_settings, tmp_path):
    with session_scope(site_settings) as session:
        session.delete(session.get(RunRecord, "sitedemo-kitti"))
    report = build_site(site_settings, tmp_path / "site")
    page = (report.out / "paper" / "bev" / "index.html").read_text(encoding="utf-8")
    claims = page[page.index('id="claimed-vs-reproduced"'):page.index('id="runs"')]
    assert "not comparable" in claims and "generated" in claims and "(synthetic)" in claims
    assert ">reproduced<" not in claims
    chart = next((report.out / "figures" / "papers").glob("bev-*.svg")).read_text(encoding="utf-8")
    assert "generated (synthetic)" in chart and "not comparable" in chart


def test_runner_and_run_pages_list_every_run_with_its_environment(built):
    runner = (built.out / "runner" / "sitedemo" / "index.html").read_text(encoding="utf-8")
    for run_id in ("sitedemo-synthetic", "sitedemo-kitti", "sitedemo-broken"):
        assert run_id in runner
    assert "kb reproduce sitedemo --config smoke" in runner and "2.13.0" in runner and "3.11.7" in runner
    run = (built.out / "run" / "sitedemo-broken" / "index.html").read_text(encoding="utf-8")
    assert "RuntimeError: &lt;boom&gt;" in run and "testhost" in run and "regression" in run
    runs = (built.out / "runs" / "index.html").read_text(encoding="utf-8")
    assert runs.index("sitedemo-broken") < runs.index("sitedemo-kitti") < runs.index("sitedemo-synthetic")


def test_user_content_cannot_run_on_the_site(built):
    for path in built.out.rglob("*.html"):
        parsed = parse(path)
        for tag, attrs in parsed.elements:
            assert not any(name.startswith("on") for name in attrs), (path, tag, attrs)
            for name in ("href", "src"):
                url = re.sub(r"\s", "", attrs.get(name, "")).lower()      # the parser decoded entities
                assert not url.startswith(("javascript:", "data:")), (path, attrs)
        assert not any("__xss" in script or 'alert("title")' in script for script in parsed.scripts), path
    page = (built.out / "paper" / "hostile" / "index.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in page
    assert "**Bold** _under_ [link](javascript:alert(1))" in page.replace("&amp;", "&")
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def search_parts(out: Path) -> dict[str, object]:
    """The search index's parts as the worker reads them: ``kbSearchPart(name, data)`` scripts."""
    parts = {}
    for path in (out / "search" / "kb").glob("*.js"):
        call = re.fullmatch(r'kbSearchPart\("([^"]+)",(.*)\)\n', path.read_text(encoding="utf-8"), re.DOTALL)
        parts[call.group(1)] = json.loads(call.group(2))
    return parts


def pages_with(parts: dict, token: str) -> set[int]:
    """The documents of a token's posting list (gaps, then counts; kb/site/search_index.py)."""
    from kb.site.search_index import cjk_part

    if token[0].isascii():
        flat = parts[f"l-{token[:2]}"]["words"].get(token, [])
    else:
        flat = parts[f"c{cjk_part(token, parts['meta']['cjk_parts'])}"].get(token, [])
    docs, doc = set(), 0
    for gap in flat[0::2]:
        doc += gap
        docs.add(doc)
    return docs


def test_pages_stay_small_and_search_index_holds_notes(built):
    sizes = [path.stat().st_size for path in built.out.rglob("*.html")]
    assert sizes and max(sizes) < 60_000
    parts = search_parts(built.out)
    docs = parts["d0"]
    assert parts["meta"]["docs"] == len(docs)          # the four papers and every registered runner
    number = {location: n for n, (location, _, _) in enumerate(docs)}
    bev, runner = number["paper/bev/"], number["runner/sitedemo/"]
    assert docs[runner][1] == "Runner sitedemo" and "##" not in docs[bev][2]
    # The note's words: 鳥瞰図 by its bigrams and its trigram, a Latin word whole.
    for token in ("鳥瞰", "瞰図", "鳥瞰図", "重*", "lidar", "detector"):         # 重*: 重 starts a bigram
        assert bev in pages_with(parts, token), token
    assert pages_with(parts, "鳥瞰図") == {bev}
    assert parts["l-se"]["families"].get("segmentation") is None     # a word alone in its family
    assert parts["l-de"]["families"]["detection"] == parts["l-de"]["families"]["detector"]
    stub = json.loads((built.out / "search" / "search_index.json").read_text())
    assert stub["docs"] == []
    assert (built.out / "search" / "search_index.js").read_text().startswith("var __index = ")


def test_rebuild_draws_no_figure_twice_and_writes_the_same_site(site_settings, tmp_path):
    first = build_site(site_settings, tmp_path / "site")
    names = ("paper/bev/index.html", "search/kb/meta.js", "search/kb/d0.js")
    pages = {name: (first.out / name).read_bytes() for name in names}
    again = build_site(site_settings, first.out)
    assert again.figures == first.figures > 0 and again.figures_drawn == 0
    assert pages == {name: (again.out / name).read_bytes() for name in pages}


def test_empty_catalog_builds(kb_env, tmp_path):
    report = build_site(kb_env, tmp_path / "site")
    home = (report.out / "index.html").read_text(encoding="utf-8")
    assert "No papers yet" in home
    assert (report.out / "papers" / "index.html").is_file() and (report.out / "runs" / "index.html").is_file()


def test_cli_builds_and_refuses_a_folder_that_is_not_a_site(site_settings, kb, tmp_path):
    result = kb("site", "build", "--out", tmp_path / "cli-site")
    assert result.code == 0 and "built" in result.out and (tmp_path / "cli-site" / "index.html").is_file()
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("keep me", encoding="utf-8")
    result = kb("site", "build", "--out", precious)
    assert result.code == 2 and "not empty" in result.err and "Traceback" not in result.err
    assert (precious / "thesis.tex").read_text(encoding="utf-8") == "keep me"


def test_serving_needs_a_built_site_and_a_free_port(built, tmp_path):
    with pytest.raises(KBError, match="no built site"):
        site_server(tmp_path, 0)
    server = site_server(built.out, 0)
    try:
        with pytest.raises(KBError, match="choose another --port"):
            site_server(built.out, server.server_address[1])
    finally:
        server.server_close()


def test_the_headline_is_the_comparable_run_not_the_newest_smoke_run(built):
    page = (built.out / "paper" / "bev" / "index.html").read_text(encoding="utf-8")
    headline = re.search(r'<p class="kb-headline">(.*?)</p>', page, re.DOTALL).group(1)
    assert "sitedemo-kitti" in headline and "80.5" in headline and ">reproduced<" in headline
    assert "sitedemo-smoke" not in headline
    runs = page[page.index('id="runs"'):]
    assert "<th>Result</th>" in runs and "<th>Labels</th>" in runs
    smoke_row = re.search(r"<tr>(?:(?!</tr>).)*sitedemo-smoke(?:(?!</tr>).)*</tr>", runs, re.DOTALL).group(0)
    assert "ap 0" in smoke_row and ">smoke<" in smoke_row and ">generated data<" in smoke_row
    home = (built.out / "index.html").read_text(encoding="utf-8")
    status = home[home.index('id="reproduction-status"'):home.index('id="recently-added"')]
    assert "sitedemo-kitti" in status and "ap 80.5" in status


def test_curves_have_a_panel_per_metric_family(built):
    svg = next((built.out / "figures" / "runs").glob("sitedemo-kitti-*.svg")).read_text(encoding="utf-8")
    assert "losses (log scale)" in svg and "learning rate" in svg and "evaluation (accuracy, mAP, error, ...)" in svg


def test_a_rebuild_after_editing_one_note_renders_only_what_changed(site_settings, tmp_path):
    first = build_site(site_settings, tmp_path / "site")
    assert first.full and first.rendered == first.pages
    untouched = (first.out / "paper" / "unet" / "index.html").stat().st_mtime_ns
    index_written = (first.out / "search" / "kb" / "meta.js").stat().st_mtime_ns
    same = build_site(site_settings, first.out)
    assert not same.full and same.rendered == 0
    assert (same.out / "search" / "kb" / "meta.js").stat().st_mtime_ns == index_written
    note = site_settings.papers / "bev" / "notes.en.md"
    note.write_text(note.read_text(encoding="utf-8") + "\nA sentence added later about voxels.\n", encoding="utf-8")
    assert sync(site_settings).problems == []
    again = build_site(site_settings, first.out)
    assert not again.full and again.rendered == 1 and again.figures_drawn == 0
    assert "about voxels" in (again.out / "paper" / "bev" / "index.html").read_text(encoding="utf-8")
    assert (again.out / "paper" / "unet" / "index.html").stat().st_mtime_ns == untouched
    assert "voxels" in {word for part, data in search_parts(again.out).items() if part.startswith("l-vo")
                        for word in data["words"]}
    # A paper removed from papers/ takes its page with it; the listings that named it are rendered again.
    shutil.rmtree(site_settings.papers / "unet")
    assert sync(site_settings).problems == []
    removed = build_site(site_settings, first.out)
    assert not removed.full and not (removed.out / "paper" / "unet").exists()
    assert "U-Net" not in (removed.out / "papers" / "index.html").read_text(encoding="utf-8")


def _index_files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "search").rglob("*")) if p.is_file()}


def test_search_tokens_are_cached_per_document_and_never_reused_stale(site_settings, tmp_path, monkeypatch):
    import marshal

    from kb.site import build as site_build

    cache_file = site_build.source_dir(site_settings) / ".kb-tokens.marshal"
    first = build_site(site_settings, tmp_path / "site")
    version, cache = marshal.loads(cache_file.read_bytes())
    note = site_settings.papers / "bev" / "notes.en.md"
    note.write_text(note.read_text(encoding="utf-8") + "\nA sentence added later about voxels.\n", encoding="utf-8")
    assert sync(site_settings).problems == []
    build_site(site_settings, first.out)
    _, edited = marshal.loads(cache_file.read_bytes())
    # One document changed: one key is new and the old one is gone, the others kept.
    assert len(edited) == len(cache) and len(set(edited) - set(cache)) == 1
    # The index from cached tokens is byte for byte the one a build with no cache writes.
    cache_file.unlink()
    shutil.rmtree(site_build.source_dir(site_settings))
    fresh = build_site(site_settings, tmp_path / "fresh")
    assert _index_files(fresh.out) == _index_files(first.out)

    def rebuild_index_with(stored_version: str) -> dict[str, bytes]:
        # Every document's cached tokens emptied: used, they would leave the index with no words.
        _, current = marshal.loads(cache_file.read_bytes())
        emptied = {key: ({}, {}, set()) for key in current}
        cache_file.write_bytes(marshal.dumps((stored_version, emptied)))
        (site_build.source_dir(site_settings) / ".kb-index").unlink()
        return _index_files(build_site(site_settings, fresh.out).out)

    assert rebuild_index_with(version) != _index_files(first.out)        # same tokenizer and kb: the cache is used
    assert rebuild_index_with("another tokenizer or kb") == _index_files(first.out)
    monkeypatch.setattr("kb.__version__", "99.0")                       # a new kb: tokens made by the old one are not
    assert rebuild_index_with(version) == _index_files(first.out)
