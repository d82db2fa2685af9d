"""The site's year-review pages (kb/site/feed_pages.py): cut by estimated size, never inside an entry.

Sizes are hand-computed from ``_html_bytes``'s rule (5 bytes a heading byte + 250, 1.5 a body byte):
an entry ``### Pnnn (2020/1)`` (17 bytes) over 1,000 bytes of body costs 85 + 250 + 1,500 = 1,835;
the month heading ``## 1月`` (7 bytes, no body) 285; the empty stretch before it 250.
"""

import re

from kb.site.feed_pages import REVIEW_BYTES, review_pages

ENTRY = 1835
MONTH = 285
LEAD = 250


def entry(n: int, month: int = 1, body: int = 998) -> str:
    return f"### P{n:03d} (2020/{month})\n\n" + "a" * body + "\n"     # the body: "\n", the text, "\n"


def post(months: dict[int, list[str]]) -> str:
    return "# 2020年に読んだ論文\n\n" + "\n".join(f"## {m}月\n\n" + "\n".join(entries) for m, entries in months.items())


def papers_on(page: str) -> list[str]:
    return re.findall(r"^### (P\d+)", page, re.M)


def test_the_estimate_agrees_with_the_hand_computed_sizes():
    from kb.site.feed_pages import _html_bytes

    assert _html_bytes(entry(7)[:-1] + "\n") == ENTRY       # as the post is split: one line end kept
    assert _html_bytes("## 1月\n") == MONTH and _html_bytes("") == LEAD


def test_pages_are_cut_where_the_next_entry_would_pass_the_budget():
    assert REVIEW_BYTES == 40_000
    # Page 1: 250 + 285 + 21 * 1835 = 39,070; a 22nd entry would make 40,905. Page 2 starts with the
    # month again: 285 + 21 * 1835 = 38,820. 50 entries: 21, 21, 8.
    pages = review_pages(2020, post({1: [entry(n) for n in range(50)]}))
    assert list(pages) == ["review/2020.md", "review/2020-2.md", "review/2020-3.md"]
    on = [papers_on(page) for page in pages.values()]
    assert [len(p) for p in on] == [21, 21, 8]
    assert sum(on, []) == [f"P{n:03d}" for n in range(50)]          # every entry once, in order
    assert all("## 1月" in page for page in pages.values())           # January continues on each page


def test_an_entry_larger_than_the_budget_has_a_page_to_itself_and_is_never_cut():
    big = entry(1, body=REVIEW_BYTES)
    pages = review_pages(2020, post({1: [entry(0), big, entry(2)]}))
    assert [papers_on(page) for page in pages.values()] == [["P000"], ["P001"], ["P002"]]
    assert "a" * REVIEW_BYTES in pages["review/2020-2.md"]


def test_a_month_that_would_start_at_the_foot_of_a_page_starts_on_the_next():
    # January's 21 entries fill page 1 (39,070); "## 2月" would fit (39,355) but not its first entry.
    pages = review_pages(2020, post({1: [entry(n) for n in range(21)], 2: [entry(n, 2) for n in range(21, 25)]}))
    first, second = pages.values()
    assert "## 2月" not in first and second.count("## 2月") == 1 and "## 1月" not in second
    assert papers_on(second) == ["P021", "P022", "P023", "P024"]


def test_the_pager_links_the_first_and_last_pages_and_two_either_side():
    pages = review_pages(2020, post({1: [entry(n) for n in range(21 * 20)]}))      # 20 full pages
    assert len(pages) == 20
    pager = next(line for line in pages["review/2020-7.md"].splitlines() if line.startswith("Pages:"))
    assert pager == ("Pages: [1](2020.md) · … · [5](2020-5.md) · [6](2020-6.md) · **7** · [8](2020-8.md) · "
                     "[9](2020-9.md) · … · [20](2020-20.md)")
    first = next(line for line in pages["review/2020.md"].splitlines() if line.startswith("Pages:"))
    assert first == "Pages: **1** · [2](2020-2.md) · [3](2020-3.md) · … · [20](2020-20.md)"
    assert "(7/20)" in pages["review/2020-7.md"]


def test_a_short_year_is_one_page_without_a_pager():
    pages = review_pages(2021, "# 2021\n\n## 1月\n\n### One (2021/1)\n")
    assert list(pages) == ["review/2021.md"] and "Pages:" not in pages["review/2021.md"]
