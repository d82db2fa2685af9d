"""The site's year-review pages (kb/site/feed_pages.py): cut by estimated size, never inside an entry;
headings and notes Markdown, the rest HTML escaped as kb's other pages escape it.

Sizes are hand-computed from ``_html_bytes``'s rule (HTML as it is, a heading 5 bytes a byte + 250).
An entry ``P000`` with one author of k bytes and an arXiv id is the heading ``### P000 (2020/1)``
(17 bytes: 335) and the list (written out in ``listed``) of 124 + k bytes: with k = 1,341, 1,800 in all.
A month heading ``## 2020/1`` (9 bytes) costs 295.
"""

import re
from datetime import datetime, timezone

from kb.models import Note, Paper
from kb.review import Entry
from kb.site.feed_pages import REVIEW_BYTES, _entry_parts, _html_bytes, review_pages

ENTRY, MONTH = 1800, 295
AUTHOR = "X" * 1341


def entry(n: int, month: int = 1, author: str = AUTHOR, **fields) -> Entry:
    notes = fields.pop("notes", [])
    paper = Paper(key=f"2001.{n:05d}", slug=f"p{n}", title=fields.pop("title", f"P{n:03d}"), authors=[author],
                  added=datetime(2020, month, 1, tzinfo=timezone.utc), **fields)
    return Entry(paper, f"2020-{month:02d}", False, notes)


def listed(n: int, author: str = AUTHOR) -> str:
    url = f"https://arxiv.org/abs/2001.{n:05d}"
    return f'<ul>\n<li>著者: {author}</li>\n<li>arXiv: <a href="{url}">{url}</a></li>\n</ul>'


def papers_on(page: str) -> list[str]:
    return re.findall(r"^### (P\d+)", page, re.M)


def year(months: dict[int, list[Entry]]) -> dict[str, str]:
    groups = [(f"2020/{m}", entries) for m, entries in months.items()]
    return review_pages(2020, "2020年に読んだ論文まとめ", groups, "ja")


def test_an_entry_is_its_heading_its_list_as_html_and_the_size_is_as_computed_by_hand():
    parts = _entry_parts(entry(0), "ja")
    assert parts == ["### P000 (2020/1)", listed(0)] and len(listed(0).encode()) == 124 + len(AUTHOR)
    assert sum(map(_html_bytes, parts)) == ENTRY and _html_bytes("## 2020/1") == MONTH


def test_pages_are_cut_where_the_next_entry_would_pass_the_budget():
    assert REVIEW_BYTES == 40_000
    # Page 1: 295 + 22 * 1,800 = 39,895; a 23rd entry would make 41,695. Page 2 starts with the month
    # again, the same. 50 entries: 22, 22, 6.
    pages = year({1: [entry(n) for n in range(50)]})
    assert list(pages) == ["review/2020.md", "review/2020-2.md", "review/2020-3.md"]
    on = [papers_on(page) for page in pages.values()]
    assert [len(p) for p in on] == [22, 22, 6]
    assert sum(on, []) == [f"P{n:03d}" for n in range(50)]          # every entry once, in order
    assert all(page.count("## 2020/1\n") == 1 for page in pages.values())     # January continues on each page
    assert all(listed(n) in pages["review/2020-3.md"] for n in range(44, 50))


def test_at_most_25_papers_a_page_however_small():
    pages = year({1: [entry(n, author="A") for n in range(30)]})
    assert [len(papers_on(page)) for page in pages.values()] == [25, 5]


def test_an_entry_larger_than_the_budget_has_a_page_to_itself_and_is_never_cut():
    big = "Y" * REVIEW_BYTES
    pages = year({1: [entry(0), entry(1, author=big), entry(2)]})
    assert [papers_on(page) for page in pages.values()] == [["P000"], ["P001"], ["P002"]]
    assert listed(1, big) in pages["review/2020-2.md"]


