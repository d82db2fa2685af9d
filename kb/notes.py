"""Reading notes on papers, parsed into one plain record per paper (notes-style.md).

Pure parsing: no database, no network. The forms users have:

- a kb note: Markdown with optional YAML front matter (``paper``, ``lang``, ``source``, ``tags``,
  and the fields kb adds when it files an imported note), one note per file;
- a blog export: several posts in one plain-text file, each paper post a title line (venue in
  parentheses) followed within a few lines by a table of contents (目次) or 概要 and sections such
  as 論文リンク, 著者, 提案手法; posts that are not about a paper are skipped and reported;
- a Qiita memo series: posts separated by ``- 投稿日:`` lines, one post summarising one or more
  papers, each introduced only by its English title on its own line (or, where the export lost a
  line break, glued to the end of the previous Japanese sentence);
- ``### タイトル`` blocks: authors, the title in bold quotes and the venue on one line;
- year-in-review posts: one heading per paper with a ``(YYYY/M)`` date.
"""

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb.errors import BadInput
from kb.ids import PaperId, find_arxiv_ids, parse_id


@dataclass
class ParsedNote:
    """One note about one paper, as found in a file.

    Attributes:
        title: the paper title as written (no ★, venue suffix or date); None if the note names none.
        body: the note as Markdown, without its title line.
        lang: 'ja' or 'en' (front matter ``lang`` wins over detection).
        paper_ref: front matter ``paper``, verbatim (any id form or a slug).
        arxiv_ids: keys of the arXiv ids linked in the note, the paper's own link first.
        source: front matter ``source``.
        tags: front matter ``tags``.
        venue: e.g. 'CVPR2016' from 'Title(CVPR2016)', 'CVPR 2018' from the line after a title.
        date: ISO date of the post ('2019-02-27') or of a year-in-review heading ('2017-06').
        important: the title carries a ★.
        origin: '<file name>#<n>', n counting this file's notes from 1.
        authors: names from a 著者 section or a タイトル line, affiliations dropped.
    """

    title: str | None
    body: str
    lang: str
    paper_ref: str | None
    arxiv_ids: list[str]
    source: str | None
    tags: list[str]
    venue: str | None
    date: str | None
    important: bool
    origin: str
    authors: list[str]


# Bare section names of the blog and Qiita exports; they become "## <name>" headings.
SECTION_NAMES = frozenset(
    {
        "概要", "論文リンク", "著者", "従来の課題", "提案手法", "結果", "実装", "参考リンク",
        "背景", "仮説", "提案", "評価", "関連研究", "実験", "考察", "まとめ", "感想", "新規性",
    }
)
# Sections that make a post "about a paper" when at least two of them are present.
PAPER_SECTIONS = frozenset({"概要", "著者", "従来の課題", "提案手法", "結果", "新規性"})
# A blog post's title sits a few lines above its table of contents (目次) or, without one, 概要.
POST_ANCHORS = frozenset({"目次", "概要"})
# How many non-blank lines above an anchor may hold the post title and its short intro.
INTRO_LINES = 8
# Lines after which a Qiita memo names the paper it is about.
READ_MARKERS = frozenset({"読んだ論文", "論文"})
TITLE_HEADINGS = frozenset({"タイトル", "title"})
# Words left lower case in Title Case.
SMALL_WORDS = frozenset(
    "a an and as at by for from in into is of on or over the to under using via vs with without".split()
)

