"""``kb import`` and ``kb note --edit``: notes from files into ``papers/<slug>/notes/`` and the catalog.

Parsing (splitting exports into one note per paper) lives in kb/notes.py; this module links each
parsed note to a paper (front matter, arXiv links, then titles: the catalog's, then arXiv's title
search when online), writes it as a kb note file, and indexes it. Re-importing is idempotent: a
note's file is named after its source file, so the same note lands in the same place.
"""

import difflib
import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from sqlmodel import Session, select

from kb.arxiv_api import Arxiv, Policy
from kb.errors import BadInput, KBError, NetworkError
from kb.files import FileChanges, transaction
from kb.ids import parse_id
from kb.ingest.add import arxiv_for, upsert_from_metadata
from kb.models import Note, Paper, utcnow
from kb.notes import ParsedNote, content_hash, decode_note, note_bytes, parse_file, parse_text
from kb.paperfile import note_files
from kb.queries import find_paper, get_paper
from kb.search import index_paper
from kb.settings import Settings

NOTE_SUFFIXES = {".md", ".markdown", ".txt"}
TITLE_MATCH = 0.9


@dataclass
class Imported:
    origin: str
    title: str | None
    paper: str            # slug
    path: str             # under papers/
    action: str           # added | updated | unchanged
    linked_by: str        # front matter | arXiv link | DOI | CVF link | title (catalog) | short name (catalog) | ...
    heading: str | None = None
    mentions: list[str] = field(default_factory=list)    # slugs of other papers the section names


@dataclass
class Unlinked:
    origin: str
    title: str | None
    reason: str
    heading: str | None = None
    candidates: list[str] = field(default_factory=list)  # "slug: title" of the closest papers


@dataclass
class ImportReport:
    imported: list[Imported] = field(default_factory=list)
    unlinked: list[Unlinked] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    papers_added: list[str] = field(default_factory=list)
    addable: int = 0      # unlinked sections arXiv's title search resolves: --add-missing would link them
    dry_run: bool = False


class _DryRun(Exception):
    """Raised at the end of a dry run so the transaction and the files roll back."""


def normalize_title(title: str) -> str:
    folded = unicodedata.normalize("NFKC", title).lower()
    return re.sub(r"[^0-9a-z\u3040-\u30ff\u4e00-\u9fff]+", " ", folded).strip()


def match_title(title: str, candidates: dict[str, list[str]]) -> str | None:
    """The key whose title (or another title) equals or nearly equals ``title``.

    A near match (typos, a dropped word) counts only when no other key comes as near: two papers
    with similar titles are told apart or neither is chosen.
    """
    # Notes often add a subtitle in brackets ("... Optimization? (No, It Is Not About ...)").
    forms = {normalize_title(title), normalize_title(re.sub(r"\s*[(（\[].*?[)）\]]\s*$", "", title))} - {""}
    ratios: dict[str, float] = {}
    for key, titles in candidates.items():
        for candidate in titles:
            have = normalize_title(candidate)
            for wanted in forms:
                if have == wanted:
                    return key
                ratio = difflib.SequenceMatcher(None, wanted, have).ratio()
                ratios[key] = max(ratio, ratios.get(key, 0.0))
    ranked = sorted(ratios.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] < TITLE_MATCH:
        return None
    if len(ranked) > 1 and ranked[1][1] >= ranked[0][1] - 0.03:
        return None
    return ranked[0][0]


def note_text(note: ParsedNote, paper: Paper) -> str:
    """The kb note file of an imported note: what the post said about the paper, and where."""
    front = {"paper": paper.key, "lang": note.lang}
    for key in ("title", "source", "heading", "venue", "date"):
        if getattr(note, key):
            front[key] = getattr(note, key)
    if note.authors:
        front["authors"] = note.authors
    if note.tags:
        front["tags"] = note.tags
    if note.important:
        front["important"] = True
    if note.stars > 1:
        front["stars"] = note.stars
    if note.addenda:
        front["addenda"] = note.addenda
    if note.unfinished:
        front["unfinished"] = True
    if note.mentions:
        front["mentions"] = note.mentions
    front["origin"] = note.origin
    return "---\n" + yaml.safe_dump(front, allow_unicode=True, sort_keys=False) + "---\n" + note.body.strip() + "\n"