def test_a_month_that_would_start_at_the_foot_of_a_page_starts_on_the_next():
    pages = year({1: [entry(n) for n in range(22)], 2: [entry(n, 2) for n in range(22, 25)]})
    first, second = pages.values()
    assert "## 2020/2" not in first and second.count("## 2020/2") == 1 and "## 2020/1" not in second
    assert papers_on(second) == ["P022", "P023", "P024"]


def test_the_pager_links_the_first_and_last_pages_and_two_either_side():
    pages = year({1: [entry(n) for n in range(22 * 20)]})      # 20 full pages
    assert len(pages) == 20
    up = "../../review/"          # page_file makes the site's root links relative to review/2020-7/
    pager = next(line for line in pages["review/2020-7.md"].splitlines() if line.startswith("<p>Pages:"))
    assert pager == (f'<p>Pages: <a href="{up}2020/">1</a> · … · <a href="{up}2020-5/">5</a> · '
                     f'<a href="{up}2020-6/">6</a> · <strong>7</strong> · <a href="{up}2020-8/">8</a> · '
                     f'<a href="{up}2020-9/">9</a> · … · <a href="{up}2020-20/">20</a></p>')
    assert "# 2020年に読んだ論文まとめ (7/20)" in pages["review/2020-7.md"]


def test_a_short_year_is_one_page_without_a_pager():
    pages = year({1: [entry(0)]})
    assert list(pages) == ["review/2020.md"] and "Pages:" not in pages["review/2020.md"]


def test_user_text_is_escaped_as_elsewhere_and_the_note_stays_markdown():
    note = Note(paper_id=1, lang="ja", body="## 概要\n\n**太字** の要約 https://example.com/x",
                path="p/notes.ja.md", content_hash="")
    item = entry(0, author="A <b>&", title="<script>*x*", venue="CVPR 2016",
                 code=[{"url": "javascript:alert(1)", "kind": "official", "framework": "PyTorch"}], notes=[note])
    heading, html, summary = _entry_parts(item, "ja")
    assert heading == r"### &lt;script&gt;\*x\* (2020/1)"
    assert html == ('<ul>\n<li>著者: A &lt;b&gt;&amp;</li>\n<li>会議: CVPR 2016</li>\n'
                    '<li>arXiv: <a href="https://arxiv.org/abs/2001.00000">https://arxiv.org/abs/2001.00000</a></li>\n'
                    '<li>実装: <a href="">javascript:alert(1)</a> (公式, PyTorch)</li>\n</ul>')
    assert summary == "**太字** の要約 https://example.com/x"


def test_a_note_that_opens_a_fence_keeps_the_entries_after_it_as_mkdocs_renders_the_page():
    import types

    from mkdocs.utils.meta import get_data

    from kb.site import hooks
    from tests.test_site_pages import markdown_renderer

    note = Note(paper_id=1, lang="ja", body="```\nunclosed", path="p/notes.ja.md", content_hash="")
    source = year({1: [entry(0, notes=[note]), entry(1)]})["review/2020.md"]
    markdown, meta = get_data(source)         # as MkDocs reads a page's front matter
    page = types.SimpleNamespace(meta=meta, file=types.SimpleNamespace(src_uri="review/2020.md"))
    rendered = markdown_renderer()(hooks.on_page_markdown(markdown, page, None, None))
    html = hooks.on_page_content(rendered, page, None, None)
    assert html.count("<h3") == 2 and listed(1) in html and "kbhtml" not in html


def test_each_page_links_the_page_where_each_month_starts():
    # January's 30: 22 on page 1, 8 on page 2 (14,695), then February's heading (14,990) and 13 of its
    # entries (38,390); page 3: February's other 17 (30,895), March's heading and 4 of its (38,390);
    # March's other 26 on pages 4 and 5.
    pages = year({m: [entry(30 * (m - 1) + n, m) for n in range(30)] for m in (1, 2, 3)})
    assert [len(papers_on(page)) for page in pages.values()] == [22, 21, 21, 22, 4]
    up = "../../review/"
    months = (f'<p><a href="{up}2020/">2020/1</a> · <a href="{up}2020-2/">2020/2</a> · '
              f'<a href="{up}2020-3/">2020/3</a></p>')
    assert all(months in page for page in pages.values())