# A notes file larger than this is refused (a note is text a person wrote; 5 MB is ~2.5 million
# Japanese characters), so a stray dump or binary never makes kb import, sync or note hang.
MAX_NOTE_BYTES = 5 * 2**20
# Byte-order marks and their encodings (Windows Notepad saves "Unicode" as UTF-16 LE with a mark).
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_KANA = re.compile(r"[\u3041-\u30fa]")
# Kana, kanji, Japanese punctuation (、。「」・ー) and full-width forms.
_JAPANESE_TEXT = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uffef]")
_JAPANESE = re.compile(r"[\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN = re.compile(r"[A-Za-z]")
_POSTED = re.compile(r"^-?\s*投稿日\s*[:：]\s*(?P<when>\S+)")
_MONTH = r"(?P<month>1[0-2]|0?[1-9])"
_DATE = re.compile(rf"(?P<year>\d{{4}})[-/]{_MONTH}(?:[-/](?P<day>3[01]|[12]\d|0?[1-9]))?")
_YEAR_MONTH = re.compile(rf"[(（]\s*(?P<year>\d{{4}})\s*/\s*{_MONTH}\s*[)）]")
_VENUE = r"[A-Z][A-Za-z&\-]+\s?(?:(?:19|20)\d{2}|'\d{2})"
_VENUE_LINE = re.compile(_VENUE)
_VENUE_SUFFIX = re.compile(rf"\s*[(（]\s*(?P<venue>{_VENUE})\s*[)）]\s*$")
_HEADING = re.compile(r"^(?P<marks>#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
_LIST_ITEM = re.compile(r"^(?P<indent>[ \t]*)(?:•\s*|(?:[-*+]|\d+[.)])\s+)(?P<text>.*)$")
_BULLET = re.compile(r"^(?P<indent>[ \t]*)•\s*(?P<text>.*)$")
# Hatena image placeholders left where figures were: "f:id:user:20190629183925p:plain".
_IMAGE = re.compile(r"\[?f:id:[^\s:\]]+:[^\s:\]]+:[a-z]+\]?")
_LINK = re.compile(r"(?:https?://)?[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}(?:/\S*)?")
_URL = re.compile(r"https?://|www\.")
# Author, "title in bold quotes", venue: Kaiming He, Jian Sun. **"Deep Residual ..."** CVPR 2016.
_BOLD_TITLE = re.compile(r"[\"“]?\*\*\s*[\"“]?(?P<title>[^*\"“”]+?)[\"”]?\s*\*\*[\"”]?")
# A title glued to the end of a Japanese sentence, where the export lost a line break.
_GLUED_TITLE = re.compile(r"^(?P<sentence>.*[。．！？])\s*(?P<title>[^。．！？]+)$")
_SENTENCE_END = tuple("。．.、,，:：!！？")
_LANG_CODE = re.compile(r"[a-z]{2,3}")


@dataclass
class _Piece:
    """One paper's share of a file, before it becomes a ``ParsedNote``."""

    title: str | None  # as written: may still carry ★, a venue suffix or a (YYYY/M) date
    lines: list[str]  # the note's own text, without its title line
    plain: bool  # plain-text export: bare section names, • bullets, stray indentation
    venue: str | None = None
    date: str | None = None
    authors: list[str] = field(default_factory=list)


def parse_file(path: Path) -> tuple[list[ParsedNote], list[str]]:
    """Parse one notes file (see ``read_note_file`` for the encodings read); see ``parse_text``."""
    return parse_text(read_note_file(path), origin=Path(path).name)


def read_note_file(path: Path) -> str:
    """The text of a notes file of at most ``MAX_NOTE_BYTES``.

    Encodings, in this order: a byte-order mark (UTF-8, UTF-16), UTF-8, then Shift_JIS (CP932,
    what Japanese Windows tools export) when the bytes decode as CP932 into Japanese text; anything
    else is refused as unreadable.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_NOTE_BYTES:
            raise BadInput(f"{path}: {size / 2**20:.1f} MB is over the {MAX_NOTE_BYTES // 2**20} MB limit "
                           "for a notes file; split it into smaller files")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None
    for bom, encoding in _BOMS:
        if raw.startswith(bom):
            try:
                return raw[len(bom):].decode(encoding)
            except UnicodeDecodeError as exc:
                raise BadInput(f"{path}: starts with a {encoding} byte-order mark but is not {encoding} "
                               f"(bad bytes at offset {exc.start + len(bom)})") from None
    if b"\0" in raw:
        raise BadInput(f"{path}: not a text file (it contains NUL bytes)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start
    try:
        text = raw.decode("cp932")
    except UnicodeDecodeError:
        text = ""
    if _looks_japanese(text):
        return text
    raise BadInput(f"{path}: not UTF-8 text (bad byte at offset {offset}), nor Shift_JIS Japanese; "
                   "save it as UTF-8 and import it again")


def _looks_japanese(text: str) -> bool:
    """Kana present, and Japanese characters most of the non-ASCII ones: bytes of another encoding
    that happen to decode as CP932 give scattered kanji and half-width katakana, rarely kana."""
    foreign = [c for c in text if ord(c) > 0x7F]
    japanese = sum(bool(_JAPANESE_TEXT.match(c)) for c in foreign)
    return bool(_KANA.search(text)) and japanese >= 0.8 * len(foreign)


def parse_text(text: str, *, origin: str = "<text>") -> tuple[list[ParsedNote], list[str]]:
    """Split one file's text into notes, one per paper.

    Returns the notes (origin ``<origin>#<n>``, n counting notes from 1) and one line per skipped
    post that is not about a paper (``<origin>#<n>: <post title> (not a paper post)``, n counting
    posts from 1). Raises ``BadInput`` for malformed front matter.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        return [], []
    front, text = _split_front_matter(text, origin)
    lines = text.split("\n")
    skipped: list[str] = []
    if front and front["title"]:
        pieces = [_Piece(front["title"], lines, plain=False)]
    elif front:
        pieces = [_markdown_piece(lines)]
    elif any(_POSTED.match(line) for line in lines):
        pieces, skipped = _memo_series_pieces(lines, origin)
    elif any(_HEADING.match(line) for line in lines):
        pieces = _markdown_pieces(lines)
    else:
        pieces, skipped = _blog_pieces(lines, origin)
    notes = [_note(piece, f"{origin}#{number}", front) for number, piece in enumerate(pieces, 1)]
    return notes, skipped


def detect_language(text: str) -> str:
    """'ja' when kana/kanji make up at least a fifth of the letters outside links, else 'en'.

    A fifth, not a half: Japanese notes are full of English technical terms, and one kana or kanji
    carries about as much as a few Latin letters.
    """
    text = re.sub(r"https?://\S+", "", text)
    japanese = len(_JAPANESE.findall(text))
    latin = len(_LATIN.findall(text))
    return "ja" if japanese and japanese * 5 >= japanese + latin else "en"


def content_hash(note: ParsedNote) -> str:
    """sha256 of title, body and language, blind to trailing whitespace and Unicode normal form."""

    def normalized(text: str) -> str:
        text = unicodedata.normalize("NFC", text.replace("\r\n", "\n"))
        return "\n".join(line.rstrip() for line in text.strip().split("\n"))

    payload = "\x1e".join([normalized(note.title or ""), normalized(note.body), note.lang])
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


# --- kb notes: front matter ---------------------------------------------------------------------


def _split_front_matter(text: str, origin: str) -> tuple[dict, str]:
    """The front matter's fields (an empty dict without front matter) and the text after it.

    Besides the keys users write (paper, lang, source, tags), the keys kb itself writes when it
    files an imported note (title, venue, date, authors, important, origin) are read back, so a
    filed note parses to the record it was written from. A present front matter, even an empty
    one, gives every key, so the dict is truthy.
    """
    opening = re.match(r"---[ \t]*\n", text)
    if not opening:
        return {}, text
    closing = re.compile(r"^---[ \t]*$", re.M).search(text, opening.end())
    if closing is None:
        raise BadInput(f"{origin}: front matter opened with '---' is never closed")
    block = text[opening.end() : closing.start()]
    rest = text[closing.end() :].removeprefix("\n")
    try:
        # BaseLoader keeps every scalar a string: safe_load would read `paper: 1506.02640` as the
        # float 1506.0264, silently losing the trailing zero of the id.
        fields = yaml.load(block, Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark else ""
        problem = getattr(exc, "problem", None) or "cannot be parsed"
        raise BadInput(f"{origin}: front matter is not valid YAML ({problem}{where})") from None
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise BadInput(f"{origin}: front matter must be 'key: value' lines (paper, lang, source, tags)")
    front: dict = {}
    for key in ("paper", "lang", "source", "title", "venue", "date", "origin"):
        value = fields.get(key, "")
        if not isinstance(value, str):
            raise BadInput(f"{origin}: front matter '{key}' must be a single value")
        front[key] = value.strip() or None
    for key in ("tags", "authors"):
        value = fields.get(key, [])
        if isinstance(value, str):
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise BadInput(f"{origin}: front matter '{key}' must be a list such as [a, b]")
        front[key] = [item.strip() for item in value if item.strip()]
    important = fields.get("important", "false")
    if not isinstance(important, str) or important.lower() not in {"true", "yes", "false", "no"}:
        raise BadInput(f"{origin}: front matter 'important' must be true or false")
    front["important"] = important.lower() in {"true", "yes"}
    if front["lang"]:
        front["lang"] = front["lang"].lower()
        if not _LANG_CODE.fullmatch(front["lang"]):
            raise BadInput(f"{origin}: front matter 'lang' must be a language code such as ja or en, not {front['lang']!r}")
    return front, rest


# --- Markdown: kb notes, タイトル blocks, year-in-review posts ------------------------------------


def _markdown_pieces(lines: list[str]) -> list[_Piece]:
    """One piece per タイトル block, else one per dated heading, else the whole text."""
    title_blocks = [i for i, line in enumerate(lines) if _heading_text(line).lower() in TITLE_HEADINGS]
    if title_blocks:
        ends = [*title_blocks[1:], len(lines)]
        return [_markdown_piece(lines[start:end]) for start, end in zip(title_blocks, ends)]
    dated = _dated_headings(lines)
    if dated:
        return dated
    return [_markdown_piece(lines)]


def _markdown_piece(lines: list[str]) -> _Piece:
    """A single Markdown note: title from a タイトル block, else from its first H1 heading."""
    lines = list(lines)
    for i, line in enumerate(lines):
        if _heading_text(line).lower() not in TITLE_HEADINGS:
            continue
        below = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
        if below is None or _HEADING.match(lines[below]):
            continue
        title, authors, venue = _title_line_parts(lines[below])
        del lines[below]
        del lines[i]
        return _Piece(title, lines, plain=False, venue=venue, authors=authors)
    in_code = False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code      # a '# comment' inside a code block is not a heading
            continue
        heading = None if in_code else _HEADING.match(line)
        if heading and len(heading["marks"]) == 1:
            del lines[i]
            return _Piece(heading["text"], lines, plain=False)
    # A pasted memo often starts with the paper's English title as a paragraph of its own.
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and not _HEADING.match(lines[first]) and _is_lone_line(lines, first) \
            and _looks_like_title(lines[first].strip(), title_case=True):
        title = lines.pop(first).strip()
        return _Piece(title, lines, plain=False)
    return _Piece(None, lines, plain=False)


def _title_line_parts(line: str) -> tuple[str, list[str], str | None]:
    """Title, authors and venue from a line such as 'A, B. **"Title"** CVPR 2016.'"""
    bold = _BOLD_TITLE.search(line)
    if bold is None:
        return line.strip(), [], None
    venue = line[bold.end() :].strip(" \t.,;:()（）")
    return bold["title"].strip(), _split_names(line[: bold.start()]), venue or None


def _dated_headings(lines: list[str]) -> list[_Piece]:
    """Year-in-review posts: each heading with a (YYYY/M) date, on it or just below, is a paper."""
    pieces = []
    for i, line in enumerate(lines):
        heading = _HEADING.match(line)
        if not heading:
            continue
        level = len(heading["marks"])
        end = next(
            (j for j in range(i + 1, len(lines)) if (other := _HEADING.match(lines[j])) and len(other["marks"]) <= level),
            len(lines),
        )
        section = lines[i + 1 : end]
        below = next((j for j, text in enumerate(section) if text.strip()), None)
        if _YEAR_MONTH.search(heading["text"]):
            pieces.append(_Piece(heading["text"], section, plain=False))
        elif below is not None and (date := _YEAR_MONTH.fullmatch(section[below].strip())):
            del section[below]
            pieces.append(_Piece(heading["text"], section, plain=False, date=_iso_date(date)))
    return pieces


def _heading_text(line: str) -> str:
    heading = _HEADING.match(line)
    return heading["text"].replace("★", "").strip() if heading else ""


# --- Qiita memo series -------------------------------------------------------------------------


def _memo_series_pieces(lines: list[str], origin: str) -> tuple[list[_Piece], list[str]]:
    """Posts start at '- 投稿日:' lines; the line after is the post title, then the memo."""
    starts = [i for i, line in enumerate(lines) if _POSTED.match(line)]
    pieces, skipped = [], []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)]), 1):
        date = _iso_date(_DATE.search(_POSTED.match(lines[start])["when"]))
        post = lines[start + 1 : end]
        while post and not post[0].strip():
            post = post[1:]
        post_title, memo = (post[0].strip(), post[1:]) if post else ("", [])
        papers = _memo_papers(memo, date)
        # A one-paper post may name its paper only in the post title: "【論文読み】<title>".
        named = re.sub(r"^【[^】]*】\s*", "", post_title)
        if not papers and _looks_like_title(named, title_case=False):
            papers = [_Piece(named, memo, plain=True, date=date)]
        if not papers:
            skipped.append(f"{origin}#{number}: {post_title or '(untitled)'} (not a paper post)")
        pieces.extend(papers)
    return pieces, skipped


