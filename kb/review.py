"""``kb review YEAR``: a year-review post in Markdown, in the shape of the users' own (notes-style.md).

One ``##`` heading per group (the month a paper was read, or a tag), one ``###`` heading per paper
with its month, ``★`` first within each group: ``### ★ Title (2016/6)``, the form kb import reads back
as a year-in-review post. Each entry has the authors (no affiliations), venue, arXiv link, code
links, the summary from the user's own note in the chosen language, and the reproduction verdict
of the newest finished run where the paper has a runner. ``parts=2`` splits the post into
前編/後編 (part 1/part 2), each linking to the other.
"""

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from sqlmodel import Session, select

from kb.codelinks import code_links
from kb.errors import BadInput
from kb.feed.decisions import starred_keys
from kb.models import Note, Paper, RunRecord
from kb.runs.verdict import summary as verdict_summary
from kb.settings import Settings

PART_NAMES = {"ja": ["前編", "後編"], "en": ["part 1", "part 2"]}
WORDS = {
    "ja": {"title": "{year}年に読んだ論文まとめ", "published": "{year}年の論文まとめ", "authors": "著者", "venue": "会議",
           "code": "実装", "official": "公式", "third-party": "非公式", "verdict": "再現", "other": "その他",
           "none": "該当する論文はありません。"},
    "en": {"title": "Papers I read in {year}", "published": "Papers of {year}", "authors": "Authors", "venue": "Venue",
           "code": "Code", "official": "official", "third-party": "third-party", "verdict": "Reproduction",
           "other": "other", "none": "No papers."},
}
_YEAR = re.compile(r"(?:19|20)\d{2}")


@dataclass
class Entry:
    paper: Paper
    read: str                    # YYYY-MM: when the paper was read (added, or its earliest note's date)
    starred: bool
    notes: list[Note]
    verdict: str | None = None

    @cached_property
    def code(self) -> list[dict]:
        """Its code links, ``paper.yaml``'s then its notes' (found when first asked: scanning notes is the
        costly part, and most of the catalog's entries are not in the year asked for)."""
        return code_links(self.paper.code, [n.body for n in self.notes])


def _read_month(paper: Paper, notes: list[Note]) -> str:
    dates = [n.posted[:7] for n in notes if n.posted] + [paper.added.strftime("%Y-%m")]
    return min(dates)


def _published_in(paper: Paper, year: int) -> bool:
    venue_years = {int(y) for y in _YEAR.findall(paper.venue or "")}
    return (paper.published is not None and paper.published.year == year) or year in venue_years or (
        paper.published is None and paper.year == year)


def _notes_by_paper(*, session: Session) -> dict[int, list[Note]]:
    """Every paper's notes (as ``kb.queries.notes_of`` orders them) in one query, not one a paper."""
    notes: dict[int, list[Note]] = {}
    for note in session.exec(select(Note).order_by(Note.lang, Note.path)):
        notes.setdefault(note.paper_id, []).append(note)
    return notes


def _verdicts(*, session: Session) -> dict[str, str]:
    """The verdict summary of each paper's newest succeeded run, by paper key, in one query."""
    newest: dict[str, RunRecord] = {}
    for run in session.exec(select(RunRecord).where(RunRecord.status == "succeeded")
                            .order_by(RunRecord.created.desc(), RunRecord.id)):
        newest.setdefault(run.paper_key, run)
    return {key: verdict_summary(run.verdicts) for key, run in newest.items()}


def read_entries(*, session: Session) -> list[Entry]:
    """Every paper of the catalog as an entry, in the order they were added (four queries in all, not some a paper)."""
    stars, verdicts = starred_keys(session=session), _verdicts(session=session)
    notes = _notes_by_paper(session=session)
    return [Entry(paper, _read_month(paper, notes.get(paper.id, [])), paper.key in stars, notes.get(paper.id, []),
                  verdicts.get(paper.key) if paper.runners else None)
            for paper in session.exec(select(Paper).order_by(Paper.added))]


def entries_of(year: int, *, session: Session, published: bool = False, starred_only: bool = False,
               entries: list[Entry] | None = None) -> list[Entry]:
    """The entries of ``year``'s review; ``entries``: the catalog's (``read_entries``) where the caller has them."""
    return [entry for entry in (read_entries(session=session) if entries is None else entries)
            if (_published_in(entry.paper, year) if published else entry.read.startswith(f"{year}-"))
            and (entry.starred or not starred_only)]


def years_read(entries: list[Entry]) -> list[int]:
    """The years in which the entries' papers were read (added, or first noted), newest first."""
    return sorted({int(entry.read[:4]) for entry in entries}, reverse=True)


def _groups(entries: list[Entry], by: str, lang: str, published: bool) -> list[tuple[str, list[Entry]]]:
    """Groups in order; within each, ★ first, then by month read and title."""
    if by == "tag":
        # Each paper under one tag: the one most of the year's papers share (a post lists a paper once).
        counts = Counter(t for e in entries for t in e.paper.tags)
        key_of = {id(e): min(e.paper.tags, key=lambda t: (-counts[t], t)) if e.paper.tags else None for e in entries}
        names = sorted({k for k in key_of.values() if k}) + ([None] if None in key_of.values() else [])
        label = {n: n if n else WORDS[lang]["other"] for n in names}
    else:
        month = (lambda e: e.paper.published.strftime("%Y-%m") if published and e.paper.published else e.read)
        key_of = {id(e): month(e) for e in entries}
        names = sorted(set(key_of.values()))
        label = {n: f"{n[:4]}/{int(n[5:7])}" for n in names}
    return [(label[n], sorted((e for e in entries if key_of[id(e)] == n),
                              key=lambda e: (not e.starred, e.read, e.paper.title.lower()))) for n in names]