# The columns that tell whether a note file changed since its row was written (the rest follow them).
NOTE_IDENTITY = ("content_hash", "posted", "important", "star", "mentions")


def note_values(note: ParsedNote, source: str | None) -> dict:
    """The catalog columns of one note file's row, besides ``paper_id``, ``path`` and the times
    (the ORM path here and kb sync's bulk path write the same)."""
    return {"lang": note.lang, "title": note.title, "body": note.body, "source": source, "posted": note.date,
            "important": note.important, "star": max(note.stars, int(note.important)),
            "mentions": list(note.mentions), "content_hash": content_hash(note)}


def upsert_note(paper: Paper, note: ParsedNote, path: str, source: str | None, *, session: Session) -> str:
    """Insert or update the catalog row of one note file; returns added/updated/unchanged."""
    values = note_values(note, source)
    row = session.exec(select(Note).where(Note.paper_id == paper.id, Note.path == path)).first()
    if row is not None and all(getattr(row, key) == values[key] for key in NOTE_IDENTITY):
        return "unchanged"
    action = "added" if row is None else "updated"
    row = row or Note(paper_id=paper.id, path=path, lang=note.lang, body="", content_hash="")
    for key, value in values.items():
        setattr(row, key, value)
    row.updated = utcnow()
    session.add(row)
    session.flush()
    return action


def refresh_star(paper: Paper, *, session: Session) -> None:
    """The paper's ★: the most any of its notes gives it."""
    stars = session.exec(select(Note.star).where(Note.paper_id == paper.id)).all()
    star = max(stars, default=0)
    if paper.star != star:
        paper.star = star
        session.add(paper)
        session.flush()


def read_folder_notes(settings: Settings, folder: Path) -> tuple[dict[str, ParsedNote | None], list[str]]:
    """The note files of one paper folder by path under ``papers/``, parsed (None: unreadable, named
    in the problems returned; its catalog row stays as it was)."""
    return read_notes(settings.papers, [path.relative_to(settings.papers).as_posix() for path in note_files(folder)])


def read_notes(papers: Path, relatives: list[str], digests: dict[str, str | None] | None = None
               ) -> tuple[dict[str, ParsedNote | None], list[str]]:
    """``read_folder_notes`` of note files already listed (kb sync's scan lists them), by path under
    ``papers``; ``digests`` gets the digest of each file's bytes as read (None: it could not be read)."""
    found: dict[str, ParsedNote | None] = {}
    problems = []
    for relative in relatives:
        found[relative] = None
        name = f"{papers.name}/{relative}"
        path = f"{papers}/{relative}"
        try:
            if digests is not None:
                digests[relative] = None
            raw = note_bytes(path)
            if digests is not None:
                digests[relative] = hashlib.blake2b(raw, digest_size=16).hexdigest()
            notes, _skipped = parse_text(decode_note(raw, path), origin=relative.rpartition("/")[2])
        except KBError as exc:
            message = str(exc)
            for named in (f"{path}:", f"{relative.rpartition('/')[2]}:"):   # the reader names the file one way or the other
                if message.startswith(named):
                    message = message[len(named):].lstrip()
                    break
            problems.append(f"{name}: {message}")
            continue
        if len(notes) != 1:
            problems.append(f"{name}: expected one note, found {len(notes)}")
            continue
        found[relative] = notes[0]
    return found, problems


def load_folder_notes(settings: Settings, paper: Paper, folder: Path, *, session: Session) -> tuple[int, list[str]]:
    """Make the catalog's notes of ``paper`` equal the note files of its folder (``kb note --edit``)."""
    changed = 0
    found, problems = read_folder_notes(settings, folder)
    for relative, note in found.items():
        if note is not None:
            changed += upsert_note(paper, note, relative, note.source, session=session) != "unchanged"
    seen = set(found)
    for row in session.exec(select(Note).where(Note.paper_id == paper.id)):
        if row.path not in seen:
            session.delete(row)
            changed += 1
    session.flush()
    refresh_star(paper, session=session)
    return changed, problems


def collect_files(paths: list[Path]) -> list[Path]:
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in NOTE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            raise BadInput(f"{path}: no such file or folder")
    return files


