"""Paper commands: add, import, sync, list, show, search, tag, remove, note, export bibtex."""

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from kb.cli.output import TERMINAL_ROWS, console, escape, is_terminal, paper_json, print_json, progress_bar, say, say_more, table

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def add(
    ids: Annotated[Optional[list[str]], typer.Argument(help="arXiv ids or URLs, any form.")] = None,
    from_file: Annotated[Optional[Path], typer.Option("--from", help="A file of ids, one per line.")] = None,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", "-t", help="Tag to add (repeatable).")] = None,
    slug: Annotated[Optional[str], typer.Option(help="Slug for a single new paper.")] = None,
    offline: Annotated[bool, typer.Option(help="Answer from the cache only; no network.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Add papers from arXiv (or refresh them), writing papers/<slug>/paper.yaml."""
    from kb.ingest.add import add_papers, read_id_file
    from kb.errors import BadInput, NotFound
    from kb.settings import load_settings

    raw = list(ids or []) + (read_id_file(from_file) if from_file else [])
    if not raw:
        raise BadInput("give arXiv ids (kb add 1506.02640) or --from FILE")
    result = add_papers(load_settings(), raw, tags=tag or [], slug=slug, offline=offline)
    if as_json:
        print_json({
            "added": [paper_json(p) for p in result.added],
            "updated": [paper_json(p) for p in result.updated],
            "not_found": result.not_found,
            "from_cache": result.from_cache,
        })
    else:
        out = console()
        for paper in result.added:
            out.print(f"added    {paper.key:<14} {paper.slug:<24} {escape(paper.title)}")
        for paper in result.updated:
            out.print(f"updated  {paper.key:<14} {paper.slug:<24} {escape(paper.title)}" + (f" (v{paper.version})" if paper.version else ""))
        if result.from_cache:
            console(stderr=True).print("note: answered from the local arXiv cache (offline or arXiv unreachable)")
    if result.not_found:
        raise NotFound(f"not found on arXiv: {', '.join(result.not_found)}")


def sync(as_json: JsonOpt = False) -> None:
    """Rebuild the catalog from papers/ (no network; idempotent)."""
    from kb.errors import KBError
    from kb.ingest.sync import sync as do_sync
    from kb.reader import prime_listing
    from kb.runs.registry import load_registry
    from kb.settings import load_settings

    settings = load_settings()
    with progress_bar("sync: papers/") as progress:
        report = do_sync(settings, progress=progress)
    prime_listing(settings)
    if as_json:
        print_json(report.__dict__)
    else:
        console().print(
            f"synced {report.papers} papers and {report.notes} notes from {settings.papers} "
            f"({report.added} new, {report.updated} changed, {report.removed} removed"
            + (f", {report.runs_imported} runs imported" if report.runs_imported else "")
            + (f", verdicts of {report.verdicts_updated} runs updated to the current claims" if report.verdicts_updated else "")
            + ")"
        )
        for problem in report.problems:
            console(stderr=True).print(f"problem: {escape(problem)}")
    runner_problems = load_registry(settings.runner_paths, cache_dir=settings.cache_dir).problems
    for problem in runner_problems:
        console(stderr=True).print(f"problem: {escape(problem)}")
    if report.problems:
        raise KBError(f"{len(report.problems)} file(s) in papers/ could not be loaded (listed above); the rest were synced")
    if runner_problems:
        raise KBError(f"{len(runner_problems)} runner package(s) could not be loaded (listed above); the catalog was synced")


def import_(
    paths: Annotated[list[Path], typer.Argument(help="Note files or folders.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help="Show what would happen; change nothing.")] = False,
    offline: Annotated[bool, typer.Option(help="Resolve titles against the catalog only.")] = False,
    add_missing: Annotated[bool, typer.Option("--add-missing", help="Add the papers arXiv's title search finds unambiguously, and link them.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import notes and posts (kb notes, Qiita/Zenn/Hatena exports, year reviews, reading lists), one note per paper."""
    from kb.errors import KBError
    from kb.ingest.notes import import_notes
    from kb.settings import load_settings

    with progress_bar("import: note files") as progress:
        report = import_notes(load_settings(), paths, dry_run=dry_run, offline=offline, add_missing=add_missing,
                              progress=progress)
    if as_json:
        print_json({k: [getattr(i, "__dict__", i) for i in v] if isinstance(v, list) else v for k, v in report.__dict__.items()})
    else:
        _print_import(report, dry_run)
    if report.problems:
        raise KBError(f"{len(report.problems)} problem(s), listed above; everything else "
                      + ("would be imported" if dry_run else "was imported"))


def _print_import(report, dry_run: bool) -> None:
    out = console()
    prefix = "would be " if dry_run else ""
    for item in report.imported:
        out.print(f"{prefix}{item.action:<9} {item.paper:<22} {escape(item.origin)}  [dim]({item.linked_by})[/dim]"
                  + (f"  {escape(_short(item.title or item.heading))}" if item.title or item.heading else "")
                  + (f"  [dim]mentions {', '.join(item.mentions)}[/dim]" if item.mentions else ""))
    for slug in report.papers_added:
        out.print(f"{prefix}added paper {slug} from arXiv")
    for item in report.unlinked:
        out.print(f"[yellow]not linked[/yellow] {escape(item.origin)}: {escape(_short(item.title or item.heading or '(no title)'))} — {escape(item.reason)}")
        for candidate in item.candidates:
            out.print(f"    [dim]candidate: {escape(candidate)}[/dim]")
    for item in report.skipped:
        out.print(f"[dim]skipped {escape(item)}[/dim]")
    for problem in report.problems:
        console(stderr=True).print(f"problem: {escape(problem)}", soft_wrap=True)
    counts = {a: sum(i.action == a for i in report.imported) for a in ("added", "updated", "unchanged")}
    out.print(
        f"{'dry run: ' if dry_run else ''}{counts['added']} added, {counts['updated']} updated, "
        f"{counts['unchanged']} unchanged, {len(report.unlinked)} not linked, {len(report.skipped)} non-paper posts skipped"
        + (f"; {report.addable} more would be linked with --add-missing" if report.addable else "")
    )


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


WideOpt = Annotated[bool, typer.Option("--wide", help="On a terminal, show long titles and text whole instead of cut to its width.")]


SHORT_LISTING = 500         # papers whose ids one query names (SQLite allows 32,766 parameters)
LIST_COLUMNS = ["slug", "id", "year", "★", "title", "tags", "notes", "runners"]
LIST_WHOLE = ("slug", "id", "year", "★", "notes", "runners")       # never cut on a terminal


def _list_row(paper, langs: dict[int, list[str]]) -> list:
    return [paper.slug, paper.key, paper.year, "★" * paper.star, paper.title, ",".join(paper.tags),
            ",".join(langs.get(paper.id, [])), ",".join(paper.runners)]


def list_(
    tag: Annotated[Optional[str], typer.Option(help="Only papers with this tag.")] = None,
    year: Annotated[Optional[int], typer.Option(help="Only papers from this year.")] = None,
    author: Annotated[Optional[str], typer.Option(help="Only papers with an author matching this.")] = None,
    lang: Annotated[Optional[str], typer.Option(help="Only papers with notes in this language.")] = None,
    sort: Annotated[str, typer.Option(help="added | year | title | slug")] = "added",
    reverse: Annotated[bool, typer.Option(help="Reverse the order.")] = False,
    limit: Annotated[Optional[int], typer.Option(min=1, help="At most this many.")] = None,
    star: Annotated[bool, typer.Option("--star", help="Only papers a note gave a ★.")] = False,
    show_all: Annotated[bool, typer.Option("--all", help=f"On a terminal, every paper (else the first {TERMINAL_ROWS}; a pipe gets all).")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """List papers in the catalog."""
    from kb.reader import open_catalog
    from kb.settings import load_settings

    terminal = is_terminal()
    with open_catalog(load_settings()) as catalog:
        # Unfiltered: the listing's lines as SQLite joins them (kept between commands, kb.listing); a
        # terminal is shown only its first rows, so only those are read.
        if not as_json and tag is None and author is None and lang is None and not star:
            wanted = limit or (None if show_all or not terminal else TERMINAL_ROWS)
            lines = catalog.listing_lines(year=year, sort=sort, reverse=reverse, limit=wanted)
            if lines and not terminal:
                sys.stdout.write("\t".join(LIST_COLUMNS) + "\n")
                sys.stdout.write(lines + "\n")
                return
            if lines:
                rows = [line.split("\t") for line in lines.split("\n")]
                total = len(rows) if limit or show_all else catalog.count_papers(year=year)
                table(f"{total} papers", LIST_COLUMNS, rows, whole=LIST_WHOLE, wide=wide)
                say_more(len(rows), total, "kb list", "paper", "first")
                return
        papers = catalog.list_papers(tag=tag, year=year, author=author, lang=lang, star=star, sort=sort, reverse=reverse,
                                     limit=limit, fields=None if as_json else ("slug", "key", "year", "title"))
        # A short listing asks for its own papers' languages; a long one reads them all at once.
        langs = catalog.note_languages([p.id for p in papers] if len(papers) <= SHORT_LISTING else None)
        flags = catalog.version_flags() if as_json else {}
    if as_json:
        print_json([paper_json(p, notes=langs.get(p.id, []), version_flag=flags.get(p.key)) for p in papers])
        return
    if not papers:
        say("no papers (add some with `kb add ID`, or `kb sync` to load papers/)")
        return
    # A terminal is not shown 100,000 rows: the first ones, and how to see the rest.
    shown = papers if show_all or limit or not terminal else papers[:TERMINAL_ROWS]
    table(f"{len(papers)} papers", LIST_COLUMNS, [_list_row(p, langs) for p in shown], whole=LIST_WHOLE, wide=wide)
    say_more(len(shown), len(papers), "kb list", "paper", "first")


def show(paper_ref: Annotated[str, typer.Argument(metavar="PAPER", help="Slug or any id form.")], wide: WideOpt = False,
         as_json: JsonOpt = False) -> None:
    """Show one paper: metadata, notes present, claims, links."""
    from kb.codelinks import code_links
    from kb.queries import paper_links
    from kb.reader import open_catalog
    from kb.settings import load_settings

    with open_catalog(load_settings()) as catalog:
        paper = catalog.get_paper(paper_ref)
        notes = catalog.notes_of(paper)
        flag = catalog.version_flags().get(paper.key)
    links = paper_links(paper)
    code = code_links(paper.code, [n.body for n in notes])
    if as_json:
        print_json(paper_json(paper, links=links, version_flag=flag, code=code, notes=[{"lang": n.lang, "title": n.title, "path": n.path, "source": n.source} for n in notes]))
        return
    say((paper.title, "bold"))
    say(f"{paper.key}" + (f"v{paper.version}" if paper.version else "") + f"  ·  slug {paper.slug}  ·  {paper.year or ''}  {paper.venue or ''}")
    say(", ".join(paper.authors))
    if paper.star:
        say("★" * paper.star + " (from your notes)")
    if flag:
        say((flag, "bold"), f" (kb refresh --ack {paper.slug} once the notes are checked)")
    if paper.tags:
        say("tags: " + ", ".join(paper.tags))
    if paper.categories:
        say("categories: " + ", ".join(paper.categories))
    for name, url in links.items():
        say(f"{name}: {url}")
    for entry in code:
        details = ", ".join(entry[k] for k in ("kind", "framework") if entry.get(k))
        say(f"code: {entry['url']}" + (f" ({details})" if details else ""))
    if paper.abstract or paper.summary:
        say("\n" + (paper.abstract or paper.summary))
    say("\nnotes: " + (", ".join(f"{n.lang} ({n.path})" for n in notes) if notes else "none"))
    if paper.claims:
        from kb.runs.verdict import unit_suffix

        say("")
        table("claims", ["metric", "claimed", "dataset", "source"],
              [[c["metric"], f"{c['value']:g}{unit_suffix(c.get('unit'))}", c["dataset"], c["source"]] for c in paper.claims],
              whole=("metric", "claimed", "dataset"), wide=wide)
    if paper.runners:
        say("runners: " + ", ".join(paper.runners) + f"  (kb reproduce {paper.runners[0]})")


def search(
    query: Annotated[list[str], typer.Argument(help="Words, Japanese or English.")],
    tag: Annotated[Optional[str], typer.Option(help="Only papers with this tag.")] = None,
    lang: Annotated[Optional[str], typer.Option(help="Only papers with notes in this language.")] = None,
    year: Annotated[Optional[int], typer.Option(help="Only papers from this year.")] = None,
    author: Annotated[Optional[str], typer.Option(help="Only papers with an author matching this.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many results.")] = 20,
    exact: Annotated[bool, typer.Option("--exact", help="Match the words as typed: no glossary expansion (物体検出 = object detection).")] = False,
    wide: WideOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Search titles, authors, abstracts and notes, across Japanese and English; best matches first."""
    from kb.reader import open_catalog
    from kb.search import load_glossary
    from kb.settings import load_settings

    settings = load_settings()
    glossary = None if exact else load_glossary(settings.papers, settings.cache_dir)
    with open_catalog(settings) as catalog:
        hits = catalog.search(" ".join(query), limit=limit, tag=tag, lang=lang, year=year, author=author, glossary=glossary)
    if as_json:
        print_json([{"slug": h.paper.slug, "key": h.paper.key, "title": h.paper.title, "year": h.paper.year,
                     "score": round(h.score, 4), "where": h.where,
                     "snippet": "".join(f"**{t}**" if m else t for t, m in h.snippet)} for h in hits])
        return
    if not hits:
        say("no matches")
        return
    if not is_terminal():
        table(None, ["rank", "slug", "id", "year", "title", "where", "snippet"],
              [[rank, h.paper.slug, h.paper.key, h.paper.year, h.paper.title, h.where, "".join(t for t, _ in h.snippet)]
               for rank, h in enumerate(hits, 1)])
        return
    for rank, hit in enumerate(hits, 1):
        # The names go first, so that a title cut to the terminal's width never cuts them.
        say(f"{rank:>2}. ", (f"{hit.paper.slug} · {hit.paper.key} · {hit.paper.year or ''}", "dim"), "  ",
            (hit.paper.title, "bold"), wide=wide)
        if hit.snippet:
            say("    ", (f"{hit.where}:", "dim"), " ", *((t, "reverse") if m else t for t, m in hit.snippet), wide=wide)


def tag(
    paper_ref: Annotated[str, typer.Argument(metavar="PAPER")],
    changes: Annotated[list[str], typer.Argument(metavar="+TAG|-TAG...", help="+name adds, -name removes.")],
    as_json: JsonOpt = False,
) -> None:
    """Add or remove tags: kb tag yolo +real-time -old."""
    from kb.ingest.edits import retag
    from kb.settings import load_settings

    paper = retag(load_settings(), paper_ref, changes)
    if as_json:
        print_json({"slug": paper.slug, "tags": paper.tags})
    else:
        console().print(f"{paper.slug}: {', '.join(paper.tags) or '(no tags)'}")


def remove(
    paper_ref: Annotated[str, typer.Argument(metavar="PAPER")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
    with_runs: Annotated[bool, typer.Option("--with-runs", help="Also delete its committed run exports (papers/<slug>/runs/*.json).")] = False,
) -> None:
    """Remove a paper and its folder in papers/ (asks first); its run exports stay unless --with-runs."""
    from kb.ingest.edits import remove_paper, run_exports
    from kb.db import session_scope
    from kb.errors import KBError
    from kb.queries import get_paper
    from kb.settings import load_settings

    settings = load_settings()
    with session_scope(settings) as session:
        paper = get_paper(paper_ref, session=session)
    exports = len(run_exports(settings, paper))
    runs = f"papers/{paper.slug}/runs/*.json"
    if not exports:
        question = f"remove {paper.slug} ({paper.title}) and papers/{paper.slug}/?"
    elif with_runs:
        question = f"remove {paper.slug} ({paper.title}) and papers/{paper.slug}/, with its {exports} committed run export(s) ({runs})?"
    else:
        question = f"remove {paper.slug} ({paper.title}) and papers/{paper.slug}/ except its {exports} committed run export(s) ({runs}; --with-runs deletes them too)?"
    if not yes and not typer.confirm(question, default=False):
        raise KBError("not removed")
    remove_paper(settings, paper_ref, with_runs=with_runs)
    if exports and not with_runs:
        console().print(f"removed {paper.slug}; kept its {exports} run export(s) in papers/{paper.slug}/runs/ (delete that folder to drop them)")
    else:
        console().print(f"removed {paper.slug}" + (f" and its {exports} run export(s)" if exports else ""))


def note(
    paper_ref: Annotated[str, typer.Argument(metavar="PAPER")],
    lang: Annotated[Optional[str], typer.Option(help="Language of the note (ja, en ...).")] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Open the note in $EDITOR, then re-import it.")] = False,
) -> None:
    """Print a paper's notes, or edit one with --edit."""
    from kb.errors import KBError, NotFound
    from kb.reader import open_catalog
    from kb.settings import load_settings

    settings = load_settings()
    with open_catalog(settings) as catalog:
        paper = catalog.get_paper(paper_ref)
        notes = [n for n in catalog.notes_of(paper) if lang is None or n.lang == lang]
    if edit:
        from kb.ingest.notes import sync_paper_notes

        path = settings.papers / (notes[0].path if notes else f"{paper.slug}/notes.{lang or 'ja'}.md")
        if not path.exists():
            path.write_text(f"---\npaper: \"{paper.key}\"\nlang: {lang or 'ja'}\n---\n## 概要\n\n", encoding="utf-8")
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        try:
            edited = subprocess.call([*shlex.split(editor), str(path)])
        except (ValueError, OSError) as exc:  # unbalanced quotes; not found or not executable
            reason = "not found" if isinstance(exc, FileNotFoundError) else getattr(exc, "strerror", None) or str(exc)
            raise KBError(f"the editor {editor!r} cannot be run ({reason.lower()}); set EDITOR to an editor on your "
                          f"PATH (e.g. EDITOR=nano); {path} is kept as it is") from None
        if edited != 0:
            raise KBError(f"the editor ({editor}) exited with an error; {path} is kept as it is")
        sync_paper_notes(settings, paper.slug)
        console().print(f"saved {path.relative_to(settings.papers)}")
        return
    if not notes:
        raise NotFound(f"{paper.slug} has no {lang + ' ' if lang else ''}notes; write one with `kb note {paper.slug} --edit`")
    if not is_terminal():
        # A pipe or a file gets the notes' Markdown as written, each under a line naming it.
        for item in notes:
            say(f"# {paper.slug} · {item.lang} · {item.path}\n\n{item.body.rstrip()}\n")
        return
    from rich.markdown import Markdown

    out = console()
    for item in notes:
        out.rule(f"{paper.slug} · {item.lang} · {item.path}")
        out.print(Markdown(item.body))


export_app = typer.Typer(rich_markup_mode=None, help="Export the catalog (bibtex), claims with results (model-index) or run records (kb runs export).",
                         no_args_is_help=True)


PapersArg = Annotated[Optional[list[str]], typer.Argument(metavar="[PAPER]...", help="Slugs or ids; all papers when none.")]
OutOpt = Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of stdout.")]


def _export(make, papers: list[str] | None, out: Path | None) -> None:
    """``make(refs, session=...)``'s text written to ``out``, or to stdout."""
    from kb.db import session_scope
    from kb.files import write_atomic
    from kb.settings import load_settings

    with session_scope(load_settings()) as session:
        text = make(papers or [], session=session)
    if out:
        write_atomic(out, text)
    else:
        typer.echo(text, nl=False)


@export_app.command("bibtex")
def export_bibtex(papers: PapersArg = None, out: OutOpt = None) -> None:
    """BibTeX with eprint/archivePrefix/primaryClass, stable keys."""
    from kb.bibtex import export_bibtex as make_bibtex

    _export(make_bibtex, papers, out)


@export_app.command("model-index")
def export_model_index(papers: PapersArg = None, out: OutOpt = None) -> None:
    """Claims and the best comparable runs as Hugging Face model-index YAML (the paper's and kb's apart)."""
    from kb.model_index import model_index

    _export(model_index, papers, out)


def register(app: typer.Typer) -> None:
    app.command()(add)
    app.command("import")(import_)
    app.command()(sync)
    app.command("list")(list_)
    app.command()(show)
    app.command()(search)
    app.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})(tag)
    app.command()(remove)
    app.command()(note)
    app.add_typer(export_app, name="export")