def note_summary(notes: list[Note], lang: str) -> str | None:
    """The 概要 (summary) section of the user's note in ``lang``, else its first paragraph."""
    for note in notes:
        if note.lang != lang or not note.body.strip():
            continue
        lines = note.body.strip().splitlines()
        heading = next((i for i, l in enumerate(lines) if re.match(r"^#{1,6}\s*(概要|summary)\s*$", l.strip(), re.I)), None)
        start = heading + 1 if heading is not None else 0
        paragraph: list[str] = []
        for line in lines[start:]:
            if line.lstrip().startswith("#"):
                if paragraph:
                    break
                continue
            if not line.strip():
                if paragraph:
                    break
                continue
            paragraph.append(line.strip())
        if paragraph:
            return " ".join(paragraph)
    return None


def entry_heading(entry: Entry) -> str:
    """The entry's heading as plain text: ``★ Title (2016/6)``."""
    return f"{'★ ' if entry.starred else ''}{entry.paper.title} ({entry.read[:4]}/{int(entry.read[5:7])})"


def entry_items(entry: Entry, lang: str) -> list[tuple[str, str, str]]:
    """The entry's list as (label, URL or "", text after it): authors, venue, arXiv, code, verdict."""
    words, paper = WORDS[lang], entry.paper
    items = []
    if paper.authors:
        items.append((words["authors"], "", ", ".join(paper.authors)))
    if paper.venue or paper.journal_ref:
        items.append((words["venue"], "", paper.venue or paper.journal_ref))
    if not paper.key.startswith("doi:"):
        items.append(("arXiv", f"https://arxiv.org/abs/{paper.key}", ""))
    for link in entry.code:
        kind = words.get(link.get("kind", ""), link.get("kind", ""))
        detail = ", ".join(x for x in (kind, link.get("framework")) if x)
        items.append((words["code"], link["url"], f"({detail})" if detail else ""))
    if entry.verdict:
        items.append((words["verdict"], "", f"{entry.verdict} (kb reproduce {paper.runners[0]})"))
    return items


def _entry_markdown(entry: Entry, lang: str) -> str:
    lines = [f"### {entry_heading(entry)}", ""]
    lines += [f"- {label}: " + " ".join(x for x in (url, after) if x)
              for label, url, after in entry_items(entry, lang)]
    text = note_summary(entry.notes, lang)
    if text:
        lines += ["", text]
    return "\n".join(lines) + "\n"


def review_groups(year: int, *, session: Session, by: str = "month", published: bool = False, lang: str = "ja",
                  starred_only: bool = False,
                  entries: list[Entry] | None = None) -> tuple[str, list[tuple[str, list[Entry]]]]:
    """The title of ``year``'s review and its groups of entries (see ``write_review``)."""
    if by not in ("month", "tag"):
        raise BadInput(f"--by {by!r}: choose month or tag")
    if lang not in WORDS:
        raise BadInput(f"--lang {lang!r}: choose ja or en")
    if not 1900 <= year <= datetime.now().year + 1:
        raise BadInput(f"{year} is not a year to review")
    groups = _groups(entries_of(year, published=published, starred_only=starred_only, session=session,
                                entries=entries), by, lang, published)
    return WORDS[lang]["published" if published else "title"].format(year=year), groups


def write_review(settings: Settings, year: int, *, session: Session, by: str = "month", published: bool = False,
                 lang: str = "ja", starred_only: bool = False, parts: int = 1,
                 part_files: tuple[str, str] | None = None, entries: list[Entry] | None = None) -> list[str]:
    """The post's Markdown, one string per part (``parts`` 1 or 2; ``part_files`` are what they link to);
    ``entries``: the catalog's (``read_entries``) where the caller has them already."""
    if parts not in (1, 2):
        raise BadInput(f"--parts {parts}: a review has 1 part or 2 (前編/後編)")
    title, groups = review_groups(year, session=session, by=by, published=published, lang=lang,
                                  starred_only=starred_only, entries=entries)
    split = _split(groups, parts)
    posts = []
    for number, chunk in enumerate(split):
        heading = title + (f"（{PART_NAMES[lang][number]}）" if lang == "ja" and parts == 2 else
                           f" ({PART_NAMES[lang][number]})" if parts == 2 else "")
        lines = [f"# {heading}", ""]
        if parts == 2:
            other = 1 - number
            target = (part_files or part_names(year))[other]
            lines += [f"[{PART_NAMES[lang][other]}]({target})", ""]
        if not any(entries for _name, entries in chunk):
            lines += [WORDS[lang]["none"], ""]
        for name, entries in chunk:
            lines += [f"## {name}", ""]
            lines += [_entry_markdown(e, lang) for e in entries]
        posts.append("\n".join(lines).rstrip() + "\n")
    return posts


def _split(groups: list[tuple[str, list[Entry]]], parts: int) -> list[list[tuple[str, list[Entry]]]]:
    """Whole groups into ``parts`` posts of about equal numbers of papers (a group is never cut)."""
    if parts == 1:
        return [groups]
    total, running, cut = sum(len(e) for _n, e in groups), 0, len(groups)
    for index, (_name, entries) in enumerate(groups):
        running += len(entries)
        if running >= total / 2:
            cut = index + 1
            break
    if len(groups) > 1:
        cut = min(cut, len(groups) - 1)
    return [groups[:cut], groups[cut:]]


def part_names(year: int) -> tuple[str, str]:
    """The file names of a two-part review, as the parts link to each other."""
    return f"review-{year}-1.md", f"review-{year}-2.md"