# CVF pages are named <author>_<first title words>_<VENUE>_<year>_paper.html.
_CVF = re.compile(r"thecvf\.com/\S*/(?P<name>[^/\s]+?)_(?:CVPR|ICCV|ECCV|WACV|[A-Z]+)_\d{4}_paper(?:\.html|\.pdf)?", re.IGNORECASE)
_DOI_URL = re.compile(r"doi\.org/(?P<doi>10\.\d{4,9}/[^\s)\]]+)", re.IGNORECASE)
CANDIDATES = 3


def _short_name(title: str) -> str | None:
    """'MobileNetV2' of 'MobileNetV2: Inverted Residuals ...', 'Binarized Neural Networks' of 'Binarized
    Neural Networks: Training ...': the name before a colon, if short (at most four words; a name is
    only ever used when one catalog paper has it)."""
    head, colon, _rest = title.partition(":")
    head = normalize_title(head)
    return head if colon and head and len(head.split()) <= 4 and len(head) >= 3 else None


def _agrees(title: str, titles: list[str]) -> bool:
    """A section's title names the paper of ``titles``: the same title (nearly), or the same short
    name ("WaveNet" for "WaveNet: A Generative Model for Raw Audio")."""
    if match_title(title, {"paper": titles}) is not None:
        return True
    name = _short_name(title) or normalize_title(title)
    return any(name == _short_name(known) for known in titles)