def _memo_papers(body: list[str], date: str | None) -> list[_Piece]:
    """Split one memo post at each paper title it names."""
    pieces: list[_Piece] = []
    first_line = True
    after_marker = False
    for line in body:
        text = line.strip()
        if not text:
            if pieces:
                pieces[-1].lines.append(line)
            continue
        title, sentence = None, None
        if text in READ_MARKERS:
            after_marker = True
            continue
        if after_marker or _looks_like_title(text, title_case=not first_line):
            title = text
        elif (glued := _GLUED_TITLE.match(text)) and _looks_like_title(glued["title"].strip(), title_case=False):
            title, sentence = glued["title"].strip(), glued["sentence"]
        first_line = after_marker = False
        current = pieces[-1] if pieces else None
        if title:
            if current and sentence:
                current.lines.append(sentence)
            pieces.append(_Piece(title, [], plain=True, date=date))
        elif current and not current.lines and current.venue is None and _VENUE_LINE.fullmatch(text):
            current.venue = text
        elif current:
            current.lines.append(line)
    return pieces


# --- blog export -------------------------------------------------------------------------------


def _blog_pieces(lines: list[str], origin: str) -> tuple[list[_Piece], list[str]]:
    """Find each post by its title above a 目次/概要 anchor; keep the posts about a paper.

    Lines above the first post (blog name, tagline) belong to no post. A text with no post
    structure at all is one plain note, titled by its first line if that reads as a paper title.
    """
    starts: list[int] = []
    previous_anchor = -1
    for i, line in enumerate(lines):
        if line.strip() in POST_ANCHORS:
            title_at = _post_title_above(lines, i, previous_anchor)
            if title_at is not None:
                starts.append(title_at)
            previous_anchor = i
    if not starts:
        first = next((i for i, line in enumerate(lines) if line.strip()), 0)
        if _looks_like_title(lines[first].strip(), title_case=True):
            return [_Piece(lines[first].strip(), lines[first + 1 :], plain=True)], []
        return [_Piece(None, lines, plain=True)], []
    pieces, skipped = [], []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)]), 1):
        title, post = lines[start].strip(), lines[start + 1 : end]
        if _is_paper_post(post):
            pieces.append(_Piece(title, post, plain=True))
        else:
            skipped.append(f"{origin}#{number}: {title} (not a paper post)")
    return pieces, skipped


