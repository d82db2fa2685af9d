"""Page generation without a catalog or MkDocs: content, links, escaping, pagination, claims, the
search index and the Markdown extension that keeps notes inert."""

import posixpath
import re
from dataclasses import replace
from datetime import datetime, timezone
from functools import lru_cache
from urllib.parse import unquote

import pytest

from kb.runs.verdict import judge_all, summary
from kb.site import figures
from kb.site.claims import claim_results
from kb.site.pages import PER_PAGE, code, generate, note_markdown, text
from kb.site.paths import safe_name
from kb.site.safe_markdown import safe_url
from kb.site.search_index import documents, plain, url_of, word_families
from kb.site.snapshot import Curve, NoteView, PaperView, RunnerView, RunView, Snapshot, thin

CLAIM = {"metric": "map", "dataset": "voc2007-test", "value": 63.4, "unit": "%", "direction": "higher",
         "tolerance": 1.0, "source": "Table 1", "setting": "YOLO"}


def run_view(run_id: str, *, dataset: str, synthetic: bool, value: float, day: int) -> RunView:
    verdicts = judge_all([CLAIM], config={}, final={"map": value}, dataset=dataset, synthetic=synthetic, device_name="cpu")
    return RunView(id=run_id, runner="yolo", paper_key="1506.02640", preset="smoke", status="succeeded",
                   verdict=summary(verdicts), verdicts=tuple(verdicts), dataset=dataset, dataset_synthetic=synthetic,
                   final={"map": value}, created=datetime(2026, 1, day, tzinfo=timezone.utc),
                   curves=(Curve("loss", "step", ((0.0, 2.0), (1.0, 1.0))),))


def yolo(**changes) -> PaperView:
    fields = dict(
        key="1506.02640", slug="yolo", title="You Only Look Once: Unified, Real-Time Object Detection",
        authors=("Joseph Redmon", "Ali Farhadi"), year=2016, venue="CVPR 2016", tags=("detection", "物体検出"),
        runners=("yolo",), claims=(CLAIM,), abstract="We present YOLO.",
        links={"abs": "https://arxiv.org/abs/1506.02640", "pdf": "https://arxiv.org/pdf/1506.02640"},
        added=datetime(2026, 1, 1, tzinfo=timezone.utc),
        notes=(NoteView(lang="en", title=None, body="## Summary\nOne network.", source=None, path="yolo/notes.en.md"),
               NoteView(lang="ja", title="YOLO を読んだ", body="## 概要\n物体検出を一段で。\n### 詳細\n```\n# コード\n```",
                        source="https://example.org/blog/yolo", path="yolo/notes.ja.md")))
    fields.update(changes)
    return PaperView(**fields)


@lru_cache(maxsize=1)
def markdown_renderer():
    """Python-Markdown configured exactly as MkDocs will be, from the project's mkdocs.yml."""
    import tempfile

    import markdown
    from mkdocs.config import load_config

    from tests.conftest import ROOT

    with tempfile.TemporaryDirectory() as docs:
        config = load_config(str(ROOT / "mkdocs.yml"), config_file_path=str(ROOT / "mkdocs.yml"), docs_dir=docs)
    return lambda source: markdown.Markdown(extensions=config.markdown_extensions,
                                            extension_configs=config.mdx_configs).convert(source)


def test_empty_catalog_has_every_listing_and_says_what_to_do():
    pages = generate(Snapshot())
    assert {"index.md", "papers/index.md", "tags/index.md", "runs/index.md", "runners/index.md"} <= set(pages)
    assert "No papers yet" in pages["index.md"] and "kb sync" in pages["index.md"]
    assert "No runs yet" in pages["runs/index.md"]


def test_paper_page_has_metadata_links_notes_in_tabs_and_claims():
    snapshot = Snapshot(papers=(yolo(),), runners=(RunnerView(name="yolo", paper="1506.02640", claims=(CLAIM,)),))
    page = generate(snapshot)["paper/yolo.md"]
    assert '<a href="https://arxiv.org/pdf/1506.02640">PDF (arXiv)</a>' in page
    assert page.index('=== "日本語"') < page.index('=== "English"')       # Japanese first
    assert "    ### 概要" in page and "    #### 詳細" in page and "    # コード" in page
    assert "[https://example.org/blog/yolo](https://example.org/blog/yolo)" in page
    assert "no run" in page and "kb reproduce yolo --config smoke" in page


