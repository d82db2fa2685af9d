"""The site's pages of the daily habit: a review page per year, the reading log, and on each paper's
page its code links and a note when arXiv moved past the version its notes were written for."""

from sqlmodel import Session, select

from kb.codelinks import code_links
from kb.feed.decisions import reading_log
from kb.feed.versions import version_flags
from kb.models import Paper
from kb.queries import notes_of
from kb.review import write_review, years_read
from kb.settings import Settings
from kb.site.pages import external, front, link, table, text
from kb.site.paths import paper_page

REVIEWS = "reviews/index.md"
READING_LOG = "reading-log.md"


def review_page(year: int) -> str:
    return f"review/{year}.md"


def add_feed_pages(pages: dict[str, str], settings: Settings, *, session: Session) -> None:
    """Add the review and reading-log pages to ``pages``, and code links and version flags to paper pages."""
    flags = version_flags(session=session)
    for paper in session.exec(select(Paper)):
        page = paper_page(paper.slug)
        if page not in pages:
            continue
        extra = []
        if paper.key in flags:
            extra.append(f'!!! warning "New arXiv version"\n    {text(flags[paper.key])}.\n')
        links = code_links(paper.code, [n.body for n in notes_of(paper, session=session)])
        if links:
            extra.append("## Code\n\n" + "\n".join(
                f"- {external(c['url'])}" + "".join(f" · {text(c[k])}" for k in ("kind", "framework") if c.get(k))
                for c in links) + "\n")
        if extra:
            pages[page] = pages[page].rstrip("\n") + "\n\n" + "\n".join(extra)
    years = years_read(session=session)
    rows = [[link(str(year), f"../{review_page(year)}")] for year in years]
    pages[REVIEWS] = front("Reviews") + "# Reviews\n\nOne post per year of the papers read in it (`kb review YEAR`).\n\n" + (
        table(["Year"], rows) if rows else "No papers yet.") + f"\n\n{link('Reading log', '../' + READING_LOG)}\n"
    for year in years:
        post = write_review(settings, year, session=session)[0]
        pages[review_page(year)] = front(post.splitlines()[0].lstrip("# ")) + post
    pages["index.md"] = pages.get("index.md", "").rstrip("\n") + (
        f"\n\n{link('Year reviews', REVIEWS)} · {link('Reading log', READING_LOG)}\n")
    days = reading_log(session=session)
    pages[READING_LOG] = front("Reading log") + "# Reading log\n\nFeed items seen, added and starred per day (`kb feed`, `kb triage`).\n\n" + (
        table(["Day", "Seen", "Added", "Starred"], [[d.day, str(d.seen), str(d.added), str(d.starred)] for d in days])
        if days else "Nothing read through `kb feed` yet.") + "\n"
