"""The site's pages of the daily habit: a review page per year, the reading log, and on each paper's
page its code links and a note when arXiv moved past the version its notes were written for."""

import re

from sqlmodel import Session

from kb.feed.decisions import reading_log
from kb.feed.versions import version_flags
from kb.review import read_entries, write_review, years_read
from kb.settings import Settings
from kb.site.pages import external, front, link, table, text
from kb.site.paths import paper_page, relative

REVIEWS = "reviews/index.md"
READING_LOG = "reading-log.md"
REVIEW_ENTRIES = 25         # papers on one page of a year's review (an entry is ~1.5 KB of HTML)


def review_page(year: int, number: int = 1) -> str:
    return f"review/{year}.md" if number == 1 else f"review/{year}-{number}.md"


def review_pages(year: int, post: str) -> dict[str, str]:
    """A year's review post (``kb review``) as pages of at most ``REVIEW_ENTRIES`` papers: a year of a
    thousand papers read is one post, but no page grows with it. A month continued on the next page
    repeats its heading there."""
    title, _, body = post.partition("\n")
    chunks: list[list[str]] = [[]]
    month, count = None, 0
    for block in re.split(r"\n(?=#{2,3} )", body):
        if block.startswith("## "):
            month = block
        elif block.startswith("### "):
            if count == REVIEW_ENTRIES:
                chunks.append([month] if month else [])
                count = 0
            count += 1
        chunks[-1].append(block)
    pages = {}
    for number, chunk in enumerate(chunks, 1):
        pager = "" if len(chunks) == 1 else "Pages: " + " · ".join(
            f"**{n}**" if n == number else link(str(n), relative(review_page(year, number), review_page(year, n)))
            for n in range(1, len(chunks) + 1)) + "\n"
        heading = title.lstrip("# ") + ("" if len(chunks) == 1 else f" ({number}/{len(chunks)})")
        pages[review_page(year, number)] = front(heading) + f"# {text(heading)}\n\n{pager}\n" + "\n".join(chunk) + "\n"
    return pages


def add_feed_pages(pages: dict[str, str], settings: Settings, *, session: Session) -> None:
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
        pages.update(review_pages(year, write_review(settings, year, session=session, entries=entries)[0]))
    pages["index.md"] = pages.get("index.md", "").rstrip("\n") + (
        f"\n\n{link('Year reviews', REVIEWS)} · {link('Reading log', READING_LOG)}\n")
    days = reading_log(session=session)
    pages[READING_LOG] = front("Reading log") + "# Reading log\n\nFeed items seen, added and starred per day (`kb feed`, `kb triage`).\n\n" + (
        table(["Day", "Seen", "Added", "Starred"], [[d.day, str(d.seen), str(d.added), str(d.starred)] for d in days])
        if days else "Nothing read through `kb feed` yet.") + "\n"