def _post_title_above(lines: list[str], anchor: int, floor: int) -> int | None:
    """The line holding the title of the post whose anchor (目次/概要) is at ``anchor``.

    Looks at most INTRO_LINES non-blank lines up, stopping at the previous anchor or a section
    name (those belong to the post before). The title is a paragraph of one line that does not
    read as a sentence, list item or link; a line that looks like a paper title wins over the
    intro lines ("論文メモ", "図は論文からの引用") that may sit between it and the anchor.
    """
    above: list[int] = []
    i = anchor - 1
    while i > floor and len(above) < INTRO_LINES:
        text = lines[i].strip()
        if text:
            if _section_name(text):
                break
            above.append(i)
        i -= 1
    candidates = [i for i in above if _is_lone_line(lines, i) and _title_shaped(lines[i].strip())]
    for i in candidates:
        if _looks_like_title(lines[i].strip(), title_case=True):
            return i
    return candidates[0] if candidates else None


def _is_lone_line(lines: list[str], i: int) -> bool:
    """True when line ``i`` is a paragraph by itself (blank or nothing above and below)."""
    return (i == 0 or not lines[i - 1].strip()) and (i + 1 == len(lines) or not lines[i + 1].strip())


def _title_shaped(text: str) -> bool:
    return (
        len(text) <= 150
        and not text.endswith(_SENTENCE_END)
        and not _LIST_ITEM.match(text)
        and not _LINK.fullmatch(text)
        and not _IMAGE.search(text)
    )