def test_every_link_between_pages_resolves():
    runs = (run_view("yolo-b", dataset="voc2007-test", synthetic=False, value=64.0, day=2),
            run_view("yolo-a", dataset="generated", synthetic=True, value=70.0, day=1),
            replace(run_view("elsewhere-1", dataset="x", synthetic=False, value=1.0, day=1),
                    runner="elsewhere", paper_key="9999.99999"))
    snapshot = Snapshot(papers=(yolo(), yolo(key="1505.04597", slug="unet", title="U-Net", runners=(), notes=())),
                        runners=(RunnerView(name="yolo", paper="1506.02640", claims=(CLAIM,)),), runs=runs)
    pages = generate(snapshot)
    plan = figures.plan(snapshot)
    targets = set(pages) | set(plan.specs)
    # The addresses MkDocs gives those files with directory URLs, worked out here apart from kb's site_url.
    addresses = {"/" + re.sub(r"(^|/)index\.md$", r"\1", re.sub(r"(?<!index)\.md$", "/", t)) for t in targets}
    checked = 0
    for path, page in pages.items():
        for target in re.findall(r"\]\(([^)]+)\)", page):              # Markdown links: MkDocs resolves them
            if target.startswith("https://"):
                continue
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), unquote(target)))
            assert resolved in targets, (path, target)
            checked += 1
        folder = "/" + re.sub(r"(^|/)index\.md$", r"\1", re.sub(r"(?<!index)\.md$", "/", path))
        for target in re.findall(r'(?:href|src)="([^"]*)"', page):      # kb's HTML: relative to the page's address
            if target.startswith("https://"):
                continue
            resolved = posixpath.normpath(posixpath.join(folder, unquote(target))) + ("/" if target.endswith("/") else "")
            assert resolved in addresses, (path, target)
            checked += 1
    assert checked > 50


def test_listings_are_paginated():
    papers = tuple(yolo(key=f"2001.{n:05d}", slug=f"p{n}", title=f"Paper {n}", notes=(), runners=(), claims=())
                   for n in range(2 * PER_PAGE + 5))
    pages = generate(Snapshot(papers=papers))
    assert {"papers/index.md", "papers/2.md", "papers/3.md"} <= set(pages) and "papers/4.md" not in pages
    assert pages["papers/3.md"].count('href="../../paper/') == 5
    assert "(page 2 of 3)" in pages["papers/2.md"] and '<a href="../../papers/3/">3</a>' in pages["papers/2.md"]
    # Both tags hold every paper: their pages paginate too, under the tag's own folder.
    assert "tag/detection/3.md" in pages


def test_odd_titles_and_notes_render_as_their_text():
    title = '**Bold** _x_ [a](javascript:alert(1)) <img src=x onerror=alert(1)> | # 1. {: .c } &amp; `t`'
    note = "<script>alert(1)</script>\n\n[x](javascript:alert(1)) [y](JaVa&#x09;Script:alert(1))\n\ntext\n{: onclick=\"alert(1)\" }"
    snapshot = Snapshot(papers=(yolo(title=title, tags=("<b>",), venue="*v*",
                                     notes=(NoteView("ja", "<i>t</i>", note, "javascript:alert(1)", "yolo/notes.ja.md"),)),))
    pages = generate(snapshot)
    html = markdown_renderer()(pages["paper/yolo.md"].split("---\n", 2)[2])
    heading = re.search(r"<h1[^>]*>(.*?)<a class=\"headerlink\"", html).group(1)
    assert heading == ('**Bold** _x_ [a](javascript:alert(1)) &lt;img src=x onerror=alert(1)&gt; | # 1. {: .c } '
                       "&amp;amp; `t`")
    assert "<script" not in html and "<img src=x" not in html and "onclick" not in html and "<i>" not in html
    assert not re.search(r'href="\s*(java|&#)', html, re.IGNORECASE)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'title: "**Bold** _x_ [a](javascript:alert(1)) &lt;img' in pages["paper/yolo.md"]
    assert all("<b>" not in page for page in pages.values())


@pytest.mark.parametrize("value", ["a_b *c* #1 [x](y) \\ | {: #i }", "1984. A list?", "- item", "+ item", "# C#",
                                   '=== "tab"', "> quote", "![img](x.png)", "<b>&amp;</b>", "`code`"])
