"""The built site in a real headless browser (Debian's chromium driven by Playwright): search in
Japanese and English through the search box, served and opened from disk (file://), follow a result
to the paper page, see its headline run, the runs' metric column, the claimed-vs-reproduced table and
the figures; a note's script never runs.

Each test takes the site's root URL from ``served`` (http) or ``on_disk`` (file://); a new search case
adds its query to ``QUERIES`` or a test of its own beside these.

CI installs chromium (.ci/run); a missing browser fails this test, it is never skipped.
"""

import threading
from pathlib import Path

import pytest

from kb.db import session_scope
from kb.glossary import concepts
from kb.search import search as kb_search
from kb.site.build import build_site, site_server
from tests.test_site_build import catalog_settings

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
# Japanese words as typed (two-character words, a longer one, one glued by a particle), a mixed
# query and English word forms; each finds the BEV paper through its notes.
QUERIES = ["検出", "点群", "重み", "鳥瞰図", "物体を検出", "点群 detector", "bird", "detection"]
# Queries whose papers say them only in the other language (kb/glossary.tsv): 物体検出 is in no text,
# "object detection" in the BEV paper's title; 畳み込み finds the Convolutional Networks' titles.
ACROSS = ["物体検出", "畳み込み", "セグメンテーション", "segmentation", "領域分割", "point cloud"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The built site's folder and what ``kb search`` finds for each of ``QUERIES``."""
    root = tmp_path_factory.mktemp("browser")
    with catalog_settings(root / "catalog") as settings:
        report = build_site(settings, root / "site")
        glossary = concepts(settings.papers)
        with session_scope(settings) as session:
            expected = {q: [hit.paper.slug for hit in kb_search(q, session=session, glossary=glossary)]
                        for q in QUERIES + ACROSS}
        yield report.out, expected


@pytest.fixture(scope="module")
def served(built):
    out, expected = built
    server = site_server(out, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", expected
    server.shutdown()
    server.server_close()


@pytest.fixture
def on_disk(built):
    """The site's root as a file:// URL, as the README's ``site/index.html`` opens it."""
    out, expected = built
    return out.as_uri() + "/", expected


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium fonts-noto-cjk)"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh page whose script errors and dialogs (alert) land in ``page_errors``."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    yield page, errors
    context.close()


def type_query(page, query: str, root: str) -> list[str]:
    """Enter ``query`` in Material's search box and press a key, as a person committing an IME
    conversion does (Material searches on keyup); returns the result links as paths under the site's
    ``root`` URL, read once Material has re-rendered the list (it clears a sentinel item put there first)."""
    box = page.locator("input.md-search__input")
    box.click()
    # Until its worker has loaded the index, Material answers any query with an empty list under
    # "Initializing search" (its en.html): wait for that to go, as a person sees it go.
    page.wait_for_function("() => !(document.querySelector('.md-search-result__meta') || {}).textContent"
                           "?.includes('Initializing search')")
    box.fill(query)
    page.evaluate("() => document.querySelector('.md-search-result__list').append(Object.assign("
                  "document.createElement('li'), {id: 'kb-stale'}))")
    box.press("End")
    page.wait_for_selector("#kb-stale", state="detached")
    hrefs = page.locator(".md-search-result__item > a.md-search-result__link").evaluate_all("as => as.map(a => a.href)")
    assert all(href.startswith(root) for href in hrefs), hrefs
    return [href[len(root):].split("?")[0] for href in hrefs]


def slugs(links: list[str]) -> set[str]:
    return {link.split("/")[1] for link in links if link.startswith("paper/")}


def test_search_finds_japanese_and_english_words_like_kb_search(served, page):
    (url, expected), (page, errors) = served, page
    page.goto(url)
    for query in QUERIES:
        found = slugs(type_query(page, query, url))
        assert "bev" in found, (query, found)
        assert found == set(expected[query]), (query, found, expected[query])
    assert type_query(page, "存在しない語", url) == [] and type_query(page, "zzzqqq", url) == []
    assert errors == []


def test_search_crosses_languages_with_the_glossary_like_kb_search(served, page):
    (url, expected), (page, errors) = served, page
    page.goto(url)
    for query in ACROSS:
        found = type_query(page, query, url)
        assert expected[query], query
        # The same papers, and the same one first (the paper whose title says it).
        assert slugs(found) == set(expected[query]) and slugs(found[:1]) == set(expected[query][:1]), (query, found)
    assert slugs(type_query(page, "物体検出", url)) == {"bev"}
    assert errors == []


def test_a_result_leads_to_the_paper_with_its_claims_and_figures(served, page):
    (url, _), (page, errors) = served, page
    page.goto(url)
    assert type_query(page, "鳥瞰図", url)[0] == "paper/bev/"
    with page.expect_navigation():
        page.locator(".md-search-result__item a.md-search-result__link").first.click()
    assert page.url.split("?")[0].endswith("/paper/bev/")
    table = page.locator("#claimed-vs-reproduced ~ div table").first
    assert "kitti-bev" in table.inner_text() and "reproduced" in table.inner_text()
    page.locator("img.kb-figure").first.scroll_into_view_if_needed()
    figures = page.locator("img.kb-figure")
    assert figures.count() >= 2
    for index in range(figures.count()):
        figure = figures.nth(index)
        figure.scroll_into_view_if_needed()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=figure.element_handle())
    assert "日本語" in page.locator(".tabbed-labels").first.inner_text()
    assert errors == []