class _Linker:
    """Finds the paper a parsed note is about: the strongest evidence first, never a guess.

    Evidence, in order: front matter; arXiv ids on the section's heading or in its 論文リンク;
    DOI and CVF links; the title, exact or near-exact, then its short name before a colon; arXiv
    ids in the body, when the section has no title of its own to check them against (a body
    that names a baseline's link must not become the baseline's note); a catalog name opening an
    untitled section; finally, online, arXiv's title search, accepted only when one entry's title
    equals the section's. Anything else is "not linked", with the closest candidates.
    """

    def __init__(self, session: Session, files: FileChanges, settings: Settings, client: Arxiv | None,
                 report: ImportReport, *, add_missing: bool = False) -> None:
        self.session, self.files, self.settings = session, files, settings
        self.client = client
        self.report = report
        self.add_missing = add_missing
        self.titles: dict[str, list[str]] = {}
        self.slugs: dict[str, str] = {}
        self.names: dict[str, set[str]] = {}       # short names and slugs -> keys
        self.dois: dict[str, str] = {}
        for paper in session.exec(select(Paper)):
            self._know(paper)

    def _know(self, paper: Paper) -> None:
        self.titles[paper.key] = [paper.title, *paper.other_titles]
        self.slugs[paper.key] = paper.slug
        for name in [paper.slug.replace("-", " "), *filter(None, map(_short_name, self.titles[paper.key]))]:
            self.names.setdefault(normalize_title(name), set()).add(paper.key)
        if paper.doi:
            self.dois[paper.doi.lower()] = paper.key
        if paper.key.startswith("doi:"):
            self.dois[paper.key[4:]] = paper.key

    def _paper(self, key: str) -> Paper | None:
        return self.session.exec(select(Paper).where(Paper.key == key)).first()

    def _add_from_arxiv(self, fetch) -> Paper | None:
        if self.client is None:
            return None
        try:
            meta = fetch(self.client)
        except NetworkError as exc:
            self.report.problems.append(f"arXiv lookups stopped: {exc}")
            self.client = None
            return None
        if meta is None:
            return None
        paper, created = upsert_from_metadata(self.files, self.settings, meta, session=self.session)
        if created:
            self.report.papers_added.append(paper.slug)
            self._know(paper)
        return paper

    def _by_title(self, title: str) -> tuple[str | None, str]:
        key = match_title(title, self.titles)
        if key is not None:
            return key, "title (catalog)"
        # "MobileNetV2" for "MobileNetV2: Inverted Residuals ...": the name alone, or the name with
        # a rest that reads like the catalog's rest (not "PIXOR: some other paper").
        name = _short_name(title) or normalize_title(title)
        keys = self.names.get(name, set())
        if len(keys) == 1:
            (key,) = keys
            rest = normalize_title(title.partition(":")[2])
            known = [normalize_title(t.partition(":")[2]) for t in self.titles[key]]
            if not rest or any(difflib.SequenceMatcher(None, rest, k).ratio() >= 0.6 for k in known):
                return key, "short name (catalog)"
        return None, ""

    def _by_links(self, note: ParsedNote) -> tuple[str | None, str]:
        for url in note.links:
            if (doi := _DOI_URL.search(url)) and (key := self.dois.get(doi["doi"].lower().rstrip("."))):
                return key, "DOI"
            if cvf := _CVF.search(url):
                words = normalize_title(cvf["name"].replace("_", " ")).split()
                for drop in (1, 2):
                    prefix = " ".join(words[drop:])
                    keys = {k for k, titles in self.titles.items() if len(words) - drop >= 3
                            and any(normalize_title(t).startswith(prefix) for t in titles)}
                    if len(keys) == 1:
                        return keys.pop(), "CVF link"
        return None, ""

    def _opening_name(self, note: ParsedNote) -> str | None:
        """The one catalog name an untitled section opens with ('AM-LFS は ...')."""
        opening = normalize_title((note.heading or note.body)[:80]).split()
        for width in (3, 2, 1):
            keys = self.names.get(" ".join(opening[:width]), set())
            if len(keys) == 1:
                return next(iter(keys))
        return None

    def link(self, note: ParsedNote) -> tuple[Paper | None, str]:
        if note.paper_ref:
            paper = find_paper(str(note.paper_ref), session=self.session)
            if paper is not None:
                return paper, "front matter"
            try:
                pid = parse_id(str(note.paper_ref))
            except BadInput:
                return None, f"front matter names {note.paper_ref!r}, which is neither a slug in the catalog nor an id"
            paper = self._add_from_arxiv(lambda c: c.by_ids([pid]).get(pid.key))
            return (paper, "front matter") if paper else (None, f"{pid.key} is not in the catalog (kb add {pid.key})")
        # Without a heading link or a title, the one paper a section links is its own; of several,
        # none is (a list of references says nothing of which one the note is about).
        own = note.own_ids or ([] if note.title or len(note.arxiv_ids) != 1 else note.arxiv_ids)
        for key in own:
            if (paper := self._paper(key)) is not None:
                return paper, "arXiv link"
        if own:
            paper = self._add_from_arxiv(lambda c: c.by_ids([parse_id(own[0])]).get(own[0]))
            if paper is not None:
                return paper, "arXiv link"
            return None, f"arXiv {own[0]} is not in the catalog and could not be fetched (kb add {own[0]})"
        key, how = self._by_links(note)
        if key is None and note.title:
            key, how = self._by_title(note.title)
        if key is None and not note.title:
            key, how = self._opening_name(note), "name (catalog)"
        if key is None and note.title:
            # A body link counts when its paper is the one the title names; a baseline's does not.
            key = next((k for k in note.arxiv_ids if k in self.titles and _agrees(note.title, self.titles[k])), None)
            how = "arXiv link"
        if key is not None:
            return self._paper(key), how
        if note.title:
            return self._by_arxiv(note)
        if len(note.arxiv_ids) > 1:
            return None, f"links {len(note.arxiv_ids)} papers and names none of them as its own (no title, heading link or 論文リンク)"
        return None, "names no paper kb could match (no arXiv link, known link or title)"

    def _by_arxiv(self, note: ParsedNote) -> tuple[Paper | None, str]:
        """Online: the body's arXiv ids whose title is the section's, then arXiv's title search."""
        title = note.title or ""
        offline = "" if self.client else " (offline: arXiv not asked)"
        if self.client is None:
            return None, "title not found in the catalog" + offline
        wanted = normalize_title(title)
        try:
            if note.arxiv_ids:
                found = self.client.by_ids([parse_id(k) for k in note.arxiv_ids])
                same = [m for m in found.values() if _agrees(title, [m.title])]
                if same:
                    return self._add_from_arxiv(lambda c: same[0]), "arXiv link"
            if len(wanted.split()) < 3:
                return None, "title not found in the catalog (too short for arXiv's title search)"
            hits = self.client.by_title(title)
        except NetworkError as exc:
            self.report.problems.append(f"arXiv lookups stopped: {exc}")
            self.client = None
            return None, "title not found in the catalog (arXiv lookups stopped)"
        best = match_title(title, {m.key: [m.title] for m in hits})
        match = next((m for m in hits if m.key == best), None)
        if match is None:
            return None, "title found neither in the catalog nor by arXiv's title search"
        if not self.add_missing:
            self.report.addable += 1
            return None, f"arXiv has it: {match.key} {match.title!r} (kb import --add-missing adds it)"
        return self._add_from_arxiv(lambda c: match), "title (arXiv)"

    def candidates(self, note: ParsedNote) -> list[str]:
        """The closest catalog papers by title, and papers the section links to, for "not linked"."""
        keys = [k for k in note.arxiv_ids if k in self.titles]
        if note.title:
            wanted = normalize_title(note.title)
            ratios = sorted(((max(difflib.SequenceMatcher(None, wanted, normalize_title(t)).ratio()
                                  for t in titles), key) for key, titles in self.titles.items()), reverse=True)
            keys += [key for ratio, key in ratios[:CANDIDATES] if ratio >= 0.5]
        return [f"{self.slugs[k]}: {self.titles[k][0]}" for k in list(dict.fromkeys(keys))[:CANDIDATES]]

    def mentions(self, note: ParsedNote, own: Paper) -> list[str]:
        """Keys of other catalog papers the section names: by arXiv id, full title or short name."""
        found = [k for k in note.arxiv_ids if k in self.titles]
        text = f" {normalize_title(note.body)} "
        for key, titles in self.titles.items():
            if any(len(t.split()) >= 3 and f" {normalize_title(t)} " in text for t in titles):
                found.append(key)
        for name, keys in self.names.items():
            if len(keys) == 1 and len(name) >= 4 and f" {name} " in text:
                found.extend(keys)
        return [k for k in dict.fromkeys(found) if k != own.key]