def test_text_shows_exactly_its_input_as_a_paragraph_and_a_heading(value):
    import html

    render = markdown_renderer()
    paragraph = re.fullmatch(r"<p>([^<]*)</p>", render(text(value)))
    assert paragraph and html.unescape(paragraph.group(1)) == value
    heading = re.search(r"<h1[^>]*>([^<]*)<a class=\"headerlink\"", render("# " + text(value)))
    assert heading and html.unescape(heading.group(1)) == value


def test_code_shows_exactly_its_input():
    render = markdown_renderer()
    assert render(code("a `b` <c>")) == "<p><code>a `b` &lt;c&gt;</code></p>"


def test_note_headings_move_down_but_not_inside_code():
    body = "# Top\n## Sub\n```\n# shell comment\n```\n~~~\n## also code\n~~~\n    # indented code\n####### not a heading"
    assert note_markdown(body).splitlines()[:2] == ["### Top", "#### Sub"]
    assert "# shell comment" in note_markdown(body).splitlines()
    assert "## also code" in note_markdown(body).splitlines() and "    # indented code" in note_markdown(body)
    assert note_markdown("#### Deep\n###### deepest").splitlines() == ["### Deep", "##### deepest"]


def test_claims_prefer_a_run_on_the_claims_data_and_never_credit_synthetic_data():
    synthetic = run_view("s", dataset="generated", synthetic=True, value=99.0, day=3)
    real = run_view("r", dataset="voc2007-test", synthetic=False, value=60.0, day=1)
    [only_synthetic] = claim_results((CLAIM,), [synthetic])
    assert only_synthetic.label == "not comparable" and only_synthetic.data_used == "generated (synthetic)"
    [both] = claim_results((CLAIM,), [synthetic, real])
    assert both.run is real and both.label == "not reproduced"
    [nothing] = claim_results((CLAIM,), [])
    assert nothing.label == "no run" and nothing.run is None
    spec = figures.claims_spec(yolo(), [only_synthetic])
    assert spec["panels"][0]["run_data"] == "generated (synthetic)" and spec["panels"][0]["verdict"] == "not comparable"


def test_claims_show_every_seed_of_the_same_experiment():
    from dataclasses import replace

    runs = [replace(run_view(f"s{seed}", dataset="voc2007-test", synthetic=False, value=value, day=10 - seed),
                    seed=seed, config={"lr": 0.01, **extra})
            for seed, value, extra in ((0, 60.0, {}), (1, 62.0, {"download": False}), (2, 64.0, {}))]
    other_preset = replace(runs[0], id="p", preset="paper", seed=3, final={"map": 10.0})
    other_config = replace(runs[0], id="c", seed=4, config={"lr": 0.1}, final={"map": 20.0})
    older_same_seed = replace(runs[0], id="old", final={"map": 1.0})
    [result] = claim_results((CLAIM,), [*runs, other_preset, other_config, older_same_seed])
    assert result.run.id == "s0" and result.seeds == (60.0, 62.0, 64.0)   # newest per seed, same config
    assert result.seed_summary == "62 ± 2 (3 seeds)"
    [single] = claim_results((CLAIM,), [runs[0]])
    assert single.seeds == (60.0,) and single.seed_summary == ""


def test_figure_files_are_named_by_their_data():
    one = run_view("a", dataset="generated", synthetic=True, value=1.0, day=1)
    first = figures.plan(Snapshot(runs=(one,))).runs["a"]
    assert first == figures.plan(Snapshot(runs=(one,))).runs["a"]
    assert first.startswith("figures/runs/a-") and first.endswith(".svg")
    assert figures.curves_spec(one)["subtitle"] == "data: generated (synthetic)"
    changed = replace(one, curves=(Curve("loss", "step", ((0.0, 3.0),)),))
    assert figures.plan(Snapshot(runs=(changed,))).runs["a"] != first


def test_run_page_escapes_errors_and_flags_regressions():
    failed = RunView(id="yolo-x", runner="yolo", paper_key="1506.02640", preset="smoke", status="failed",
                     verdict="failed", regression=True, error="RuntimeError: <boom> ```", env={"torch": "2.13.0"})
    page = generate(Snapshot(papers=(yolo(),), runs=(failed,)))["run/yolo-x.md"]
    assert "````\nRuntimeError: <boom> ```\n````" in page and "regression" in page
    assert "2.13.0" in markdown_renderer()(page.split("---\n", 2)[2])