def _is_paper_post(post: list[str]) -> bool:
    """An arXiv link, a 論文リンク section or two paper sections (概要, 提案手法, ...)."""
    sections = {_section_name(line) for line in post} - {None}
    return bool(find_arxiv_ids("\n".join(post))) or "論文リンク" in sections or len(sections & PAPER_SECTIONS) >= 2


# --- shared: titles, sections, authors, body -----------------------------------------------------


def _looks_like_title(text: str, *, title_case: bool) -> bool:
    """An English paper title: words, no Japanese, not a sentence, link or venue.

    With ``title_case`` most words other than SMALL_WORDS must be capitalised: the check for a
    line that nothing else marks as a title. A ★, a venue suffix or a date do not count.
    """
    text = _split_title(text)[0] or ""
    words = text.split()
    if (
        len(words) < 2
        or len(text) > 300
        or not text[0].isalnum()
        or text.endswith((".", ",", ";", ":"))
        or _JAPANESE.search(text)
        or _URL.search(text)
        or "$" in text
        or _VENUE_LINE.fullmatch(text)
    ):
        return False
    if not title_case:
        return True
    content = [word for word in words if word.lower() not in SMALL_WORDS]
    capitalised = sum(word[0].isupper() or word[0].isdigit() for word in content)
    return capitalised * 2 > len(content)


