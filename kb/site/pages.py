"""The site's pages, generated from a catalog snapshot: ``generate(snapshot)``.

Pure: one snapshot gives the same pages byte for byte; nothing here reads the catalog, the clock
or the disk. Everything people wrote is user content. Notes, Markdown by intent, keep their
formatting, and the site's Markdown extension (kb/site/safe_markdown.py) makes any raw HTML,
script URL or event attribute in them inert. What kb builds around them (tables, run lists,
listings, links) is written as HTML here (``Html``), the HTML Markdown would have made of it, and
reaches the page past Markdown (``page_file``, kb/site/hooks.py): Python-Markdown costs ~15 ms a paper
page and ~100 ms a listing otherwise. Plain fields (titles, authors, tags, errors) go through
``escaped`` there, and through ``text`` in the Markdown that is left (headings, prose), so HTML and
Markdown in them show as the characters they are. Headings stay Markdown: MkDocs' table of
contents and anchors come from them.

Listings are paginated, so no page grows with the catalog.
"""

import html
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from kb.runs.headline import Headline, headline, labels, main_metric
from kb.runs.verdict import override_flags, unit_suffix
from kb.site.claims import claim_results
from kb.site.figures import FigurePlan, data_label, plan
from kb.site.paths import listing, paper_page, relative, run_page, runner_folder, site_url, tag_folder
from kb.site.safe_markdown import safe_url
from kb.site.snapshot import NoteView, PaperView, RunnerView, RunView, Snapshot

PER_PAGE = 100          # rows of a paginated listing (a row is ~0.4 KB of HTML)
RECENT = 10             # recently added papers and latest runs on the home page
HOME_RUNNERS = 25       # runners in the home page's reproduction status (the runners listing has them all)
PAPER_RUNS = 20         # runs in a paper page's history (the runner pages have them all)
PAPER_CURVES = 3        # training-curve figures on a paper page
LANGUAGES = {"ja": "日本語", "en": "English"}

# Characters that mean something to Markdown anywhere in a line, and at the start of one.
_INLINE_SPECIALS = re.compile(r"([\\`*_{}\[\]|])")
_LINE_START = re.compile(r"^([#+\-])|^(\d+)\.|^=")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?=\s|$)")
_URL_SAFE = ":/?#[]@!$&*+,;=%~._-"     # what a link's target keeps unquoted
_BADGES = {"reproduced": "ok", "succeeded": "ok", "not reproduced": "bad", "failed": "bad", "regression": "bad",
           "interrupted": "warn", "running": "warn", "queued": "warn"}


# -- Markdown building blocks ---------------------------------------------------------------


def _escape_line_start(match: re.Match) -> str:
    if match.group(1):
        return "\\" + match.group(1)
    return match.group(2) + "\\." if match.group(2) else "&#61;"     # "1984." is no list; "===" no tab


def text(value: Any) -> str:
    """Plain text as inline Markdown that shows exactly that text (one line, nothing active).

    HTML's three characters become entities; Markdown's are backslash-escaped: inline ones
    everywhere, block ones (heading, quote, list, tab ``===``) where the text would start a line,
    and a heading's closing hashes at its end. Escaping no more than that keeps MkDocs fast."""
    flat = " ".join(str(value).split()).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _INLINE_SPECIALS.sub(r"\\\1", flat)
    flat = _LINE_START.sub(_escape_line_start, flat)
    return re.sub(r"#+$", lambda hashes: "\\#" * len(hashes.group()), flat)


