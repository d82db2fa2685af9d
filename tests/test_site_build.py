"""kb site build end to end without a browser: a small catalog with notes, claims and runs (one on
synthetic data, one on the claim's data, a failed regression), hostile titles and notes, a paper
with nothing; then the HTML, figures and search index MkDocs and kb write."""

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from kb.ingest.sync import sync
from kb.db import session_scope
from kb.models import Metric, RunRecord
from kb.runs.verdict import judge_all
from kb.settings import Settings
from kb.errors import KBError
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
            status: str = "succeeded", regression: bool = False, error: str | None = None) -> None:
    created = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=minutes)
    final = {"ap": ap} if ap is not None else {}
    verdicts = judge_all([CLAIM], config={}, final=final, dataset=dataset, synthetic=synthetic,
                         device_name="CPU (test)") if status == "succeeded" else []
    session.add(RunRecord(
        id=run_id, runner="sitedemo", paper_key="1902.06326", preset="smoke", config={"epochs": 3, "lr": 0.01},
        status=status, created=created, started=created, ended=created + timedelta(minutes=2),
        env={"python": "3.11.7", "torch": "2.13.0", "device_name": "CPU (test)"}, device="cpu", host="testhost",
        dataset=dataset, dataset_synthetic=synthetic, final=final, verdicts=verdicts, run_dir=f"/tmp/{run_id}",
        info={"regression": True} if regression else {}, error=error, git_commit="0123456789abcdef0123"))
    session.flush()
    session.add_all([Metric(run_id=run_id, kind="step", step=step, name="loss", value=2.0 / (step + 1))
                     for step in range(30)])
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


def test_pages_stay_small_and_search_index_holds_notes(built):
    sizes = [path.stat().st_size for path in built.out.rglob("*.html")]
    assert sizes and max(sizes) < 80_000
    index = json.loads(gzip.decompress((built.out / "search" / "kb_index.json.gz").read_bytes()))
    by_location = {doc["location"]: doc for doc in index["docs"]}
    assert "鳥瞰図 (BEV) に点群を投影し" in by_location["paper/bev/"]["text"]
    assert "##" not in by_location["paper/bev/"]["text"]
    assert by_location["runner/sitedemo/"]["title"] == "Runner sitedemo"
    assert ["segmentation"] not in index["families"]
    stub = json.loads((built.out / "search" / "search_index.json").read_text())
    assert stub["docs"] == []


def test_rebuild_draws_no_figure_twice_and_writes_the_same_site(site_settings, tmp_path):
    first = build_site(site_settings, tmp_path / "site")
    pages = {name: (first.out / name).read_bytes() for name in ("paper/bev/index.html", "search/kb_index.json.gz")}
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
