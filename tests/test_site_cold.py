"""kb's HTML beside Markdown on a page (kb/site/pages.py ``page_file``, kb/site/hooks.py): the HTML kb
builds is what Python-Markdown makes of the same Markdown (the reference: Markdown configured
from mkdocs.yml), no note can pass for HTML, and the Jinja bytecode cache fills."""

import html
import re
from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError
from mkdocs.utils import meta

from kb.site import hooks
from kb.site.pages import (Html, anchor, badge, code, escaped, html_table, inline_code, link, page_file, paragraph,
                           row, table, text)
from kb.site.paths import relative, site_url
from tests.test_site_pages import markdown_renderer

ODD = ['**Bold** _x_ [a](javascript:alert(1)) <img src=x onerror=alert(1)> | # 1. {: .c } &amp; `t`',
       'say "hi" & <b>bye</b>', "C# ", "1984. A list?", "- item", '=== "tab"', "a\\b \\| c", "物体検出 <検出>"]


def same_bytes(rendered: str) -> str:
    """HTML with the two entities that only one side writes (for a quote, for a leading "=") as their characters."""
    return rendered.replace("&quot;", '"').replace("&#61;", "=")


def render_page(source: str, path: str = "paper/x.md") -> str:
    """What MkDocs does with a page's file around Markdown: front matter, then the hooks."""
    body, front = meta.get_data(source)
    page = SimpleNamespace(meta=front, file=SimpleNamespace(src_uri=path))
    markdown = hooks.on_page_markdown(body, page, None, None)
    return hooks.on_page_content(markdown_renderer()(markdown), page, None, None)


@pytest.mark.parametrize("value", ODD)
def test_escaped_text_is_what_markdown_makes_of_text(value):
    reference = re.fullmatch(r"<p>(.*)</p>", markdown_renderer()(text(value)), re.DOTALL).group(1)
    assert html.unescape(escaped(value)) == html.unescape(reference) == " ".join(value.split())
    assert same_bytes(escaped(value)) == same_bytes(reference)
    assert '"' not in escaped(value)


def test_tables_badges_code_and_links_are_what_markdown_makes_of_them():
    cells_md = [[link(text(v), relative("papers/index.md", "paper/x.md")), text(v), code(v)] for v in ODD]
    cells_md[0].append("**reproduced**{ .kb-badge .kb-ok }")
    cells_html = [[anchor(escaped(v), "paper/x.md"), escaped(v), inline_code(v)] for v in ODD]
    cells_html[0].append(badge("reproduced"))
    for cells in (*cells_md[1:], *cells_html[1:]):
        cells.append("")
    reference = markdown_renderer()(table(["A", "B", "C", "D"], cells_md))
    built = page_file("papers/index.md", "t", [Html(html_table(["A", "B", "C", "D"], [row(c) for c in cells_html]))])
    ours = re.search(r"<table>.*</table>", render_page(built, "papers/index.md"), re.DOTALL).group()
    # Markdown leaves a page's links for MkDocs to resolve (x.md); kb writes the address MkDocs makes of it.
    assert same_bytes(ours) == same_bytes(reference.replace('href="../paper/x.md"', 'href="../paper/x/"'))


def test_paragraphs_keep_their_line_breaks_and_class():
    reference = markdown_renderer()(f"one {text('<a>')}  \ntwo\n{{ .kb-headline }}")
    assert render_page(page_file("paper/x.md", "t", [paragraph("one " + escaped("<a>"), "", "two", css="kb-headline")])) \
        == reference


def test_markdown_and_html_keep_their_order_and_headings_stay_markdown():
    source = page_file("paper/x.md", "t", ["# Title", Html("<p>first</p>"), "## Notes\n\nA *note*.", Html("<p>second</p>"),
                                           "Last."])
    rendered = render_page(source)
    assert re.sub(r"<a class=\"headerlink\".*?</a>", "", rendered) == (
        '<h1 id="title">Title</h1>\n<p>first</p>\n<h2 id="notes">Notes</h2>\n<p>A <em>note</em>.</p>\n'
        "<p>second</p>\n<p>Last.</p>")
    only_markdown = page_file("paper/x.md", "t", ["# Only Markdown", "", "Text."])
    assert "kb_html" not in only_markdown and only_markdown.endswith("---\n\n# Only Markdown\n\nText.\n")