def _section_name(line: str) -> str | None:
    """The section a line opens (bare '概要' or a heading '## 概要'), if it is a known one."""
    text = line.strip().lstrip("#").strip().rstrip(":：").strip()
    return text if text in SECTION_NAMES else None


def _section(lines: list[str], name: str) -> list[str]:
    """The lines of section ``name``, up to the next section name or Markdown heading."""
    start = next((i for i, line in enumerate(lines) if _section_name(line) == name), None)
    if start is None:
        return []
    end = next(
        (i for i in range(start + 1, len(lines)) if _section_name(lines[i]) or _HEADING.match(lines[i])),
        len(lines),
    )
    return lines[start + 1 : end]


def _authors(lines: list[str]) -> list[str]:
    """Names from the 著者 section; a list item with nested items is an affiliation and dropped."""
    items: list[tuple[int, str]] = []
    for line in _section(lines, "著者"):
        item = _LIST_ITEM.match(line)
        if item:
            items.append((len(item["indent"].expandtabs(4)), item["text"]))
        elif line.strip():
            items.append((0, line))
    names = []
    for k, (indent, text) in enumerate(items):
        has_members = k + 1 < len(items) and items[k + 1][0] > indent
        if not has_members:
            names.extend(_split_names(text))
    return names


def _split_names(text: str) -> list[str]:
    """'Kaiming He (MSRA), Jian Sun and Ross Girshick.' -> the three names."""
    text = re.sub(r"[(（][^)）]*[)）]", "", text)
    parts = re.split(r"\s*(?:[,，、;]|\band\b|&)\s*", text)
    return [name for part in parts if (name := part.strip(" \t.・*\"“”"))]


