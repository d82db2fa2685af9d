"""The site's pages as Markdown, generated from a catalog snapshot: ``generate(snapshot)``.

Pure: one snapshot gives the same pages byte for byte; nothing here reads the catalog, the clock
or the disk. Everything people wrote is user content. Plain fields (titles, authors, tags, errors)
go through ``text``, which makes Markdown and HTML in them show as the characters they are; notes,
Markdown by intent, keep their formatting, and the site's Markdown extension
(kb/site/safe_markdown.py) makes any raw HTML, script URL or event attribute in them inert.

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
from kb.site.paths import listing, paper_page, relative, run_page, runner_folder, tag_folder
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
    return f"[{label}]({quote(target, safe=':/?#[]@!$&*+,;=%~._-')})"


def external(url: str | None) -> str:
    """A user-given URL as a link when it is http(s), as text otherwise."""
    if not url:
        return ""
    if re.match(r"https?://", url.strip(), re.IGNORECASE):
        return link(text(url), url.strip())
    return text(url)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell or " " for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def with_unit(value: Any, unit: str | None) -> str:
    """A claimed value with its unit: "63.4%", "45 frames/s" (``text`` would drop the space)."""
    suffix = unit_suffix(unit)
    return number(float(value)) + (" " if suffix.startswith(" ") else "") + text(suffix)


def badge(word: str) -> str:
    kind = "warn" if word.startswith("partly") else _BADGES.get(word, "na")
    return f"**{text(word)}**{{ .kb-badge .kb-{kind} }}" if word else ""


def code_block(value: str, lang: str = "") -> str:
    fence = "`" * max(3, max((len(run) for run in re.findall(r"`+", value)), default=0) + 1)
    return f"{fence}{lang}\n{value}\n{fence}"


def front(title: str, *, toc: bool = True) -> str:
    """Front matter: MkDocs templates print ``title`` as HTML, so it is escaped here; Material's
    own search indexing is off (kb writes the index, kb/site/search_index.py); the navigation
    sidebar is hidden (the header's tabs have it), and the table of contents where a page has
    no sections, so tables get the page's width."""
    escaped = json.dumps(html.escape(" ".join(title.split())), ensure_ascii=False)
    hidden = "\n  - navigation" + ("" if toc else "\n  - toc")
    return f"---\ntitle: {escaped}\nsearch:\n  exclude: true\nhide:{hidden}\n---\n\n"


def number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else text(value)


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
        return f"{text(metric)} {measured(run.final[metric])}" if metric else ""

    def runner_link(self, name: str, page: str) -> str:
        """A link to a registered runner's page; a runner unknown here (a run imported from
        another machine) is named as text."""
        if name not in self.runner_names:
            return text(name)
        return link(text(name), relative(page, listing(runner_folder(name))))

    def paper_link(self, key: str, page: str) -> str:
        found = self.papers_by_key.get(key)
        return _paper_link(found, page) if found else f"{code(key)} (not in the catalog)"

    def newest_papers(self) -> list[PaperView]:
        return sorted(self.snapshot.papers, key=lambda p: (-(p.added.timestamp() if p.added else 0), p.slug))


def _data(run: RunView) -> str:
    """The data a run used, marked when synthetic; empty when it recorded none (it failed early)."""
    if run.dataset is None:
        return ""
    return text(run.dataset) + (" **(synthetic)**" if run.dataset_synthetic else "")


def _run_link(run: RunView, page: str) -> str:
    return link(text(run.id), relative(page, run_page(run.id)))


def _labels(run: RunView) -> str:
    """A run's labels (smoke, overrides, generated data) as badges."""
    return " ".join(badge(word) for word in labels(run))


def _headline(site: _Site, best: Headline | None, page: str) -> str:
    """"**94.3** map (paper: 52.7%) · run yolo-… · data … · not comparable: generated data"."""
    if best is None:
        return ""
    shown = f"**{measured(best.value)}** {text(best.metric)}" if best.metric and best.value is not None else "no metric"
    if best.claim is not None:
        shown += f" (paper: {with_unit(best.claim['value'], best.claim.get('unit'))})"
    seeds = f"mean of {len(best.seeds)} seeds, newest " if len(best.seeds) > 1 else ""
    verdict = badge(best.run.verdict) if best.comparable else badge(best.label)
    return " · ".join(part for part in (shown, seeds + _run_link(best.run, page), _data(best.run), verdict) if part)


def _paper_link(paper: PaperView, page: str) -> str:
    return link(text(paper.title), relative(page, paper_page(paper.slug)))


def _tag_links(tags: tuple[str, ...], page: str) -> str:
    return " ".join(link(text(tag), relative(page, listing(tag_folder(tag)))) for tag in tags)


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
    """The ★ a paper's notes give it, as text (a ★ is no Markdown mark)."""
    return "★" * paper.star


def _paper_rows(site: _Site, papers: list[PaperView], page: str) -> list[list[str]]:
    langs = {p.slug: sorted({n.lang for n in p.notes}, key=_language_order) for p in papers}
    return [[_paper_link(p, page) + (" " + _stars(p) if p.star else ""), text(p.year or ""), text(p.venue or ""),
             _tag_links(p.tags, page),
             text(" ".join(langs[p.slug])), badge(site.paper_status(p))] for p in papers]


_PAPER_HEADER = ["Title", "Year", "Venue", "Tags", "Notes", "Status"]


def _run_rows(site: _Site, runs: list[RunView], page: str) -> list[list[str]]:
    return [[_run_link(r, page) + (" " + badge("regression") if r.regression else ""), site.runner_link(r.runner, page),
             text(r.preset), _data(r), site.result(r), badge(r.status), badge(r.verdict) if r.status == "succeeded" else "",
             _labels(r), text(when(r.started or r.created))] for r in runs]


_RUN_HEADER = ["Run", "Runner", "Preset", "Data", "Result", "Status", "Verdict", "Labels", "Started"]


def _paginated(folder: str, title: str, intro: str, header: list[str], rows: list[list[str]], empty: str,
               *, per_page: int = PER_PAGE, filterable: bool = False) -> dict[str, str]:
    """A listing split into pages of ``per_page`` rows, each linking to the others.

    Rows are built with links relative to ``folder/index.md``; every page of the listing sits in
    ``folder``, so they hold on each page."""
    chunks = [rows[i : i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    pages = {}
    for page_number, chunk in enumerate(chunks, 1):
        path = listing(folder, page_number)
        heading = title if len(chunks) == 1 else f"{title} (page {page_number} of {len(chunks)})"
        pager = ""
        if len(chunks) > 1:
            pager = "Pages: " + " · ".join(
                f"**{n}**" if n == page_number else link(str(n), relative(path, listing(folder, n)))
                for n in range(1, len(chunks) + 1))
        top = front(heading, toc=False) + f"# {text(heading)}" + (" { .kb-filter }" if filterable else "")
        parts = [top, intro, pager, table(header, chunk) if chunk else empty, pager]
        pages[path] = "\n\n".join(part for part in parts if part) + "\n"
    return pages


# -- pages ----------------------------------------------------------------------------------


def home_markdown(site: _Site) -> str:
    page = "index.md"
    snapshot = site.snapshot
    notes = Counter(n.lang for p in snapshot.papers for n in p.notes)
    note_counts = ", ".join(f"{notes[lang]} {LANGUAGES.get(lang, lang)}" for lang in sorted(notes, key=_language_order))
    counts = (f"**{len(snapshot.papers)}** papers · **{sum(notes.values())}** notes"
              + (f" ({text(note_counts)})" if note_counts else "")
              + f" · **{len(snapshot.runners)}** runners · **{len(snapshot.runs)}** runs · **{len(site.papers_by_tag)}** tags")
    parts = [front("kb", toc=False) + "# Paper knowledge base", counts]
    if not snapshot.papers:
        parts.append("No papers yet: add some with `kb add ARXIV_ID`, or load `papers/` with `kb sync`.")

    parts.append("## Reproduction status")
    if snapshot.runners:
        verdicts = {r.name: site.runner_verdict(r) for r in snapshot.runners}
        parts.append(" · ".join(f"{badge(word)} {count}" for word, count in sorted(Counter(verdicts.values()).items())))
        parts.append("Each runner's headline result: its best run comparable with the paper, else its run "
                     "closest to the paper's setting, labelled why it is not comparable; never a smoke run "
                     "merely because it is newest.")
        rows = []
        for item in snapshot.runners[:HOME_RUNNERS]:
            best, runs = site.runner_headline(item.name, item.paper), site.runs_by_runner.get(item.name, [])
            rows.append([site.runner_link(item.name, page), site.paper_link(item.paper, page),
                         site.result(best.run) if best else "", badge(verdicts[item.name]),
                         _data(best.run) if best else "", _run_link(best.run, page) if best else "",
                         _run_link(runs[0], page) + " " + badge(runs[0].status) if runs else ""])
        parts.append(table(["Runner", "Paper", "Result", "Verdict", "Data", "Headline run", "Latest run"], rows))
        if len(snapshot.runners) > HOME_RUNNERS:
            parts.append(link(f"All {len(snapshot.runners)} runners", relative(page, listing("runners"))))
    else:
        parts.append("No runners registered.")

    parts.append("## Recently added")
    recent = site.newest_papers()[:RECENT]
    parts.append(table(_PAPER_HEADER, _paper_rows(site, recent, page)) if recent else "No papers yet.")
    parts.append("## Latest runs")
    runs = list(snapshot.runs[:RECENT])
    parts.append(table(_RUN_HEADER, _run_rows(site, runs, page)) if runs else "No runs yet: `kb reproduce NAME --config smoke`.")
    return "\n\n".join(parts) + "\n"


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


def _claims_section(site: _Site, paper: PaperView, page: str) -> str:
    if not paper.claims:
        return "No claims recorded in `paper.yaml`."
    rows, details = [], []
    for count, result in enumerate(claim_results(paper.claims, site.runs_by_paper.get(paper.key, [])), 1):
        claim, verdict = result.claim, result.verdict or {}
        ours = verdict.get("ours")
        rows.append([
            str(count), text(claim["metric"]), text(claim["dataset"]),
            with_unit(claim["value"], claim.get("unit")), "" if ours is None else measured(ours),
            text(result.seed_summary), _data(result.run) if result.run else "", badge(result.why or result.label),
            _run_link(result.run, page) if result.run else "",
        ])
        details.append(_claim_detail(count, claim, verdict.get("reason")))
    parts = [table(["#", "Metric", "Claim on", "Paper", "Ours", "All seeds", "Run data", "Verdict", "Run"], rows), *filter(None, details)]
    chart = site.figures.papers.get(paper.slug)
    if chart:
        parts.append(_figure(chart, page, f"claimed vs reproduced for {paper.slug}"))
    return "\n\n".join(parts)


def _runs_section(site: _Site, paper: PaperView, page: str) -> str:
    runs = site.runs_by_paper.get(paper.key, [])
    if not runs:
        if paper.runners:
            return "No runs yet: " + ", ".join(code(f"kb reproduce {name} --config smoke") for name in paper.runners) + "."
        return "No runner implements this paper yet."
    parts = [table(_RUN_HEADER, _run_rows(site, runs[:PAPER_RUNS], page))]
    if len(runs) > PAPER_RUNS:
        parts.append(f"{len(runs)} runs in all: see " + ", ".join(sorted({site.runner_link(r.runner, page) for r in runs})) + ".")
    shown = [run for run in runs if run.id in site.figures.results or run.id in site.figures.images][:PAPER_CURVES]
    for run in shown:
        parts += _results(site, run, page, "###", heading=f"Results of {_run_link(run, page)}")
    curves = [(run, site.figures.runs[run.id]) for run in runs if run.id in site.figures.runs][:PAPER_CURVES]
    if curves:
        parts.append("### Training curves")
        parts += [_figure(path, page, f"training curves of {run.id} (data: {data_label(run)})") for run, path in curves]
    return "\n\n".join(parts)


def paper_markdown(site: _Site, item: PaperView) -> str:
    page = paper_page(item.slug)
    facts = [text(", ".join(item.authors)) if item.authors else "",
             " · ".join(text(v) for v in (item.year, item.venue) if v)]
    ident = code(item.key) + (f" v{item.version}" if item.version else "")
    names = {"abs": "arXiv abstract", "pdf": "PDF (arXiv)", "doi": "DOI"}
    links = " · ".join(link(text(names.get(kind, kind)), url) for kind, url in item.links.items())
    facts.append(f"{ident} · {links}" if links else ident)
    if item.tags:
        facts.append("Tags: " + _tag_links(item.tags, page))
    if item.star:
        facts.append(_stars(item) + " in your notes")
    if item.runners:
        facts.append("Runners: " + ", ".join(site.runner_link(name, page) for name in item.runners))
    extra = [text(v) for v in (item.journal_ref, item.comment, " ".join(item.categories)) if v]
    if item.other_titles:
        extra.insert(0, "Also titled: " + "; ".join(text(t) for t in item.other_titles))
    best = site.paper_headline(item.key)
    parts = [front(item.title) + f"# {text(item.title)}", "  \n".join(f for f in facts if f)]
    if extra:
        parts.append("  \n".join(extra))
    if best is not None:
        parts.append("Headline result: " + _headline(site, best, page) + "\n{ .kb-headline }")
    elif site.paper_status(item):
        parts.append("Reproduction: " + badge(site.paper_status(item)))
    if item.summary:
        parts += ["## Summary", paragraphs(item.summary)]
    if item.abstract:
        parts += ["## Abstract", paragraphs(item.abstract)]
    parts += ["## Notes", _notes_section(item), "## Claimed vs reproduced", _claims_section(site, item, page),
              "## Runs", _runs_section(site, item, page)]
    return "\n\n".join(parts) + "\n"


def _claim_detail(count: int, claim: dict[str, Any], reason: str | None = None) -> str:
    """A claim's setting and source (and a run's verdict reason) under its table: too long for a cell."""
    said = "; ".join(text(v) for v in (claim.get("setting"), claim.get("source") and f"source: {claim['source']}", reason) if v)
    return f"{count}\\. {said}\n{{ .kb-claim-detail }}" if said else ""


def _claims_table(claims: tuple[dict[str, Any], ...]) -> str:
    rows = [[str(n), text(c["metric"]), text(c["dataset"]), with_unit(c["value"], c.get("unit")),
             text(c["direction"]), number(float(c.get("tolerance") or 0))] for n, c in enumerate(claims, 1)]
    details = [_claim_detail(n, c) for n, c in enumerate(claims, 1)]
    return "\n\n".join([table(["#", "Metric", "Dataset", "Claimed", "Better", "Tolerance"], rows), *filter(None, details)])


def runner_pages(site: _Site, item: RunnerView) -> dict[str, str]:
    folder = runner_folder(item.name)
    page = listing(folder)
    paper_md = site.paper_link(item.paper, page)
    presets = "\n".join(f"- {code(p)}: {code(f'kb reproduce {item.name} --config {p}')}" for p in item.presets)
    intro = "\n\n".join([
        text(item.summary), f"Paper: {paper_md}  \nDatasets: {text(', '.join(item.datasets))}",
        "### Presets", presets or "None.", "### Claims",
        _claims_table(item.claims) if item.claims else "No claims recorded for this paper.", "### Runs"])
    runs = site.runs_by_runner.get(item.name, [])
    rows = [[_run_link(r, page) + (" " + badge("regression") if r.regression else ""), text(r.preset), badge(r.status),
             badge(r.verdict) if r.status == "succeeded" else "", site.result(r), _labels(r), _data(r), text(r.device or ""),
             text(r.env.get("python") or ""), text(r.env.get("torch") or ""),
             code(r.git_commit[:10]) + (" (dirty)" if r.git_dirty else "") if r.git_commit else "",
             text(when(r.started or r.created))] for r in runs]
    header = ["Run", "Preset", "Status", "Verdict", "Result", "Labels", "Data", "Device", "Python", "Torch", "Commit",
              "Started"]
    return _paginated(folder, f"Runner {item.name}", intro, header, rows,
                      f"No runs yet: {code(f'kb reproduce {item.name} --config smoke')}.")


def _value(value: Any) -> str:
    return text(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True))


def run_markdown(site: _Site, item: RunView) -> str:
    page = run_page(item.id)
    facts = [
        ["Runner", site.runner_link(item.runner, page)],
        ["Paper", site.paper_link(item.paper_key, page)],
        ["Preset", text(item.preset) + (" (architecture only: no data, no training)" if item.kind == "architecture" else "")],
        ["Overrides", code(override_flags(item.overrides)) if item.overrides
         else "none (the preset as it is)"],
        ["Status", badge(item.status)],
        ["Labels", _labels(item)],
        ["Verdict", badge(item.verdict) if item.status == "succeeded" else ""],
        ["Data", _data(item) + (f" ({text(item.dataset_detail)})" if item.dataset_detail else "")],
        ["Data fingerprint", code(item.dataset_fingerprint) if item.dataset_fingerprint else ""],
        ["Device", text(item.device or "")], ["Host", text(item.host or "")], ["Seed", text(item.seed)],
        ["Code", code(item.git_commit) + (" with uncommitted changes" if item.git_dirty else "") if item.git_commit else "unknown"],
        ["Started", text(when(item.started))], ["Ended", text(when(item.ended))],
    ]
    parts = [front(f"Run {item.id}") + f"# Run {text(item.id)}"]
    if item.regression:
        parts.append(badge("regression") + " this scheduled run did worse than the last good run of its runner and preset.")
    parts.append(table(["", "Run"], [row for row in facts if row[1]]))
    if item.error:
        parts += ["## Error", code_block(item.error)]
    if item.verdicts:
        rows = [[text(v.get("metric")), text(v.get("dataset")), text(v.get("setting") or ""), number(v.get("claimed")),
                 "" if v.get("ours") is None else number(v.get("ours")), badge(v.get("verdict", "")), text(v.get("reason") or "")]
                for v in item.verdicts]
        parts += ["## Against the paper's claims", table(["Metric", "Claim on", "Setting", "Paper", "Ours", "Verdict", "Why"], rows)]
    if item.final:
        parts += ["## Final metrics", table(["Metric", "Value"], [[text(k), number(v)] for k, v in sorted(item.final.items())])]
    parts += _results(site, item, page, "##")
    curves = site.figures.runs.get(item.id)
    if curves:
        parts += ["## Training curves", _figure(curves, page, f"training curves of {item.id} (data: {data_label(item)})")]
    parts += ["## Configuration", code_block(json.dumps(item.config, indent=2, ensure_ascii=False, sort_keys=True), "json")]
    if item.env:
        parts += ["## Environment", table(["Key", "Value"], [[text(k), _value(v)] for k, v in sorted(item.env.items())])]
    return "\n\n".join(parts) + "\n"


def generate(snapshot: Snapshot) -> dict[str, str]:
    """Every page of the site: relative path under the docs folder -> Markdown."""
    site = _Site.of(snapshot)
    pages = {"index.md": home_markdown(site)}
    folder = "papers"
    pages.update(_paginated(folder, "Papers", f"{len(snapshot.papers)} papers, most recently added first.",
                            _PAPER_HEADER, _paper_rows(site, site.newest_papers(), listing(folder)),
                            "No papers yet.", filterable=True))
    for item in snapshot.papers:
        pages[paper_page(item.slug)] = paper_markdown(site, item)

    tags = sorted(site.papers_by_tag, key=lambda t: (-len(site.papers_by_tag[t]), t))
    tag_rows = [[link(text(tag), relative(listing("tags"), listing(tag_folder(tag)))), str(len(site.papers_by_tag[tag]))]
                for tag in tags]
    pages.update(_paginated("tags", "Tags", f"{len(tags)} tags.", ["Tag", "Papers"], tag_rows, "No tags yet.",
                            filterable=True))
    for tag in tags:
        tagged = sorted(site.papers_by_tag[tag], key=lambda p: (-(p.year or 0), p.slug))
        pages.update(_paginated(tag_folder(tag), f"Tag: {tag}", f"{len(tagged)} papers tagged {text(tag)}.",
                                _PAPER_HEADER, _paper_rows(site, tagged, listing(tag_folder(tag))), "", filterable=True))

    regressions_first = sorted(snapshot.runs, key=lambda r: not r.regression)
    pages.update(_paginated("runs", "Runs", "Regressions first, then newest first.", _RUN_HEADER,
                            _run_rows(site, regressions_first, listing("runs")),
                            "No runs yet: `kb reproduce NAME --config smoke` records one.", filterable=True))
    runner_rows = []
    for item in snapshot.runners:
        runs = site.runs_by_runner.get(item.name, [])
        runner_rows.append([site.runner_link(item.name, listing("runners")),
                            site.paper_link(item.paper, listing("runners")),
                            text(", ".join(item.datasets)), text(", ".join(item.presets)), str(len(runs)),
                            badge(site.runner_verdict(item))])
        pages.update(runner_pages(site, item))
    pages.update(_paginated("runners", "Runners", f"{len(snapshot.runners)} runners.",
                            ["Runner", "Paper", "Datasets", "Presets", "Runs", "Verdict"], runner_rows,
                            "No runners registered.", filterable=True))
    for item in snapshot.runs:
        pages[run_page(item.id)] = run_markdown(site, item)
    return pages