def _note_path(paper: Paper, source_file: Path, lang: str, used: set[str]) -> str:
    stem = re.sub(r"[^a-z0-9\-]+", "-", source_file.stem.lower()).strip("-") or "note"
    name, n = f"{paper.slug}/notes/{stem}.{lang}.md", 2
    while name in used:
        name, n = f"{paper.slug}/notes/{stem}-{n}.{lang}.md", n + 1
    used.add(name)
    return name


def import_notes(settings: Settings, paths: list[Path], *, dry_run: bool = False, offline: bool = False,
                 add_missing: bool = False, policy: Policy | None = None,
                 progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import note files: each post split into one note per paper, each linked or listed as not linked.

    Args:
        dry_run: link and report, write nothing.
        offline: link against the catalog only.
        add_missing: add the papers arXiv's title search resolves unambiguously, and link them;
            without it, ``report.addable`` counts the sections that would be linked that way.
        progress: called as ``progress(done, total)`` after each file (the CLI's progress bar).
    """
    report = ImportReport(dry_run=dry_run)
    files_in = collect_files(paths)
    client = None if offline else arxiv_for(settings, offline=False, policy=policy)
    papers_root = settings.papers.resolve()
    try:
        with transaction(settings) as (session, files):
            linker = _Linker(session, files, settings, client, report, add_missing=add_missing)
            used: set[str] = set()
            touched: dict[int, Paper] = {}
            for number, source_file in enumerate(files_in):
                if progress is not None:
                    progress(number, len(files_in))
                if source_file.resolve().is_relative_to(papers_root):
                    report.problems.append(f"{source_file}: already inside papers/; use `kb sync` for those")
                    continue
                try:
                    notes, skipped = parse_file(source_file)
                except KBError as exc:
                    report.problems.append(str(exc))
                    continue
                report.skipped += skipped
                for note in notes:
                    paper, how = linker.link(note)
                    if paper is None:
                        report.unlinked.append(Unlinked(note.origin, note.title, how, note.heading,
                                                        linker.candidates(note)))
                        continue
                    note.mentions = linker.mentions(note, paper)
                    path = _note_path(paper, source_file, note.lang, used)
                    source = note.source or str(source_file)
                    files.write(path, note_text(note, paper))
                    action = upsert_note(paper, note, path, source, session=session)
                    touched[paper.id] = paper
                    report.imported.append(Imported(note.origin, note.title, paper.slug, path, action, how,
                                                    note.heading, [linker.slugs[k] for k in note.mentions]))
            for paper in touched.values():
                refresh_star(paper, session=session)
                index_paper(paper, session=session)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return report


def sync_paper_notes(settings: Settings, ref: str) -> Paper:
    """Re-read one paper's note files (after ``kb note --edit``)."""
    with transaction(settings) as (session, _files):
        paper = get_paper(ref, session=session)
        _changed, problems = load_folder_notes(settings, paper, settings.papers / paper.slug, session=session)
        if problems:
            raise BadInput("; ".join(problems))
        index_paper(paper, session=session)
        return paper