def test_site_links_are_relative_to_the_page():
    assert site_url("index.md") == "/" and site_url("papers/2.md") == "/papers/2/" and site_url("tag/x/index.md") == "/tag/x/"
    assert site_url("tag/物体/index.md") == "/tag/%E7%89%A9%E4%BD%93/" and site_url("figures/a.svg") == "/figures/a.svg"
    link_html = Html(anchor("p", "paper/x.md"))
    assert 'href="./paper/x/"' in page_file("index.md", "t", [link_html])
    assert 'href="../../../paper/x/"' in page_file("tag/x/2.md", "t", [link_html])
    # A field's double quote is an entity, so text that looks like a site link is left as it is.
    assert 'a=&quot;/b' in page_file("tag/x/2.md", "t", [Html(paragraph(escaped('a="/b')))])


@pytest.mark.parametrize("note", [
    "---\nkb_html: [1, 1, 1]\n---\n<p>raw</p>",
    "<table><tr><td>x</td></tr></table>",
    "kbhtml0123456789abcdefx1\n\n<p>kbhtml0123456789abcdefx1</p>",      # another process's placeholder
    "```\nan unclosed fence",
])
def test_no_note_passes_for_kb_html(note):
    source = page_file("paper/x.md", "t", ["# T", Html("<p>kb</p>"), note, Html("<p>kb again</p>")])
    rendered = render_page(source)
    assert "<p>raw</p>" not in rendered and "<table>" not in rendered and "<td>" not in rendered
    assert rendered.count("<p>kb</p>") == 1


def test_a_page_whose_lengths_do_not_hold_is_refused_in_one_line():
    source = page_file("paper/x.md", "t", ["# T", Html("<p>kb</p>"), "text"]).replace("kb_html: [", "kb_html: [900")
    with pytest.raises(PluginError, match=r"^paper/x\.md: its kb_html lengths do not match the page"):
        render_page(source)


def test_markdown_added_after_the_page_is_rendered_too():
    source = page_file("index.md", "t", ["# T", Html("<p>kb</p>"), "text"]) + "\n[More](more.md)\n"
    assert render_page(source, "index.md").endswith('<p>text</p>\n<p><a href="more.md">More</a></p>')


def test_the_jinja_cache_fills_in_the_docs_folder_and_stays_out_of_the_site(tmp_path):
    from kb.site.build import _mkdocs
    from tests.conftest import ROOT

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(page_file("index.md", "kb", ["# Home", Html(paragraph(anchor("home", "index.md")))]))
    _mkdocs(ROOT / "mkdocs.yml", docs, tmp_path / "site", dirty=False)
    assert len(list((docs / hooks.BYTECODE_CACHE).iterdir())) > 10
    assert not list((tmp_path / "site").rglob(hooks.BYTECODE_CACHE))
    assert '<p><a href="./">home</a></p>' in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")


def test_the_header_tabs_rendered_once_still_lead_to_each_section_from_every_page(tmp_path):
    import posixpath

    from kb.site.build import _mkdocs
    from tests.conftest import ROOT

    sections = {"index.md": "", "papers/index.md": "papers/", "tags/index.md": "tags/", "runners/index.md": "runners/",
                "runs/index.md": "runs/"}
    pages = [*sections, "papers/2.md", "paper/a.md", "paper/b.md", "tag/x/index.md", "tag/x/2.md", "run/r.md"]
    docs = tmp_path / "docs"
    for path in pages:
        (docs / path).parent.mkdir(parents=True, exist_ok=True)
        (docs / path).write_text(page_file(path, path, [f"# {path}"]), encoding="utf-8")
    _mkdocs(ROOT / "mkdocs.yml", docs, tmp_path / "site", dirty=False)
    for path in pages:
        address = site_url(path)
        built = (tmp_path / "site" / address.strip("/") / "index.html").read_text(encoding="utf-8")
        tabs = re.search(r'<nav class="md-tabs".*?</nav>', built, re.DOTALL).group()
        items = re.findall(r'<li class="([^"]*)">\s*<a href="([^"]*)"', tabs)
        reached = [posixpath.normpath(posixpath.join(address, href)).lstrip("/") for _, href in items]
        assert [f"{r}/" if r not in (".", "") else "" for r in reached] == list(sections.values()), (path, items)
        active = [href for css, href in items if "md-tabs__item--active" in css]
        assert len(active) == (1 if path in sections else 0), (path, items)
