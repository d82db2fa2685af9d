"""The site's pages of the daily habit: a review page per year, the reading log, and on each paper's
page its code links and a note when arXiv moved past the version its notes were written for."""

from sqlmodel import Session

from kb.feed.decisions import reading_log
from kb.feed.versions import version_flags
from kb.review import Entry, entry_heading, entry_items, note_summary, read_entries, review_groups, years_read
from kb.site.pages import (Html, anchor, escaped, external, external_anchor, front, link, page_file, paragraph, table,
                           text)
from kb.site.paths import paper_page

REVIEWS = "reviews/index.md"
READING_LOG = "reading-log.md"
REVIEW_ENTRIES = 25         # papers on one page of a year's review at most, so a page stays short to read
REVIEW_BYTES = 40_000       # estimated HTML of a review page's entries (``_html_bytes``): Material adds ~12 KB
PAGER_REACH = 2             # pages linked on either side of the current one (the first and the last always)


def review_page(year: int, number: int = 1) -> str:
    return f"review/{year}.md" if number == 1 else f"review/{year}-{number}.md"


def _html_bytes(part: str) -> int:
    """About the HTML a part of a review page makes on the site, table of contents included: ``Html``
    as it is; a heading of h bytes ~5 h + 150 (its id twice, the permalink, the contents entry; measured
    on the benchmark's pages), a note's paragraph at most ~1.3 times its Markdown (a bare URL becomes a
    link); the estimate errs high (+100, 1.5 times)."""
    size = len(part.encode())
    if isinstance(part, Html):
        return size
    return 5 * size + 250 if part.startswith("#") else 3 * size // 2


def _pager(year: int, number: int, count: int) -> Html:
    """Links to the first and last pages and to those within ``PAGER_REACH`` of ``number``: a pager of
    every page would grow with the year (at 10,000 papers read, 12 KB of HTML on each of 350 pages)."""
    shown = sorted({1, count, *range(max(1, number - PAGER_REACH), min(count, number + PAGER_REACH) + 1)})
    items, previous = [], 0
    for n in shown:
        if n > previous + 1:
            items.append("…")
        items.append(f"<strong>{n}</strong>" if n == number else anchor(str(n), review_page(year, n)))
        previous = n
    return paragraph("Pages: " + " · ".join(items))


def _entry_parts(entry: Entry, lang: str) -> list[str]:
    """An entry as the site shows it: its heading (Markdown, for the table of contents), its list as
    ``Html``, and the summary from the user's note as Markdown."""
    items = "".join(f"<li>{escaped(label)}: " + " ".join(
        x for x in (external_anchor(escaped(url), url) if url else "", escaped(after)) if x) + "</li>\n"
        for label, url, after in entry_items(entry, lang))
    summary = note_summary(entry.notes, lang)
    return [f"### {text(entry_heading(entry))}", *([Html(f"<ul>\n{items}</ul>")] if items else []),
            *([summary] if summary else [])]


def review_pages(year: int, title: str, groups: list[tuple[str, list[Entry]]], lang: str) -> dict[str, str]:
    """A year's review (``kb.review.review_groups``) as pages of at most ``REVIEW_ENTRIES`` papers and
    about ``REVIEW_BYTES`` of HTML: a year of ten thousand papers read is one post, but no page grows
    with it. A paper's entry is never cut; one larger than the budget has a page to itself. A month
    continued on the next page repeats its heading there. Each page links the page where each month
    starts, so any part of the year is a click away whatever the pager shows."""
    chunks: list[list[str]] = [[]]
    starts: dict[str, int] = {}        # each group's (month's) first page
    count, size = 0, 0
    for name, entries in groups:
        month = f"## {text(name)}"
        chunks[-1].append(month)
        size += _html_bytes(month)
        for entry in entries:
            parts = _entry_parts(entry, lang)
            cost = sum(map(_html_bytes, parts))
            if count == REVIEW_ENTRIES or (count and size + cost > REVIEW_BYTES):
                if chunks[-1][-1] is month:         # a month that starts here starts on the next page
                    chunks[-1].pop()
                chunks.append([month])
                count, size = 0, _html_bytes(month)
            chunks[-1] += parts
            starts.setdefault(name, len(chunks))
            count, size = count + 1, size + cost
    if len(chunks) == 1:
        return {review_page(year): page_file(review_page(year), title, [f"# {text(title)}", *chunks[0]])}
    months = paragraph(" · ".join(anchor(escaped(name), review_page(year, start)) for name, start in starts.items()))
    pages = {}
    for number, chunk in enumerate(chunks, 1):
        path, heading = review_page(year, number), f"{title} ({number}/{len(chunks)})"
        pager = _pager(year, number, len(chunks))
        pages[path] = page_file(path, heading, [f"# {text(heading)}", pager, months, *chunk])
    return pages


def add_feed_pages(pages: dict[str, str], *, session: Session) -> None:
    """Add the review and reading-log pages to ``pages``, and code links and version flags to paper pages."""
    flags = version_flags(session=session)
    entries = read_entries(session=session)     # each paper's notes and code links, for its page and its review
    for entry in entries:
        paper = entry.paper
        page = paper_page(paper.slug)
        if page not in pages:
            continue
        extra = []
        if paper.key in flags:
            extra.append(f'!!! warning "New arXiv version"\n    {text(flags[paper.key])}.\n')
        links = entry.code
        if links:
            extra.append("## Code\n\n" + "\n".join(
                f"- {external(c['url'])}" + "".join(f" · {text(c[k])}" for k in ("kind", "framework") if c.get(k))
                for c in links) + "\n")
        if extra:
            pages[page] = pages[page].rstrip("\n") + "\n\n" + "\n".join(extra)
    years = years_read(entries)
    rows = [[link(str(year), f"../{review_page(year)}")] for year in years]
    pages[REVIEWS] = front("Reviews") + "# Reviews\n\nOne post per year of the papers read in it (`kb review YEAR`).\n\n" + (
        table(["Year"], rows) if rows else "No papers yet.") + f"\n\n{link('Reading log', '../' + READING_LOG)}\n"
    for year in years:
        pages.update(review_pages(year, *review_groups(year, session=session, entries=entries), "ja"))
    pages["index.md"] = pages.get("index.md", "").rstrip("\n") + (
        f"\n\n{link('Year reviews', REVIEWS)} · {link('Reading log', READING_LOG)}\n")
    days = reading_log(session=session)
    pages[READING_LOG] = front("Reading log") + "# Reading log\n\nFeed items seen, added and starred per day (`kb feed`, `kb triage`).\n\n" + (
        table(["Day", "Seen", "Added", "Starred"], [[d.day, str(d.seen), str(d.added), str(d.starred)] for d in days])
        if days else "Nothing read through `kb feed` yet.") + "\n"