def test_safe_names_and_urls():
    assert safe_name("detection") == "detection" and safe_name("物体検出") == "物体検出"
    for odd in ("index", "a/b", "../x", "<script>", ".hidden", ""):
        name = safe_name(odd)
        assert re.fullmatch(r"[\w-]+", name) and name != "index" and name != safe_name(odd + "2")
    assert safe_url("https://arxiv.org/abs/1") and safe_url("../paper/yolo/") and safe_url("mailto:a@b.c")
    for bad in ("javascript:alert(1)", "JaVaScRiPt:x", "java\tscript:x", "&#106;avascript:x", " javascript:x",
                "data:text/html,x", "vbscript:x"):
        assert not safe_url(bad), bad


def test_search_documents_hold_plain_note_text():
    docs = documents(Snapshot(papers=(yolo(),), runners=(RunnerView(name="yolo", paper="1506.02640", summary="YOLOv1"),)))
    paper_doc = next(d for d in docs if d["location"] == "paper/yolo/")
    assert "物体検出を一段で" in paper_doc["text"] and "One network" in paper_doc["text"] and "##" not in paper_doc["text"]
    assert any(d["location"] == "runner/yolo/" and "You Only Look Once" in d["text"] for d in docs)
    assert plain("## A [link](http://x.org) **b** https://y.org/z `c`\n- item") == "A link b c item"
    assert url_of("index.md") == "" and url_of("paper/reindex.md") == "paper/reindex/" and url_of("tag/x/index.md") == "tag/x/"
    assert ["detect", "detection", "detector"] in word_families(
        [{"title": "Detector", "text": "detection detect segmentation"}])


def test_thin_keeps_the_last_point():
    points = [(float(i), float(i)) for i in range(1001)]
    kept = thin(points, 100)
    assert len(kept) <= 101 and kept[0] == points[0] and kept[-1] == points[-1]


def test_generation_is_deterministic():
    def snapshot():
        return Snapshot(papers=(yolo(),), runs=(run_view("r", dataset="voc2007-test", synthetic=False, value=1.0, day=1),))

    assert generate(snapshot()) == generate(snapshot())


def test_bare_urls_in_notes_become_links_but_script_urls_do_not():
    html = markdown_renderer()("- arXiv: https://arxiv.org/abs/1506.02640\n- javascript:alert(1)")
    assert '<a href="https://arxiv.org/abs/1506.02640">' in html and 'href="javascript' not in html


def test_claimed_values_keep_the_space_before_a_word_unit():
    from kb.site.pages import with_unit

    assert with_unit(0, "points") == "0 points" and with_unit(45, "frames/s") == "45 frames/s"
    assert with_unit(63.4, "%") == "63.4%" and with_unit(4, "x") == "4x" and with_unit(0.5, None) == "0.5"


def test_curves_get_a_panel_per_family_log_scaled_when_they_span_decades():
    curves = (Curve("loss", "step", tuple((float(s), 100.0 / (s + 1)) for s in range(100))),     # 100 -> 1: 2 decades
              Curve("lr", "step", tuple((float(s), 0.01) for s in range(100))),
              Curve("grad_norm", "step", tuple((float(s), 5.0 + s % 3) for s in range(100))),
              Curve("accuracy", "epoch", ((1.0, 50.0), (2.0, 90.0)), steps=(49.0, 99.0)),
              Curve("test_loss", "epoch", ((1.0, 2.0), (2.0, 1.5)), steps=(49.0, 99.0)))
    run = replace(run_view("r", dataset="voc2007-test", synthetic=False, value=1.0, day=1), curves=curves)
    panels = figures.curves_spec(run)["panels"]
    assert [(p["title"], p["xlabel"], p["log"]) for p in panels] == [
        ("losses", "step", True), ("evaluation (accuracy, mAP, error, ...)", "step", False),
        ("learning rate", "step", False), ("gradient norm", "step", False)]
    assert [name for name, _, _ in panels[0]["series"]] == ["loss", "test_loss"]
    assert panels[1]["series"][0][1] == [49.0, 99.0]            # epoch values at the step they were logged
    only_epochs = replace(run, curves=(Curve("accuracy", "epoch", ((1.0, 50.0), (2.0, 90.0)), steps=(0.0, 0.0)),))
    assert [(p["xlabel"], p["series"][0][1]) for p in figures.curves_spec(only_epochs)["panels"]] == [("epoch", [1.0, 2.0])]