def code(value: Any) -> str:
    """Inline code showing ``value`` exactly (code spans take no escapes; only backticks matter)."""
    flat = " ".join(str(value).split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    return f"{ticks} {flat} {ticks}" if "`" in flat else f"{ticks}{flat}{ticks}"


def paragraphs(value: str) -> str:
    return "\n\n".join(text(p) for p in re.split(r"\n\s*\n", value.strip()) if p.strip())


def link(label: str, target: str) -> str:
    """``label`` is Markdown already; ``target`` a relative path or an http(s) URL."""
    return f"[{label}]({quote(target, safe=_URL_SAFE)})"


def external(url: str | None) -> str:
    """A user-given URL as a link when it is http(s), as text otherwise."""
    if not url:
        return ""
    if re.match(r"https?://", url.strip(), re.IGNORECASE):
        return link(text(url), url.strip())
    return text(url)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (the feed pages'); kb's own tables are ``html_table``."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in cells) + " |" for cells in rows]
    return "\n".join(lines)


def code_block(value: str, lang: str = "") -> str:
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    return f"{fence}{lang}\n{value}\n{fence}"



def front(title: str, *, toc: bool = True, html_parts: list[int] | None = None) -> str:
    """Front matter: MkDocs templates print ``title`` as HTML, so it is escaped here; Material's
    own search indexing is off (kb writes the index, kb/site/search_index.py); the navigation
    sidebar is hidden (the header's tabs have it), and the table of contents where a page has
    no sections, so tables get the page's width. ``html_parts``: see ``page_file``."""
    escaped_title = json.dumps(html.escape(" ".join(title.split())), ensure_ascii=False)
    hidden = "\n  - navigation" + ("" if toc else "\n  - toc")
    parts = f"kb_html: {html_parts}\n" if html_parts else ""
    return f"---\ntitle: {escaped_title}\nsearch:\n  exclude: true\nhide:{hidden}\n{parts}---\n\n"


def measured(value: float) -> str:
    """A measured number as a listing shows it: four significant digits (94.3, 0.9612, 301.8)."""
    return f"{float(value):.4g}"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


def note_markdown(body: str, top: int = 3) -> str:
    """A note's Markdown with its headings moved down so the highest is at level ``top`` (its
    sections are kept, under the page's own headings); fenced code is left as it is."""
    lines = body.splitlines()
    fence, levels, headings = None, [], []
    for index, line in enumerate(lines):
        opened = _FENCE.match(line)
        if fence is not None:
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence):
                fence = None
            continue
        if opened:
            fence = opened.group(1)
            continue
        heading = _HEADING.match(line)
        if heading:
            levels.append(len(heading.group(1)))
            headings.append(index)
    shift = top - min(levels, default=top)
    for index in headings:
        marks = _HEADING.match(lines[index]).group(1)
        lines[index] = "#" * min(6, len(marks) + shift) + lines[index].lstrip(" ")[len(marks):]
    return "\n".join(lines)


def _language_order(lang: str) -> tuple[int, str]:
    """Japanese first, then English, then the rest by code."""
    order = list(LANGUAGES)
    return (order.index(lang) if lang in order else len(order), lang)


def indent(markdown: str) -> str:
    return "\n".join("    " + line if line.strip() else "" for line in markdown.splitlines())


# -- HTML building blocks: what Markdown would have made of the same page -------------------


class Html(str):
    """A block of HTML built here, every value in it escaped: ``page_file`` passes it to the site as it
    is, past Markdown. Its links to the site's pages and files start at the site's root
    (``site_url``: ``href="/paper/yolo/"``) until ``page_file`` makes them relative to the page."""


def escaped(value: Any) -> str:
    """Plain text as HTML that shows exactly that text, on one line (what Markdown makes of ``text``).
    Its double quotes are entities too, so ``="/`` in a block is always one of ``anchor``'s links."""
    return html.escape(" ".join(str(value).split()), quote=False).replace('"', "&quot;")


def anchor(label: str, path: str) -> str:
    """A link to a generated page or file; ``label`` is HTML already."""
    return f'<a href="{site_url(path)}">{label}</a>'


def external_anchor(label: str, url: str) -> str:
    """A link to an http(s) URL, as ``link`` and the site's Markdown extension make it (an unsafe
    scheme gives an empty target)."""
    target = quote(url, safe=_URL_SAFE) if safe_url(url) else ""
    return f'<a href="{html.escape(target)}">{label}</a>'


def inline_code(value: Any) -> str:
    """``code`` as HTML."""
    return f"<code>{escaped(value)}</code>"


def badge(word: str) -> str:
    kind = "warn" if word.startswith("partly") else _BADGES.get(word, "na")
    return f'<strong class="kb-badge kb-{kind}">{escaped(word)}</strong>' if word else ""


def row(cells: list[str]) -> str:
    """A table row; cells are HTML."""
    return "<tr>\n" + "".join(f"<td>{cell.strip()}</td>\n" for cell in cells) + "</tr>\n"


def html_table(header: list[str], rows: list[str]) -> Html:
    """A table with a header (HTML cells) and rows made by ``row``."""
    head = "".join(f"<th>{cell}</th>\n" for cell in header)
    return Html(f"<table>\n<thead>\n<tr>\n{head}</tr>\n</thead>\n<tbody>\n{''.join(rows)}</tbody>\n</table>")


def paragraph(*lines: str, css: str = "") -> Html:
    """A paragraph of HTML lines, broken where Markdown's two trailing spaces would break them."""
    opening = f'<p class="{css}">' if css else "<p>"
    return Html(opening + "<br />\n".join(line for line in lines if line) + "</p>")


def with_unit(value: Any, unit: str | None) -> str:
    """A claimed value with its unit: "63.4%", "45 frames/s"."""
    suffix = unit_suffix(unit)
    return number(float(value)) + (" " if suffix.startswith(" ") else "") + escaped(suffix)


def number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else escaped(value)


def page_file(path: str, title: str, parts: list[str], *, toc: bool = True) -> str:
    """A page's file: front matter, then its parts (Markdown, or ``Html``) a blank line apart.

    The front matter's ``kb_html`` gives the lengths of the page's stretches after it, in turn
    Markdown, HTML, Markdown, ...; kb/site/hooks.py renders the Markdown ones and puts the HTML
    ones between them as they are. Only front matter (escaped titles, never user text) says
    where HTML is, so nothing a note holds can pass for it. Line ends are the ``\\n`` MkDocs reads
    (it opens pages in text mode), so the lengths hold."""
    prefix = "../" * site_url(path).count("/", 1) or "./"      # from the page's folder to the site's root
    stretches = [""]
    for part in parts:
        if isinstance(part, Html):
            stretches += [part.replace('="/', '="' + prefix), "\n\n"]
        elif part:
            stretches[-1] += part.replace("\r\n", "\n").replace("\r", "\n") + "\n\n"
    stretches[-1] = stretches[-1][:-1]                  # the file ends with one line end
    if len(stretches) == 1:
        return front(title, toc=toc) + stretches[0]
    return front(title, toc=toc, html_parts=[len(stretch) for stretch in stretches]) + "".join(stretches)


# -- lookups over the snapshot --------------------------------------------------------------


@dataclass
class _Site:
    snapshot: Snapshot
    figures: FigurePlan
    papers_by_key: dict[str, PaperView] = field(default_factory=dict)
    runs_by_paper: dict[str, list[RunView]] = field(default_factory=dict)
    runs_by_runner: dict[str, list[RunView]] = field(default_factory=dict)
    papers_by_tag: dict[str, list[PaperView]] = field(default_factory=dict)
    runner_names: set[str] = field(default_factory=set)
    claims_by_paper: dict[str, tuple[dict[str, Any], ...]] = field(default_factory=dict)
    paper_headlines: dict[str, Headline | None] = field(default_factory=dict)    # by paper key
    runner_headlines: dict[str, Headline | None] = field(default_factory=dict)   # by runner name
    paper_rows: dict[str, str] = field(default_factory=dict)     # by slug: a paper is listed on several pages
    run_rows: dict[str, str] = field(default_factory=dict)       # by run id

    @classmethod
    def of(cls, snapshot: Snapshot) -> "_Site":
        site = cls(snapshot=snapshot, figures=plan(snapshot), runner_names={r.name for r in snapshot.runners})
        for paper in snapshot.papers:
            site.papers_by_key[paper.key] = paper
            for tag in paper.tags:
                site.papers_by_tag.setdefault(tag, []).append(paper)
        for run in snapshot.runs:
            site.runs_by_paper.setdefault(run.paper_key, []).append(run)
            site.runs_by_runner.setdefault(run.runner, []).append(run)
        site.claims_by_paper = {p.key: p.claims for p in snapshot.papers}
        site.claims_by_paper.update({r.paper: r.claims for r in snapshot.runners if r.paper not in site.claims_by_paper})
        return site

    def paper_headline(self, key: str) -> Headline | None:
        """The paper's headline result (``kb.runs.headline``), computed once."""
        if key not in self.paper_headlines:
            self.paper_headlines[key] = headline(self.claims_by_paper.get(key, ()), self.runs_by_paper.get(key, []))
        return self.paper_headlines[key]

    def runner_headline(self, name: str, paper: str) -> Headline | None:
        if name not in self.runner_headlines:
            self.runner_headlines[name] = headline(self.claims_by_paper.get(paper, ()), self.runs_by_runner.get(name, []))
        return self.runner_headlines[name]

    def paper_status(self, paper: PaperView) -> str:
        """The verdict of the paper's headline run, or why it is not comparable; else the newest run's state."""
        best = self.paper_headline(paper.key)
        if best is not None:
            return best.run.verdict if best.comparable else best.label
        runs = self.runs_by_paper.get(paper.key)
        if runs:
            return runs[0].status
        return "not run yet" if paper.runners else ""

    def runner_verdict(self, item: RunnerView) -> str:
        """The verdict of the runner's headline run, or why it is not comparable."""
        best = self.runner_headline(item.name, item.paper)
        if best is not None:
            return best.run.verdict if best.comparable else best.label
        return "no finished run" if item.name in self.runs_by_runner else "never run"

    def result(self, run: RunView) -> str:
        """A run's headline metric and its value: "map 94.3" (``kb.runs.headline.main_metric``)."""
        metric = main_metric(run, list(self.claims_by_paper.get(run.paper_key, ())))
        return f"{escaped(metric)} {measured(run.final[metric])}" if metric else ""

    def runner_link(self, name: str) -> str:
        """A link to a registered runner's page; a runner unknown here (a run imported from
        another machine) is named as text."""
        if name not in self.runner_names:
            return escaped(name)
        return anchor(escaped(name), listing(runner_folder(name)))

    def paper_link(self, key: str) -> str:
        found = self.papers_by_key.get(key)
        return _paper_link(found) if found else f"{inline_code(key)} (not in the catalog)"

    def newest_papers(self) -> list[PaperView]:
        return sorted(self.snapshot.papers, key=lambda p: (-(p.added.timestamp() if p.added else 0), p.slug))

    def paper_row(self, paper: PaperView) -> str:
        """A paper's row in the listings (``_PAPER_HEADER``), built once for all of them."""
        if paper.slug not in self.paper_rows:
            langs = " ".join(sorted({n.lang for n in paper.notes}, key=_language_order))
            self.paper_rows[paper.slug] = row([
                _paper_link(paper) + (" " + _stars(paper) if paper.star else ""), escaped(paper.year or ""),
                escaped(paper.venue or ""), _tag_links(paper.tags), escaped(langs), badge(self.paper_status(paper))])
        return self.paper_rows[paper.slug]

    def run_row(self, run: RunView) -> str:
        """A run's row in the run lists (``_RUN_HEADER``), built once for all of them."""
        if run.id not in self.run_rows:
            self.run_rows[run.id] = row([
                _run_link(run) + (" " + badge("regression") if run.regression else ""), self.runner_link(run.runner),
                escaped(run.preset), _data(run), self.result(run), badge(run.status),
                badge(run.verdict) if run.status == "succeeded" else "", _labels(run),
                escaped(when(run.started or run.created))])
        return self.run_rows[run.id]


def _data(run: RunView) -> str:
    """The data a run used, marked when synthetic; empty when it recorded none (it failed early)."""
    if run.dataset is None:
        return ""
    return escaped(run.dataset) + (" <strong>(synthetic)</strong>" if run.dataset_synthetic else "")


def _run_link(run: RunView) -> str:
    return anchor(escaped(run.id), run_page(run.id))


def _labels(run: RunView) -> str:
    """A run's labels (smoke, overrides, generated data) as badges."""
    return " ".join(badge(word) for word in labels(run))


def _headline(best: Headline) -> str:
    """"<strong>94.3</strong> map (paper: 52.7%) · run yolo-… · data … · not comparable: generated data"."""
    shown = (f"<strong>{measured(best.value)}</strong> {escaped(best.metric)}"
             if best.metric and best.value is not None else "no metric")
    if best.claim is not None:
        shown += f" (paper: {with_unit(best.claim['value'], best.claim.get('unit'))})"
    seeds = f"mean of {len(best.seeds)} seeds, newest " if len(best.seeds) > 1 else ""
    verdict = badge(best.run.verdict) if best.comparable else badge(best.label)
    return " · ".join(part for part in (shown, seeds + _run_link(best.run), _data(best.run), verdict) if part)


def _paper_link(paper: PaperView) -> str:
    return anchor(escaped(paper.title), paper_page(paper.slug))


def _tag_links(tags: tuple[str, ...]) -> str:
    return " ".join(anchor(escaped(tag), listing(tag_folder(tag))) for tag in tags)


def _figure(path: str, page: str, caption: str) -> str:
    return f"![{text(caption)}]({relative(page, path)}){{ .kb-figure loading=lazy }}"


def _results(site: _Site, run: RunView, page: str, level: str, heading: str = "Results") -> list[str]:
    """The run's own figures (``run.plot``) and pictures (``run.image``, e.g. samples) under ``heading``."""
    chart, images = site.figures.results.get(run.id), site.figures.images.get(run.id, [])
    if not chart and not images:
        return []
    parts = [f"{level} {heading}"]
    if chart:
        parts.append(_figure(chart, page, f"results of {run.id} (data: {data_label(run)})"))
    parts += [f"{text(title)} ({text(data_label(run))}):\n\n" + _figure(path, page, f"{title} of {run.id}")
              for title, path in images]
    return parts


def _stars(paper: PaperView) -> str:
    """The ★ a paper's notes give it, as text."""
    return "★" * paper.star


_PAPER_HEADER = ["Title", "Year", "Venue", "Tags", "Notes", "Status"]
_RUN_HEADER = ["Run", "Runner", "Preset", "Data", "Result", "Status", "Verdict", "Labels", "Started"]


def _paginated(folder: str, title: str, intro: list[str], header: list[str], rows: list[str], empty: str,
               *, per_page: int = PER_PAGE, filterable: bool = False) -> dict[str, str]:
    """A listing split into pages of ``per_page`` rows (made by ``row``), each linking to the others."""
    chunks = [rows[i : i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    pages = {}
    for page_number, chunk in enumerate(chunks, 1):
        path = listing(folder, page_number)
        heading = title if len(chunks) == 1 else f"{title} (page {page_number} of {len(chunks)})"
        pager = ""
        if len(chunks) > 1:
            pager = paragraph("Pages: " + " · ".join(
                f"<strong>{n}</strong>" if n == page_number else anchor(str(n), listing(folder, n))
                for n in range(1, len(chunks) + 1)))
        top = f"# {text(heading)}" + (" { .kb-filter }" if filterable else "")
        pages[path] = page_file(path, heading, [top, *intro, pager, html_table(header, chunk) if chunk else empty, pager],
                                toc=False)
    return pages


# -- pages ----------------------------------------------------------------------------------


def home_page(site: _Site) -> str:
    snapshot = site.snapshot
    notes = Counter(n.lang for p in snapshot.papers for n in p.notes)
    note_counts = ", ".join(f"{notes[lang]} {LANGUAGES.get(lang, lang)}" for lang in sorted(notes, key=_language_order))
    counts = (f"<strong>{len(snapshot.papers)}</strong> papers · <strong>{sum(notes.values())}</strong> notes"
              + (f" ({escaped(note_counts)})" if note_counts else "")
              + f" · <strong>{len(snapshot.runners)}</strong> runners · <strong>{len(snapshot.runs)}</strong> runs"
              + f" · <strong>{len(site.papers_by_tag)}</strong> tags")
    parts = ["# Paper knowledge base", paragraph(counts)]
    if not snapshot.papers:
        parts.append("No papers yet: add some with `kb add ARXIV_ID`, or load `papers/` with `kb sync`.")

    parts.append("## Reproduction status")
    if snapshot.runners:
        verdicts = {r.name: site.runner_verdict(r) for r in snapshot.runners}
        parts.append(paragraph(" · ".join(f"{badge(word)} {count}"
                                          for word, count in sorted(Counter(verdicts.values()).items()))))
        parts.append("Each runner's headline result: its best run comparable with the paper, else its run "
                     "closest to the paper's setting, labelled why it is not comparable; never a smoke run "
                     "merely because it is newest.")
        rows = []
        for item in snapshot.runners[:HOME_RUNNERS]:
            best, runs = site.runner_headline(item.name, item.paper), site.runs_by_runner.get(item.name, [])
            rows.append(row([site.runner_link(item.name), site.paper_link(item.paper),
                             site.result(best.run) if best else "", badge(verdicts[item.name]),
                             _data(best.run) if best else "", _run_link(best.run) if best else "",
                             _run_link(runs[0]) + " " + badge(runs[0].status) if runs else ""]))
        parts.append(html_table(["Runner", "Paper", "Result", "Verdict", "Data", "Headline run", "Latest run"], rows))
        if len(snapshot.runners) > HOME_RUNNERS:
            parts.append(paragraph(anchor(f"All {len(snapshot.runners)} runners", listing("runners"))))
    else:
        parts.append("No runners registered.")

    parts.append("## Recently added")
    recent = site.newest_papers()[:RECENT]
    parts.append(html_table(_PAPER_HEADER, [site.paper_row(p) for p in recent]) if recent else "No papers yet.")
    parts.append("## Latest runs")
    runs = list(snapshot.runs[:RECENT])
    parts.append(html_table(_RUN_HEADER, [site.run_row(r) for r in runs]) if runs
                 else "No runs yet: `kb reproduce NAME --config smoke`.")
    return page_file("index.md", "kb", parts, toc=False)


def _notes_section(paper: PaperView) -> str:
    if not paper.notes:
        return f"No notes yet: {code(f'kb note {paper.slug} --edit')} writes one."
    seen: Counter = Counter()
    tabs = []
    for note in sorted(paper.notes, key=lambda n: (_language_order(n.lang), n.path)):
        seen[note.lang] += 1
        label = LANGUAGES.get(note.lang, note.lang) + (f" {seen[note.lang]}" if seen[note.lang] > 1 else "")
        tabs.append(f"=== {json.dumps(label, ensure_ascii=False)}\n\n{indent(_note_body(note))}")
    return "\n\n".join(tabs)


def _note_body(note: NoteView) -> str:
    source = f"Source: {external(note.source)} · " if note.source else ""
    meta = f"{source}file {code('papers/' + note.path)}"
    title = f"**{text(note.title)}**\n\n" if note.title else ""
    return f"{title}{note_markdown(note.body)}\n\n{meta}\n{{ .kb-note-meta }}"


def _claims_section(site: _Site, paper: PaperView, page: str) -> list[str]:
    if not paper.claims:
        return ["No claims recorded in `paper.yaml`."]
    rows, details = [], []
    for count, result in enumerate(claim_results(paper.claims, site.runs_by_paper.get(paper.key, [])), 1):
        claim, verdict = result.claim, result.verdict or {}
        ours = verdict.get("ours")
        rows.append(row([
            str(count), escaped(claim["metric"]), escaped(claim["dataset"]),
            with_unit(claim["value"], claim.get("unit")), "" if ours is None else measured(ours),
            escaped(result.seed_summary), _data(result.run) if result.run else "", badge(result.why or result.label),
            _run_link(result.run) if result.run else "",
        ]))
        details.append(_claim_detail(count, claim, verdict.get("reason")))
    parts = [html_table(["#", "Metric", "Claim on", "Paper", "Ours", "All seeds", "Run data", "Verdict", "Run"], rows),
             *filter(None, details)]
    chart = site.figures.papers.get(paper.slug)
    if chart:
        parts.append(_figure(chart, page, f"claimed vs reproduced for {paper.slug}"))
    return parts


def _runs_section(site: _Site, paper: PaperView, page: str) -> list[str]:
    runs = site.runs_by_paper.get(paper.key, [])
    if not runs:
        if paper.runners:
            return ["No runs yet: " + ", ".join(code(f"kb reproduce {name} --config smoke") for name in paper.runners) + "."]
        return ["No runner implements this paper yet."]
    parts = [html_table(_RUN_HEADER, [site.run_row(r) for r in runs[:PAPER_RUNS]])]
    if len(runs) > PAPER_RUNS:
        parts.append(paragraph(f"{len(runs)} runs in all: see "
                               + ", ".join(sorted({site.runner_link(r.runner) for r in runs})) + "."))
    shown = [run for run in runs if run.id in site.figures.results or run.id in site.figures.images][:PAPER_CURVES]
    for run in shown:
        run_link = link(text(run.id), relative(page, run_page(run.id)))
        parts += _results(site, run, page, "###", heading=f"Results of {run_link}")
    curves = [(run, site.figures.runs[run.id]) for run in runs if run.id in site.figures.runs][:PAPER_CURVES]
    if curves:
        parts.append("### Training curves")
        parts += [_figure(path, page, f"training curves of {run.id} (data: {data_label(run)})") for run, path in curves]
    return parts


def paper_page_source(site: _Site, item: PaperView) -> str:
    path = paper_page(item.slug)
    facts = [escaped(", ".join(item.authors)) if item.authors else "",
             " · ".join(escaped(v) for v in (item.year, item.venue) if v)]
    ident = inline_code(item.key) + (f" v{escaped(item.version)}" if item.version else "")
    names = {"abs": "arXiv abstract", "pdf": "PDF (arXiv)", "doi": "DOI"}
    links = " · ".join(external_anchor(escaped(names.get(kind, kind)), url) for kind, url in item.links.items())
    facts.append(f"{ident} · {links}" if links else ident)
    if item.tags:
        facts.append("Tags: " + _tag_links(item.tags))
    if item.star:
        facts.append(_stars(item) + " in your notes")
    if item.runners:
        facts.append("Runners: " + ", ".join(site.runner_link(name) for name in item.runners))
    # Free text that may hold URLs: Markdown, whose magiclink makes them links.
    extra = [text(v) for v in (item.journal_ref, item.comment, " ".join(item.categories)) if v]
    if item.other_titles:
        extra.insert(0, "Also titled: " + "; ".join(text(t) for t in item.other_titles))
    best = site.paper_headline(item.key)
    parts = [f"# {text(item.title)}", paragraph(*facts)]
    if extra:
        parts.append("  \n".join(extra))
    if best is not None:
        parts.append(paragraph("Headline result: " + _headline(best), css="kb-headline"))
    elif site.paper_status(item):
        parts.append(paragraph("Reproduction: " + badge(site.paper_status(item))))
    if item.summary:
        parts += ["## Summary", paragraphs(item.summary)]
    if item.abstract:
        parts += ["## Abstract", paragraphs(item.abstract)]
    parts += ["## Notes", _notes_section(item), "## Claimed vs reproduced", *_claims_section(site, item, path),
              "## Runs", *_runs_section(site, item, path)]
    return page_file(path, item.title, parts)


def _claim_detail(count: int, claim: dict[str, Any], reason: str | None = None) -> str:
    """A claim's setting and source (and a run's verdict reason) under its table: too long for a cell.
    Markdown: a source may be a URL, which magiclink makes a link."""
    said = "; ".join(text(v) for v in (claim.get("setting"), claim.get("source") and f"source: {claim['source']}", reason) if v)
    return f"{count}\\. {said}\n{{ .kb-claim-detail }}" if said else ""


def _claims_table(claims: tuple[dict[str, Any], ...]) -> list[str]:
    rows = [row([str(n), escaped(c["metric"]), escaped(c["dataset"]), with_unit(c["value"], c.get("unit")),
                 escaped(c["direction"]), number(float(c.get("tolerance") or 0))]) for n, c in enumerate(claims, 1)]
    details = [_claim_detail(n, c) for n, c in enumerate(claims, 1)]
    return [html_table(["#", "Metric", "Dataset", "Claimed", "Better", "Tolerance"], rows), *filter(None, details)]


def runner_pages(site: _Site, item: RunnerView) -> dict[str, str]:
    folder = runner_folder(item.name)
    presets = "".join(f"<li>{inline_code(p)}: {inline_code(f'kb reproduce {item.name} --config {p}')}</li>\n"
                      for p in item.presets)
    intro = [text(item.summary),
             paragraph(f"Paper: {site.paper_link(item.paper)}", f"Datasets: {escaped(', '.join(item.datasets))}"),
             "### Presets", Html(f"<ul>\n{presets}</ul>") if presets else "None.", "### Claims",
             *(_claims_table(item.claims) if item.claims else ["No claims recorded for this paper."]), "### Runs"]
    runs = site.runs_by_runner.get(item.name, [])
    rows = [row([_run_link(r) + (" " + badge("regression") if r.regression else ""), escaped(r.preset), badge(r.status),
                 badge(r.verdict) if r.status == "succeeded" else "", site.result(r), _labels(r), _data(r),
                 escaped(r.device or ""), escaped(r.env.get("python") or ""), escaped(r.env.get("torch") or ""),
                 inline_code(r.git_commit[:10]) + (" (dirty)" if r.git_dirty else "") if r.git_commit else "",
                 escaped(when(r.started or r.created))]) for r in runs]
    header = ["Run", "Preset", "Status", "Verdict", "Result", "Labels", "Data", "Device", "Python", "Torch", "Commit",
              "Started"]
    return _paginated(folder, f"Runner {item.name}", intro, header, rows,
                      f"No runs yet: {code(f'kb reproduce {item.name} --config smoke')}.")


def _value(value: Any) -> str:
    return escaped(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))


def run_page_source(site: _Site, item: RunView) -> str:
    path = run_page(item.id)
    facts = [
        ["Runner", site.runner_link(item.runner)],
        ["Paper", site.paper_link(item.paper_key)],
        ["Preset", escaped(item.preset) + (" (architecture only: no data, no training)" if item.kind == "architecture" else "")],
        ["Overrides", inline_code(override_flags(item.overrides)) if item.overrides
         else "none (the preset as it is)"],
        ["Status", badge(item.status)],
        ["Labels", _labels(item)],
        ["Verdict", badge(item.verdict) if item.status == "succeeded" else ""],
        ["Data", _data(item) + (f" ({escaped(item.dataset_detail)})" if item.dataset_detail else "")],
        ["Data fingerprint", inline_code(item.dataset_fingerprint) if item.dataset_fingerprint else ""],
        ["Device", escaped(item.device or "")], ["Host", escaped(item.host or "")], ["Seed", escaped(item.seed)],
        ["Code", inline_code(item.git_commit) + (" with uncommitted changes" if item.git_dirty else "")
         if item.git_commit else "unknown"],
        ["Started", escaped(when(item.started))], ["Ended", escaped(when(item.ended))],
    ]
    parts = [f"# Run {text(item.id)}"]
    if item.regression:
        parts.append(paragraph(badge("regression")
                               + " this scheduled run did worse than the last good run of its runner and preset."))
    parts.append(html_table(["", "Run"], [row(fact) for fact in facts if fact[1]]))
    if item.error:
        parts += ["## Error", code_block(item.error)]
    if item.verdicts:
        rows = [row([escaped(v.get("metric")), escaped(v.get("dataset")), escaped(v.get("setting") or ""),
                     number(v.get("claimed")), "" if v.get("ours") is None else number(v.get("ours")),
                     badge(v.get("verdict", "")), escaped(v.get("reason") or "")]) for v in item.verdicts]
        parts += ["## Against the paper's claims",
                  html_table(["Metric", "Claim on", "Setting", "Paper", "Ours", "Verdict", "Why"], rows)]
    if item.final:
        parts += ["## Final metrics",
                  html_table(["Metric", "Value"], [row([escaped(k), number(v)]) for k, v in sorted(item.final.items())])]
    parts += _results(site, item, path, "##")
    curves = site.figures.runs.get(item.id)
    if curves:
        parts += ["## Training curves", _figure(curves, path, f"training curves of {item.id} (data: {data_label(item)})")]
    parts += ["## Configuration", code_block(json.dumps(item.config, indent=2, ensure_ascii=False, sort_keys=True), "json")]
    if item.env:
        parts += ["## Environment",
                  html_table(["Key", "Value"], [row([escaped(k), _value(v)]) for k, v in sorted(item.env.items())])]
    return page_file(path, f"Run {item.id}", parts)


def generate(snapshot: Snapshot) -> dict[str, str]:
    """Every page of the site: relative path under the docs folder -> the page's file (``page_file``)."""
    site = _Site.of(snapshot)
    pages = {"index.md": home_page(site)}
    intro = [paragraph(f"{len(snapshot.papers)} papers, most recently added first.")]
    pages.update(_paginated("papers", "Papers", intro, _PAPER_HEADER, [site.paper_row(p) for p in site.newest_papers()],
                            "No papers yet.", filterable=True))
    for item in snapshot.papers:
        pages[paper_page(item.slug)] = paper_page_source(site, item)

    tags = sorted(site.papers_by_tag, key=lambda t: (-len(site.papers_by_tag[t]), t))
    tag_rows = [row([anchor(escaped(tag), listing(tag_folder(tag))), str(len(site.papers_by_tag[tag]))]) for tag in tags]
    pages.update(_paginated("tags", "Tags", [paragraph(f"{len(tags)} tags.")], ["Tag", "Papers"], tag_rows,
                            "No tags yet.", filterable=True))
    for tag in tags:
        tagged = sorted(site.papers_by_tag[tag], key=lambda p: (-(p.year or 0), p.slug))
        intro = [paragraph(f"{len(tagged)} papers tagged {escaped(tag)}.")]
        pages.update(_paginated(tag_folder(tag), f"Tag: {tag}", intro, _PAPER_HEADER,
                                [site.paper_row(p) for p in tagged], "", filterable=True))

    regressions_first = sorted(snapshot.runs, key=lambda r: not r.regression)
    pages.update(_paginated("runs", "Runs", [paragraph("Regressions first, then newest first.")], _RUN_HEADER,
                            [site.run_row(r) for r in regressions_first],
                            "No runs yet: `kb reproduce NAME --config smoke` records one.", filterable=True))
    runner_rows = []
    for item in snapshot.runners:
        runs = site.runs_by_runner.get(item.name, [])
        runner_rows.append(row([site.runner_link(item.name), site.paper_link(item.paper),
                                escaped(", ".join(item.datasets)), escaped(", ".join(item.presets)), str(len(runs)),
                                badge(site.runner_verdict(item))]))
        pages.update(runner_pages(site, item))
    pages.update(_paginated("runners", "Runners", [paragraph(f"{len(snapshot.runners)} runners.")],
                            ["Runner", "Paper", "Datasets", "Presets", "Runs", "Verdict"], runner_rows,
                            "No runners registered.", filterable=True))
    for item in snapshot.runs:
        pages[run_page(item.id)] = run_page_source(site, item)
    return pages