def test_a_note_with_scripts_stays_text(served, page):
    (url, _), (page, errors) = served, page
    page.goto(url + "paper/hostile/")
    body = page.locator("article").inner_text()
    assert "<script>window.__xss = 1</script>" in body and '<img src="x" onerror="window.__xss = 2">' in body
    for name in ("click", "entity"):
        page.get_by_role("link", name=name, exact=True).click()
    assert page.evaluate("window.__xss") is None and errors == []


def test_the_paper_index_filters_and_sorts(served, page):
    (url, _), (page, errors) = served, page
    page.goto(url + "papers/")
    rows = page.locator(".md-content table tbody tr")
    assert rows.count() == 4
    page.locator("input.kb-filter-box").fill("u-net")
    assert [row.inner_text().split("\t")[0] for row in rows.all() if row.is_visible()] == [
        "U-Net: Convolutional Networks for Biomedical Image Segmentation"]
    page.locator("input.kb-filter-box").fill("")
    page.get_by_role("columnheader", name="Title").click()
    titles = [row.inner_text().split("\t")[0] for row in rows.all()]
    assert titles == sorted(titles, key=str.lower)
    assert errors == []


def test_search_works_on_the_site_opened_from_disk(on_disk, page):
    (url, expected), (page, errors) = on_disk, page
    page.goto(url + "index.html")
    for query in ("鳥瞰図", "点群 detector", "detection"):
        found = type_query(page, query, url)
        assert {link.split("/")[1] for link in found if link.startswith("paper/")} == set(expected[query]), (query, found)
        assert all(link.endswith("index.html") for link in found), found     # a folder would open a file listing
    with page.expect_navigation():
        page.locator(".md-search-result__item a.md-search-result__link").first.click()
    assert page.url == url + "paper/bev/index.html"
    assert "sitedemo-kitti" in page.locator(".kb-headline").inner_text()
    assert errors == []


def test_the_paper_leads_with_its_comparable_run_and_lists_every_run_with_its_metric(served, page):
    (url, _), (page, errors) = served, page
    page.goto(url + "paper/bev/")
    headline = page.locator(".kb-headline").inner_text()
    assert "sitedemo-kitti" in headline and "80.5" in headline and "reproduced" in headline
    assert "sitedemo-smoke" not in headline                  # the newest run, a smoke run on generated data
    runs = page.locator("#runs ~ div table").first
    header = [cell.inner_text() for cell in runs.locator("thead th").all()]
    rows = {row.locator("td").first.inner_text(): row for row in runs.locator("tbody tr").all()}
    result, labels = header.index("Result"), header.index("Labels")
    assert rows["sitedemo-kitti"].locator("td").nth(result).inner_text() == "ap 80.5"
    assert rows["sitedemo-smoke"].locator("td").nth(labels).inner_text().split() == ["smoke", "generated", "data"]
    curves = page.locator("img.kb-figure[src*='figures/runs/']")
    assert curves.count() >= 1
    curves.first.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 600", arg=curves.first.element_handle())
    assert errors == []
