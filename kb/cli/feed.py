"""The daily arXiv habit: ``kb feed``, ``kb triage``, ``kb review``, ``kb refresh``."""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kb.cli.output import console, print_json, progress_bar, say, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OfflineOpt = Annotated[bool, typer.Option(help="Answer from the feed cache only; no network.")]


def feed(
    categories: Annotated[Optional[list[str]], typer.Argument(
        metavar="[CATEGORY...]", help="arXiv categories (default KB_FEED_CATEGORIES, else cs.CV); `kb feed skip ID...` skips items.")] = None,
    since: Annotated[Optional[str], typer.Option(help="Also fill missed days from this date (YYYY-MM-DD), through the arXiv API.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also show decided items and papers you have.")] = False,
    offline: OfflineOpt = False,
    wide: Annotated[bool, typer.Option("--wide", help="On a terminal, show titles and reasons whole instead of cut to its width.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Today's new arXiv submissions, ranked by your catalog; decided items are not shown again."""
    from kb.feed.daily import parse_since, read_feed, skip
    from kb.settings import load_settings

    settings = load_settings()
    if categories and categories[0] == "skip":
        keys = skip(settings, categories[1:])
        if as_json:
            print_json({"skipped": keys})
        else:
            console().print(f"skipped {len(keys)}: {', '.join(keys)}")
        return
    with progress_bar("feed: announcements, then the ranking") as progress:
        report = read_feed(settings, categories or [], since=parse_since(since) if since else None,
                           show_all=show_all, offline=offline, progress=progress)
    if as_json:
        print_json({
            "categories": report.categories, "order": "ranked" if report.ranked else "announcement",
            "requests": report.requests, "from_cache": report.from_cache, "hidden": report.hidden,
            "items": [_item_json(entry) for entry in report.items],
        })
        return
    order = "ranked by your catalog" if report.ranked else "in announcement order (your catalog is empty, so nothing to rank by)"
    summary = (f"{', '.join(report.categories)}: {len(report.items)} items, {order}"
               + (f"; {report.hidden} decided or already yours hidden (--all shows them)" if report.hidden else ""))
    say(summary)
    if not report.items:
        say("nothing new (weekends and holidays have no announcements)")
        return
    rows = []
    for number, entry in enumerate(report.items, 1):
        item = entry.item
        rows.append([number, "-" if entry.score is None else f"{entry.score:.3f}", item.key, item.title,
                     ", ".join(item.authors[:4]) + (" et al." if len(item.authors) > 4 else ""),
                     "" if item.announce_type == "new" else item.announce_type,
                     "; ".join(entry.reasons + ([entry.note] if entry.note else []))])
    table(None, ["#", "score", "id", "title", "authors", "type", "why"], rows, whole=("#", "score", "id", "type"), wide=wide)


def _item_json(entry) -> dict:
    item = entry.item
    return {"key": item.key, "version": item.version, "title": item.title, "authors": item.authors,
            "categories": item.categories, "announce_type": item.announce_type, "announced": item.announced,
            "abstract": item.abstract, "url": f"https://arxiv.org/abs/{item.key}", "score": entry.score,
            "reasons": entry.reasons, "note": entry.note}


def triage(
    categories: Annotated[Optional[list[str]], typer.Argument(metavar="[CATEGORY...]", help="arXiv categories (default KB_FEED_CATEGORIES).")] = None,
    offline: OfflineOpt = False,
) -> None:
    """Go through today's ranked items full-screen: a add, * star, s skip, l later, o open, u undo, q quit."""
    from kb.errors import BadInput

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise BadInput("kb triage needs a terminal; in scripts use `kb feed --json`, `kb add ID` and `kb feed skip ID...`")
    from kb.cli.triage import TriageApp
    from kb.feed.daily import read_feed
    from kb.settings import load_settings

    settings = load_settings()
    report = read_feed(settings, categories or [], offline=offline)
    app = TriageApp(settings, report)
    app.run()
    counts: dict[str, int] = {}
    for taken in app.taken.values():
        counts[taken.event["action"]] = counts.get(taken.event["action"], 0) + 1
    console().print("triage: " + (", ".join(f"{n} {a}" for a, n in counts.items()) or "no decisions"))


def review(
    year: Annotated[int, typer.Argument(help="The year to review.")],
    by: Annotated[str, typer.Option(help="Group by month (read) or tag.")] = "month",
    published: Annotated[bool, typer.Option(help="The papers whose arXiv v1 or venue is of YEAR, instead of those read in YEAR.")] = False,
    lang: Annotated[str, typer.Option(help="ja or en: the post's language and the notes summarised.")] = "ja",
    starred: Annotated[bool, typer.Option(help="Only papers with a ★.")] = False,
    parts: Annotated[int, typer.Option(help="2 splits the post into 前編/後編 linking to each other.")] = 1,
    out: Annotated[Optional[Path], typer.Option(help="Write the post to this file (with --parts 2: FILE-1.md and FILE-2.md).")] = None,
) -> None:
    """Write a year-review post in Markdown from your notes: groups by month or tag, ★ first."""
    from kb.db import session_scope
    from kb.files import write_atomic
    from kb.review import part_names, write_review
    from kb.settings import load_settings

    settings = load_settings()
    files = part_names(year)
    if out is not None and parts == 2:
        files = (f"{out.stem}-1{out.suffix or '.md'}", f"{out.stem}-2{out.suffix or '.md'}")
    with session_scope(settings) as session:
        posts = write_review(settings, year, by=by, published=published, lang=lang, starred_only=starred,
                             parts=parts, part_files=files, session=session)
    if parts == 1 and out is None:
        typer.echo(posts[0], nl=False)
        return
    targets = [out] if parts == 1 else [(out.parent if out else Path.cwd()) / name for name in files]
    for target, post in zip(targets, posts):
        write_atomic(target, post)
        console().print(f"wrote {target}")


def refresh(
    papers: Annotated[Optional[list[str]], typer.Argument(metavar="[PAPER...]", help="Slugs or ids (default: every arXiv paper).")] = None,
    ack: Annotated[bool, typer.Option(help="Acknowledge: the notes of PAPER... hold for the current arXiv version.")] = False,
    offline: Annotated[bool, typer.Option(help="Answer from the arXiv cache only.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Refresh arXiv metadata in batches; flag papers whose notes were written for an older version."""
    from kb.errors import BadInput, NotFound
    from kb.settings import load_settings

    settings = load_settings()
    if ack:
        from kb.db import session_scope
        from kb.feed.versions import acknowledge
        from kb.queries import get_paper

        if not papers:
            raise BadInput("--ack needs the papers whose notes you checked: kb refresh --ack yolo")
        with session_scope(settings, write=True) as session:
            cleared = acknowledge(settings, [get_paper(ref, session=session).key for ref in papers], session=session)
        if as_json:
            print_json({"acknowledged": cleared})
        else:
            console().print(f"acknowledged {len(cleared)}: {', '.join(cleared) or 'none was flagged'}")
        return
    from kb.feed.refresh import refresh as do_refresh

    report = do_refresh(settings, papers or [], offline=offline)
    if as_json:
        print_json(report.__dict__)
    else:
        out = console()
        out.print(f"refreshed {len(report.refreshed)} papers" + (" (from the local arXiv cache)" if report.from_cache else ""))
        for slug, flag in report.flagged.items():
            out.print(f"{slug}: {flag} (read it, then `kb refresh --ack {slug}`)")
    if report.not_found:
        raise NotFound(f"not found on arXiv: {', '.join(report.not_found)}")


def register(app: typer.Typer) -> None:
    app.command()(feed)
    app.command()(triage)
    app.command()(review)
    app.command()(refresh)