def _iso_date(match: re.Match | None) -> str | None:
    if match is None:
        return None
    date = f"{match['year']}-{int(match['month']):02d}"
    day = match.groupdict().get("day")
    return f"{date}-{int(day):02d}" if day else date


def _split_title(raw: str | None) -> tuple[str | None, bool, str | None, str | None]:
    """Title without ★, (YYYY/M) date or '(CVPR2016)' suffix; and the ★, venue and date found."""
    if raw is None:
        return None, False, None, None
    important = "★" in raw
    text = raw.replace("★", "").replace("☆", "").strip()
    date = _iso_date(_YEAR_MONTH.search(text))
    text = _YEAR_MONTH.sub("", text).strip()
    suffix = _VENUE_SUFFIX.search(text)
    venue = suffix["venue"] if suffix else None
    text = _VENUE_SUFFIX.sub("", text).strip()
    return text or None, important, venue, date


def _markdown_body(lines: list[str], *, plain: bool) -> str:
    """The note as Markdown: • lists as '-' lists, placeholders and 目次 dropped.

    In plain-text exports bare section names become '## ' headings and indentation is dropped
    (Markdown would read four leading spaces as code).
    """
    out: list[str] = []
    bullet_indents: list[int] = []  # indents of the open • list levels
    for raw in lines:
        line = _IMAGE.sub("", raw).rstrip()
        text = line.strip()
        if text == "目次" or _heading_text(line) == "目次":
            continue
        if not text:
            out.append("")
            continue
        bullet = _BULLET.match(line)
        if bullet:
            indent = len(bullet["indent"].expandtabs(4))
            while bullet_indents and bullet_indents[-1] >= indent:
                bullet_indents.pop()
            bullet_indents.append(indent)
            out.append("    " * (len(bullet_indents) - 1) + "- " + bullet["text"].strip())
            continue
        bullet_indents.clear()
        if plain and (section := _section_name(text)):
            out.extend(["", f"## {section}", ""])
        else:
            out.append(text if plain else line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def _note(piece: _Piece, origin: str, front: dict) -> ParsedNote:
    """The record of one piece; what the front matter states wins over what the text suggests."""
    title, important, venue, date = _split_title(piece.title)
    body = _markdown_body(piece.lines, plain=piece.plain)
    # The paper's own link comes first: front matter `paper:`, then the 論文リンク section.
    paper = _arxiv_key(front["paper"]) if front.get("paper") else None
    found = [paper] if paper else []
    found += find_arxiv_ids("\n".join(_section(piece.lines, "論文リンク")))
    found += find_arxiv_ids("\n".join([piece.title or "", *piece.lines]))
    return ParsedNote(
        title=front.get("title") or title,
        body=body,
        lang=front.get("lang") or detect_language(body or title or ""),
        paper_ref=front.get("paper"),
        arxiv_ids=list(dict.fromkeys(pid.key for pid in found)),
        source=front.get("source"),
        tags=front.get("tags", []),
        venue=front.get("venue") or piece.venue or venue,
        date=front.get("date") or piece.date or date,
        important=front.get("important") or important,
        origin=front.get("origin") or origin,
        authors=front.get("authors") or piece.authors or _authors(piece.lines),
    )


def _arxiv_key(ref: str) -> PaperId | None:
    """The arXiv ``PaperId`` of a front matter reference, or None for a slug or a DOI."""
    try:
        pid = parse_id(ref)
    except BadInput:
        return None
    return pid if pid.is_arxiv else None
