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
- year-in-review posts: one heading per paper with a ``(YYYY/M)`` date;
- any other post about several papers (Advent Calendar round-ups, monthly best-paper lists,
  reading lists, Zenn/Qiita posts with front matter, Hatena's Movable Type export, a rendered page
  copied as text): split where papers start, by headings, markers, bold titles, list items, table
  rows or paragraphs (see "posts of any shape" below).
"""

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kb.errors import BadInput
from kb.ids import PaperId, find_arxiv_ids, parse_id

_FRONT_MATTER_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


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
        stars: how many ★ the writer gave the paper (on its heading, or a 重要度: ★★ line); 0 for none.
        heading: the post's heading (or list item, table row) the note was cut from, as written.
        addenda: ISO dates of the writer's 追記 (addenda) in the note.
        unfinished: the writer marked the note unfinished (書きかけ, 執筆中, TODO, WIP ...).
        own_ids: keys of the arXiv ids that name the note's own paper (its heading, a 論文リンク
            section), as opposed to papers the note only mentions.
        links: other paper links in the note (DOI, OpenReview, CVF, ACL Anthology), own first.
        mentions: keys of other papers the note mentions (kept by kb when it files the note).
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
    stars: int = 0
    heading: str | None = None
    addenda: list[str] = field(default_factory=list)
    unfinished: bool = False
    own_ids: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    mentions: list[str] = field(default_factory=list)


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
    ["a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "is", "of", "on", "or", "over", "the", "to", "under", "using", "via", "vs", "with", "without"]
)

# A notes file larger than this is refused (a note is text a person wrote; 5 MB is ~2.5 million
# Japanese characters), so a stray dump or binary never makes kb import, sync or note hang.
MAX_NOTE_BYTES = 5 * 2**20
# Byte-order marks and their encodings (Windows Notepad saves "Unicode" as UTF-16 LE with a mark).
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_KANA = re.compile(r"[\u3041-\u30fa]")
# Kana, kanji, Japanese punctuation (、。「」・ー) and full-width forms.
_JAPANESE_TEXT = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uffef]")
# Runs, not single characters: detect_language adds up their lengths, one match a run, not a letter.
_JAPANESE = re.compile(r"[\u3005\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]+")
_LATIN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HTTP_LINK = re.compile(r"https?://\S+")
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
    heading: str | None = None  # the heading, list item or table row it was cut from
    post_date: str | None = None  # the post's own date, where the piece has none


def parse_file(path: Path) -> tuple[list[ParsedNote], list[str]]:
    """Parse one notes file (see ``read_note_file`` for the encodings read); see ``parse_text``."""
    return parse_text(read_note_file(path), origin=Path(path).name)


def read_note_file(path: Path) -> str:
    """The text of a notes file of at most ``MAX_NOTE_BYTES``.

    Encodings, in this order: a byte-order mark (UTF-8, UTF-16), UTF-8, then Shift_JIS (CP932,
    what Japanese Windows tools export) when the bytes decode as CP932 into Japanese text; anything
    else is refused as unreadable.
    """
    return decode_note(note_bytes(path), path)


def note_bytes(path: Path | str) -> bytes:
    """The bytes of a notes file of at most ``MAX_NOTE_BYTES`` (``BadInput`` otherwise)."""
    try:
        with open(path, "rb") as source:
            size = os.fstat(source.fileno()).st_size
            if size > MAX_NOTE_BYTES:
                raise BadInput(f"{path}: {size / 2**20:.1f} MB is over the {MAX_NOTE_BYTES // 2**20} MB limit "
                               "for a notes file; split it into smaller files")
            return source.read()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read ({exc.strerror or exc})") from None


def decode_note(raw: bytes, path: Path | str) -> str:
    """``read_note_file``'s text of a notes file's bytes (``path`` names it in errors)."""
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
    if front and (front["paper"] or front["origin"]):      # a kb note, or a note kb filed: one paper
        pieces = [_Piece(front["title"], lines, plain=False)] if front["title"] else [_markdown_piece(lines)]
    elif _is_movable_type(lines):
        pieces, skipped = _movable_type_pieces(lines, origin)
    elif any(_POSTED.match(line) for line in lines):
        pieces, skipped = _memo_series_pieces(lines, origin)
    else:
        pieces, skipped = _post(lines, front.get("title"), front.get("date"), origin)
    post_front = {**front, "title": None, "date": None} if front and not front["paper"] else front
    notes = [_note(piece, f"{origin}#{number}", post_front) for number, piece in enumerate(pieces, 1)]
    return notes, skipped


def _post(lines: list[str], title: str | None, date: str | None, origin: str) -> tuple[list[_Piece], list[str]]:
    """One post (a Markdown file, a copied page, a post's front matter and body): one piece per
    paper it names; a post that names none by its structure is one piece, as kb notes are. A
    plain-text blog export (posts above 目次/概要) gives its paper posts and the skipped others."""
    cleaned, posted = _clean_post(lines)
    date = date or posted
    if not any(_HEADING.match(line) for line in cleaned):
        blog = _blog_pieces(cleaned, origin)
        if blog is not None:
            return blog
    pieces = _post_pieces(cleaned, date)
    if pieces is None:
        if title:
            pieces = [_Piece(_paper_title(title, strict=False) or title, cleaned, plain=False)]
        elif any(_HEADING.match(line) for line in cleaned):
            pieces = _markdown_pieces(cleaned)
        else:
            pieces = [_single_plain_piece(cleaned)]
    for piece in pieces:
        piece.post_date = piece.post_date or date
    return pieces, []


def _movable_type_pieces(lines: list[str], origin: str) -> tuple[list[_Piece], list[str]]:
    """Each entry of a Hatena/Movable Type export split as a post; entries naming no paper skipped."""
    pieces, skipped = [], []
    for number, (title, date, body) in enumerate(_movable_type_posts(lines), 1):
        cleaned, _posted = _clean_post(body)
        found = _post_pieces(cleaned, date)
        if found is None and (named := _paper_title(re.sub(r"^【[^】]*】\s*", "", title), strict=True)):
            found = [_Piece(named, cleaned, plain=False, post_date=date)]
        if not found:
            skipped.append(f"{origin}#{number}: {title or '(untitled)'} (not a paper post)")
            continue
        pieces.extend(found)
    return pieces, skipped


def detect_language(text: str) -> str:
    """'ja' when kana/kanji make up at least a fifth of the letters outside links, else 'en'.

    A fifth, not a half: Japanese notes are full of English technical terms, and one kana or kanji
    carries about as much as a few Latin letters.
    """
    if text.isascii():
        return "en"
    if "://" in text:
        text = _HTTP_LINK.sub("", text)
    japanese = sum(map(len, _JAPANESE.findall(text)))
    if not japanese:
        return "en"
    encoded = text.encode("utf-8")
    latin = len(encoded) - len(encoded.translate(None, _LATIN))     # ASCII letters, counted in C
    return "ja" if japanese * 5 >= japanese + latin else "en"


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
    closing = re.compile(r"^---[ \t]*$", re.MULTILINE).search(text, opening.end())
    if closing is None:
        raise BadInput(f"{origin}: front matter opened with '---' is never closed")
    block = text[opening.end() : closing.start()]
    rest = text[closing.end() :].removeprefix("\n")
    try:
        # BaseLoader keeps every scalar a string: safe_load would read `paper: 1506.02640` as the
        # float 1506.0264, silently losing the trailing zero of the id. libyaml's, where installed:
        # kb sync reads every note's front matter, and the pure-Python parser takes ~10x as long.
        fields = yaml.load(block, Loader=_FRONT_MATTER_LOADER)
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
    front["date"] = _any_date(front["date"]) or front["date"] if front["date"] else None
    for key in ("published_at", "created_at", "updated_at"):       # Zenn, Qiita CLI, Jekyll
        value = fields.get(key)
        if front["date"] is None and isinstance(value, str):
            front["date"] = _any_date(value)
    url = fields.get("url")
    front["source"] = front["source"] or (url.strip() if isinstance(url, str) and url.strip() else None)
    heading = fields.get("heading")
    front["heading"] = heading.strip() if isinstance(heading, str) and heading.strip() else None
    addenda, mentions = fields.get("addenda", []), fields.get("mentions", [])
    front["addenda"] = [a for a in addenda if isinstance(a, str)] if isinstance(addenda, list) else []
    front["mentions"] = [m for m in mentions if isinstance(m, str)] if isinstance(mentions, list) else []
    stars = fields.get("stars", "0")
    front["stars"] = int(stars) if isinstance(stars, str) and stars.isdigit() else 0
    unfinished = fields.get("unfinished", "false")
    front["unfinished"] = isinstance(unfinished, str) and unfinished.lower() in {"true", "yes"}
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
    venue = _VENUE_LINE.search(line[bold.end() :])
    return bold["title"].strip(), _split_names(line[: bold.start()]), venue[0] if venue else None


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
        # A post with Markdown headings is split as any post is; a plain memo at its title lines.
        cleaned = _clean_post(memo)[0]
        structured = _post_pieces(cleaned, date) if any(_HEADING.match(line) for line in cleaned) else None
        papers = structured if structured is not None else _memo_papers(memo, date)
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


def _blog_pieces(lines: list[str], origin: str) -> tuple[list[_Piece], list[str]] | None:
    """Find each post by its title above a 目次/概要 anchor; keep the posts about a paper.

    Lines above the first post (blog name, tagline) belong to no post. None when the text has no
    such posts; posts that are not about a paper are reported, one line each.
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
        return None
    pieces, skipped = [], []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines)]), 1):
        title, post = lines[start].strip(), lines[start + 1 : end]
        if _is_paper_post(post):
            pieces.append(_Piece(title, post, plain=True))
        else:
            skipped.append(f"{origin}#{number}: {title} (not a paper post)")
    return pieces, skipped


def _single_plain_piece(lines: list[str]) -> _Piece:
    """A text with no post structure: one plain note, titled by its first line if that reads as a
    paper title."""
    first = next((i for i, line in enumerate(lines) if line.strip()), 0)
    if lines and _looks_like_title(lines[first].strip(), title_case=True):
        return _Piece(lines[first].strip(), lines[first + 1 :], plain=True)
    return _Piece(None, lines, plain=True)


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


# --- posts of any shape: split where papers start -----------------------------------------------
#
# Year reviews, Advent Calendar round-ups, monthly best-paper lists and reading-list indexes hold
# many papers in one post. A paper starts at a heading, list item, table row, marker line or
# paragraph that names it; its section runs over its own sub-headings (手法概要, 結果, コメント) up
# to where the next paper starts. Text before the first paper (はじめに) and after the last
# (おわりに, まとめ) belongs to no paper.

# Headings of a post's own closing parts: they end the last paper's section.
CLOSING_HEADINGS = frozenset({
    "おわりに", "終わりに", "さいごに", "最後に", "おわり", "まとめ", "全体のまとめ", "総括", "あとがき", "所感",
    "参考", "参考文献", "参考資料", "おまけ", "余談", "告知", "宣伝", "次回予告", "以上", "以上です", "references", "conclusion",
    "conclusions", "closing", "final thoughts", "wrap-up", "acknowledgements", "acknowledgments",
})
# English words that head a part of a post or of a note, never a paper.
SECTION_WORDS = frozenset({
    "introduction", "abstract", "overview", "summary", "method", "methods", "approach", "results", "experiments",
    "conclusion", "conclusions", "related work", "related works", "background", "contributions", "comments",
    "discussion", "references", "appendix", "motivation", "future work", "implementation", "links", "contents",
    "table of contents", "papers", "notes", "memo", "todo", "update", "updates", "key ideas", "key points",
    "my thoughts", "thoughts", "takeaways", "limitations", "evaluation", "datasets", "dataset", "setup",
    "honorable mentions", "further reading", "reading list", "paper list", "best papers", "top papers",
})
# The lines that say a paper's title follows: "タイトル: ...", "論文: ...", "Paper: ...".
_MARKER = re.compile(r"^(?:(?:タイトル|論文名?|題目)\s*\d*\s*(?:[:：]\s*|\s|$)|(?:paper|title)\s*\d*\s*(?:[:：]\s*|$))"
                     r"(?P<rest>.*)$",
                     re.IGNORECASE)
# Ranks and numbers in front of a title: "1.", "第3位", "No.2", "【1】", "(4)", "2本目:".
_RANK = re.compile(
    r"^(?:第?\s*\d+\s*(?:位|本目|つ目|番目|日目)?\s*[.:：)）、.\-]?|no\.?\s*\d+\s*[.:：]?|#\d+|[(（【\[]\s*\d+\s*[)）】\]]"
    r"|day\s*\d+\s*[.:：]?)\s+|^第?\s*\d+\s*(?:位|本目|つ目|番目|日目)\s*[.:：)）、]?\s*",
    re.IGNORECASE,
)
# What a post's own title says of it: "My Reading List 2019", "Top 10 Papers of NeurIPS 2019".
_POST_TITLE = re.compile(r"\b(?:reading list|papers|paper list|best of|top \d+|advent calendar|year in review|"
                         r"my notes|what i read)\b", re.IGNORECASE)
_QUOTED_TITLE = re.compile(r"^\W{0,3}[「『“\"](?P<title>[A-Za-z0-9][^」』”\"]{6,200})[」』”\"]")
_LINK_WORDS = re.compile(r"(?:paper|pdf|arxiv|abs|code|github|project|link|slides?|video|blog|論文|コード|リンク)",
                         re.IGNORECASE)
_CHECKBOX = re.compile(r"^\[[ xX✓]\]\s*")
_BRACKET_TAG = re.compile(r"^\s*(?:【[^】]*】|\[[^\]]*\](?!\()|［[^］]*］)\s*")
_MD_LINK = re.compile(r"!?\[\[?(?P<text>[^\[\]]*)\]\]?\((?P<url>[^)\s]*)(?:\s+\"[^\"]*\")?\)")   # also [[pdf]](url)
_ANY_URL = re.compile(r"https?://[^\s)<>\]]+")
_EMPHASIS = re.compile(r"\*\*|__|(?<![\w*])\*(?!\s)|`")
_QUOTES = re.compile(r"^[\"“「『](?P<title>[^\"”」』]+)[\"”」』]")
# The longest stretch of Latin script in a heading that also holds Japanese.
_LATIN_SPAN = re.compile(r"[A-Za-z0-9][A-Za-z0-9 \-‐–:,'’&+./()?!]*[A-Za-z0-9)?!]")
# A model's short name used as a heading: YOLO, MobileNetV2, ResNeXt, clcNet, GPT-3.
_SHORT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9\-.]*\+*")
# Links that name a paper: arXiv (every form kb/ids.py reads), DOI, OpenReview, CVF, ACL Anthology, alphaXiv, ar5iv.
_PAPER_URL = re.compile(
    r"(?:arxiv\.org|alphaxiv\.org|ar5iv\.(?:labs\.)?arxiv\.org|ar5iv\.org|doi\.org|openreview\.net|thecvf\.com"
    r"|aclanthology\.org|aclweb\.org/anthology|papers\.nips\.cc|proceedings\.neurips\.cc|proceedings\.mlr\.press)",
    re.IGNORECASE,
)
# Page furniture of a copied Qiita/Zenn/Hatena page.
_CHROME = re.compile(
    r"^(?:more than \d+ years? (?:have|has) passed since last update\.?|この記事は最終更新日から\d+年以上が経過しています。?"
    r"|delete article|edit article|report article|lgtm|stock|follow|share|tweet|tweeted|いいね|ストック|フォロー"
    r"|why (?:do not|don't) you register as a user and use qiita more conveniently\?.*|記事を削除|記事を編集"
    r"|\d+\s*(?:lgtm|likes?|いいね|stocks?)|\S+\.(?:png|jpe?g|gif|svg|webp))$",
    re.IGNORECASE,
)
_POSTED_AT = re.compile(
    r"^(?:posted (?:at|on)|published (?:at|on)|投稿日(?:時)?|公開日|作成日)\s*[:：]?\s*(?P<when>.+)$", re.IGNORECASE)
_JA_DATE = re.compile(rf"(?P<year>\d{{4}})\s*年\s*{_MONTH}\s*月(?:\s*(?P<day>3[01]|[12]\d|0?[1-9])\s*日)?")
_US_DATE = re.compile(r"(?P<month>1[0-2]|0?[1-9])/(?P<day>3[01]|[12]\d|0?[1-9])/(?P<year>\d{4})")
_ADDENDUM = re.compile(r"追記")
_UNFINISHED = re.compile(r"書きかけ|執筆中|未完|工事中|作成中|あとで(?:書く|追記)|後で(?:書く|追記)|\bTODO\b|\bWIP\b|\(wip\)")
_RATING = re.compile(r"^(?:重要度|おすすめ度|オススメ度|推し度|評価|rating|importance)\s*[:：]?\s*(?P<stars>[★☆]+)", re.IGNORECASE)
# alphaXiv pages carry the arXiv id as arXiv's own URLs do.
_ALPHAXIV = re.compile(r"(?:www\.)?alphaxiv\.org/(?:abs|pdf|overview)/", re.IGNORECASE)
_FLATTENED = re.compile(r"(?<=\S)\s+(?=#{2,6}\s+\S)")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?$")


@dataclass
class _Start:
    """Where one paper starts in a post."""

    at: int                  # its line
    level: int               # heading level; 7 for a lone line of a plain copy; 8 list, 9 table, 10 paragraph
    title: str | None        # as written: may carry ★, a venue suffix or a date
    heading: str             # the line, as written
    skip: int = 1            # lines that belong to the title (a bare タイトル heading and the line below)
    venue: str | None = None
    authors: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)     # text of the start line that belongs to the body


def _clean_post(lines: list[str]) -> tuple[list[str], str | None]:
    """Lines without page furniture, with flattened headings put back on lines of their own; and
    the post's date if a 'Posted at' / 投稿日 line gives one."""
    date, out = None, []
    in_code = False
    for line in lines:
        text = line.strip()
        if text.startswith(("```", "~~~")):
            in_code = not in_code
        if not in_code:
            posted = _POSTED_AT.match(text)
            if posted and date is None and (found := _any_date(posted["when"])):
                date = found
                continue
            if _CHROME.match(text):
                continue
            if _HEADING.match(text) or len(re.findall(r"(?:^|\s)#{2,6}\s", text)) >= 2:
                out.extend(_FLATTENED.split(line))
                continue
        out.append(line)
    return out, date


def _any_date(text: str) -> str | None:
    """The first date in ``text``: 2019-02-27, 2019/2/27, 2019年2月27日 or 02/27/2019."""
    for pattern in (_DATE, _JA_DATE, _US_DATE):
        if found := pattern.search(text):
            return _iso_date(found)
    return None


def _strip_title_marks(text: str) -> str:
    """A heading or list item without its rank, checkbox, bracketed tags, emphasis or quotes."""
    text = text.replace("★", " ").replace("☆", " ").strip()
    for _ in range(3):
        before = text
        text = _CHECKBOX.sub("", _RANK.sub("", _BRACKET_TAG.sub("", text))).strip()
        if text == before:
            break
    text = _EMPHASIS.sub("", text).strip()
    quoted = _QUOTES.match(text)
    return quoted["title"].strip() if quoted else text


def _paper_title(text: str, *, strict: bool) -> str | None:
    """The paper title a heading or list item names, or None.

    ``strict`` asks for an English title in Title Case (or a model's short name); otherwise any
    English title-like words will do (used once a post's structure has shown where papers start).
    """
    link = _MD_LINK.search(text)
    if link and _PAPER_URL.search(link["url"]) and len(link["text"].split()) >= 2:
        text = link["text"]
    # Links named "paper", "pdf", "code" say where, not what: "**Title** [[paper]](...) [[code]](...)".
    text = _MD_LINK.sub(lambda m: "" if _LINK_WORDS.fullmatch(m["text"].strip(" []")) else m["text"], text)
    text = _ANY_URL.sub("", _strip_title_marks(text)).strip(" :：-–|")
    if not text:
        return None
    # A short name stands alone or before a colon or dash: "YOLO", "MobileNetV2: 軽量化", "PIXOR - 点群".
    name = re.split(r"\s*(?:[:：]|\s[-–—]\s)", _split_title(text)[0] or "", maxsplit=1)[0].strip()
    short = name if _SHORT_NAME.fullmatch(name) and _is_short_name(name) else None
    if _JAPANESE.search(text):
        spans = sorted(_LATIN_SPAN.findall(text), key=len, reverse=True)
        # An item that opens with English words names its paper there ("Binarized Neural Networks: 重みを
        # 二値化する。XNOR-Net と似ている"): the opening span, not a longer one that names a related paper.
        opening = _LATIN_SPAN.match(text)
        if opening and len(opening[0].split()) >= 2:
            spans.insert(0, opening[0].rstrip(" :"))
        # "画像変換 pix2pix": one name beside a few Japanese words, once the post showed papers start here.
        if not strict and len(spans) == 1 and len(text) <= 30 and _SHORT_NAME.fullmatch(spans[0]) \
                and _is_short_name(spans[0]):
            short = short or spans[0]
        text = spans[0].strip() if spans else ""
    bare = _split_title(text)[0] or ""
    if not bare or bare.lower().strip(" :.") in SECTION_WORDS or bare.strip(" :").lower() in CLOSING_HEADINGS:
        return short
    if _POST_TITLE.search(bare):
        return None
    if _looks_like_title(text, title_case=strict):
        return text
    # "Title. Authors. Venue." or "Title - what it does": the title is the first part.
    first = re.split(r"\.\s|\s[-–—]\s|\s\|\s", text, maxsplit=1)[0].strip()
    if first != text and _looks_like_title(first, title_case=strict):
        return first
    return short


def _is_short_name(word: str) -> bool:
    """YOLO, PIXOR, MobileNetV2, ResNeXt, clcNet, GPT-3: capitals or digits inside the word."""
    return len(word) >= 3 and sum(c.isupper() or c.isdigit() for c in word[1:]) >= 1 and not word.isdigit()


def _heading_start(i: int, level: int, text: str, lines: list[str], *, strict: bool) -> _Start | None:
    """The paper a heading starts, if it names one (title, marker with the title below, or a link)."""
    heading = lines[i].strip()
    marker = _MARKER.match(_RANK.sub("", text.replace("★", "").replace("☆", "").strip()))
    if marker:
        rest = marker["rest"].strip()
        if not rest:
            below = next((j for j in range(i + 1, min(len(lines), i + 4)) if lines[j].strip()), None)
            if below is None or _HEADING.match(lines[below]):
                return None
            title, authors, venue = _title_line_parts(lines[below])
            stars = "★" * text.count("★")
            return _Start(i, level, stars + title, heading, skip=below - i + 1, venue=venue, authors=authors)
        title, authors, venue = _title_line_parts(rest)
        return _Start(i, level, "★" * text.count("★") + title, heading, venue=venue, authors=authors)
    bold = _BOLD_TITLE.search(text)
    if bold and _looks_like_title(bold["title"].strip(), title_case=False):
        title, authors, venue = _title_line_parts(text)
        return _Start(i, level, "★" * text.count("★") + title, heading, venue=venue, authors=authors)
    title = _paper_title(text, strict=strict)
    if title is None and not (_PAPER_URL.search(text) and _ANY_URL.search(text)):
        return None
    stars = "★" * text.count("★")
    date = _YEAR_MONTH.search(text)
    return _Start(i, level, stars + (title or "") + (f" {date[0]}" if date and title and date[0] not in title else ""),
                  heading)


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line, level, text) of every Markdown heading outside code blocks; a text without any
    heading (a copy of a rendered page) gets its lone short lines as headings of level 7."""
    found, in_code = [], False
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            in_code = not in_code
            continue
        heading = None if in_code else _HEADING.match(line)
        if heading:
            found.append((i, len(heading["marks"]), heading["text"]))
    if found:
        return found
    return [(i, 7, line.strip()) for i, line in enumerate(lines)
            if line.strip() and _is_lone_line(lines, i) and _title_shaped(line.strip())
            and not re.search(r"[。．|]|https?://", line)]


def _closing(text: str) -> bool:
    return _strip_title_marks(text).strip(" :：。．.!！").lower() in CLOSING_HEADINGS


def _heading_sections(lines: list[str]) -> list[tuple[_Start, int]] | None:
    """Papers started by headings: (start, end line) each; None when no heading names a paper.

    The level papers sit at is the one most headings naming a paper (strictly: a Title Case title,
    a marker, a link) have. At that level a section ends at the next paper or a closing heading; a
    shallower heading (a category) ends it too. Same-level headings that name no paper are the
    papers' own sub-sections (手法概要, 結果) when they appear between papers; otherwise (one heading
    per paper, sub-sections deeper) they end the section.
    """
    headings = _headings(lines)
    strict = [(i, level, text) for i, level, text in headings if _heading_start(i, level, text, lines, strict=True)]
    if not strict:
        return None
    levels = [level for _, level, _ in strict]
    level = min(set(levels), key=lambda lv: (-levels.count(lv), lv))
    starts = [start for i, lv, text in headings if lv == level
              and (start := _heading_start(i, lv, text, lines, strict=False))]
    at = {start.at for start in starts}
    others = [(i, lv, text) for i, lv, text in headings if i not in at and i > starts[0].at]
    between = [i for i, lv, text in others if lv == level and i < starts[-1].at and not _closing(text)]
    sub_sections = level == 7 or bool(between)
    inner_closers = {_strip_title_marks(text) for i, lv, text in others if lv == level and i < starts[-1].at}
    sections = []
    for k, start in enumerate(starts):
        end = starts[k + 1].at if k + 1 < len(starts) else len(lines)
        for i, lv, text in others:
            if not start.at < i < end:
                continue
            last = k + 1 == len(starts)
            if lv < level or (lv == level and not sub_sections) \
                    or (lv == level and last and _closing(text) and _strip_title_marks(text) not in inner_closers):
                end = i
                break
        sections.append((start, end))
    return sections


def _line_starts(lines: list[str]) -> list[_Start]:
    """Papers started by marker lines, bold titles opening a paragraph, top-level list items and
    table rows, or paragraphs that link or quote a paper, in that order of preference: the first
    kind found is the post's structure."""
    markers, bolds, items, rows, paragraphs = [], [], [], [], []
    top = min((len(m["indent"].expandtabs(4)) for line in lines if (m := _LIST_ITEM.match(line))), default=0)
    header: list[str] | None = None
    for i, line in enumerate(lines):
        text = line.strip()
        if not text:
            header = None
            continue
        marker = _MARKER.match(_EMPHASIS.sub("", text))
        if marker and marker["rest"].strip():
            title, authors, venue = _title_line_parts(marker["rest"])
            markers.append(_Start(i, 7, "★" * text.count("★") + title, text, venue=venue, authors=authors))
            continue
        item = _LIST_ITEM.match(line)
        if item and len(item["indent"].expandtabs(4)) == top:
            start = _heading_start(i, 8, item["text"], lines, strict=True)
            if start is not None:
                rest = _MD_LINK.sub("", item["text"]) if start.title else ""
                start.body = [rest] if _JAPANESE.search(rest) else []
                items.append(start)
            continue
        if text.startswith("|"):
            cells = [cell.strip() for cell in text.strip("|").split("|")]
            if _TABLE_RULE.match(text):
                continue
            if header is None:
                header = cells
                continue
            for cell in cells:
                start = _heading_start(i, 9, cell, lines, strict=True)
                if start is not None:
                    start.heading = text
                    start.body = [f"- {name}: {value}" for name, value in zip(header, cells) if value and value != cell]
                    rows.append(start)
                    break
            continue
        bold = _BOLD_TITLE.match(text)
        if bold and (i == 0 or not lines[i - 1].strip()) and _looks_like_title(bold["title"].strip(), title_case=True):
            # "**Deep Residual Learning for Image Recognition**" and its authors and venue, on the line or below.
            below = lines[i + 1].strip() if i + 1 < len(lines) else ""
            title, authors, venue = _title_line_parts(text)
            if not venue and (found := _VENUE_LINE.search(below)):
                venue = found[0]
            bolds.append(_Start(i, 10, "★" * text.count("★") + title, text, venue=venue, authors=authors))
            continue
        if i == 0 or not lines[i - 1].strip():
            # One paragraph per paper: it links the paper, or opens with its title in quotes
            # (『Deep Residual Learning for Image Recognition』は ...).
            quoted = _QUOTED_TITLE.match(text)
            if quoted and _looks_like_title(quoted["title"], title_case=True):
                paragraphs.append(_Start(i, 10, quoted["title"], text, skip=0))
            elif _PAPER_URL.search(_paragraph(lines, i)):
                first = _MD_LINK.sub(lambda m: m["text"], text)
                title = _paper_title(first, strict=True) if not _JAPANESE.search(first) or len(first) < 120 else None
                paragraphs.append(_Start(i, 10, title, text, skip=0))
    if markers:
        return markers
    if len(bolds) >= 2:
        return bolds
    if len(items) + len(rows) >= 2:          # a reading list may end with a table of papers
        return sorted(items + rows, key=lambda start: start.at)
    return paragraphs if len(paragraphs) >= 2 else []


def _paragraph(lines: list[str], i: int) -> str:
    end = next((j for j in range(i, len(lines)) if not lines[j].strip()), len(lines))
    return "\n".join(lines[i:end])


def _line_sections(lines: list[str], starts: list[_Start]) -> list[tuple[_Start, int]]:
    """Each start's section: up to the next start, a heading, or a closing line after the last."""
    sections = []
    for k, start in enumerate(starts):
        end = starts[k + 1].at if k + 1 < len(starts) else len(lines)
        for i in range(start.at + 1, end):
            text = lines[i].strip()
            if _HEADING.match(lines[i]) or (k + 1 == len(starts) and text and _closing(text) and _is_lone_line(lines, i)):
                end = i
                break
            if start.level == 9 and not text.startswith("|"):       # a table row's section is the row
                end = i
                break
            # A list item's section is its indented lines and the lines right below it; after a
            # blank line, text back at the margin belongs to the post again.
            if start.level == 8 and text and not lines[i - 1].strip() and not lines[i][:1].isspace() \
                    and not _LIST_ITEM.match(lines[i]):
                end = i
                break
        sections.append((start, end))
    return sections


def _note_sections(lines: list[str]) -> set[str]:
    """The sections of a note on one paper among ``lines``: 概要, 提案手法 ..., Summary, Method ..."""
    names = {_section_name(line) for line in lines} & PAPER_SECTIONS
    names |= {text for line in lines if (text := _heading_text(line).lower().rstrip(":")) in SECTION_WORDS}
    return names


def _category(start: _Start) -> bool:
    """A heading of one or two words without a link ("Image Recognition", "Speech") may head a list
    of papers rather than name one."""
    words = (_split_title(start.title)[0] or "").split()
    return not _PAPER_URL.search(start.heading) and len(words) <= 2 and not any(map(_is_short_name, words))


def _listed_after(lines: list[str], sections: list[tuple[_Start, int]]) -> list[tuple[_Start, int]]:
    """Papers listed (list items, table rows) under a heading that names none, after the first paper
    ("## 論文一覧" with a table of papers); an introduction's list and a closing part (まとめ,
    参考文献) stay the post's."""
    found, covered = [], sorted((start.at, end) for start, end in sections)
    gaps = [(end, following) for (_, end), (following, _) in zip(covered, [*covered[1:], (len(lines), 0)])]
    # Each heading in a gap heads its part, up to the next heading.
    parts = []
    for begin, end in gaps:
        marks = [i for i in range(begin, end) if _HEADING.match(lines[i])]
        parts += [(at, following) for at, following in zip(marks, [*marks[1:], end])]
    for begin, end in parts:
        if _closing(_heading_text(lines[begin])):
            continue
        part = lines[begin + 1:end]
        starts = _line_starts(part)
        if len(starts) >= 2 and all(start.level in (8, 9) for start in starts):
            for start, stop in _line_sections(part, starts):
                start.at += begin + 1
                found.append((start, stop + begin + 1))
    return found


def _post_pieces(lines: list[str], date: str | None) -> list[_Piece] | None:
    """One piece per paper of a post, or None when nothing in it names a paper."""
    sections = _heading_sections(lines)
    if sections is None or all(_category(start) for start, _end in sections):
        # No heading names a paper, or the headings are categories over lists of papers.
        starts = _line_starts(lines)
        # A note on one paper (概要, 提案手法 ... before the list) lists references, not papers.
        one_paper = bool(starts) and len(_note_sections(lines[: starts[0].at])) >= 2
        if not one_paper and (len(starts) >= 2 or (starts and sections is None)):
            sections = _line_sections(lines, starts)
        elif sections is None:
            return None
    else:
        sections = sorted([*sections, *_listed_after(lines, sections)], key=lambda section: section[0].at)
    # A paragraph's start has skip 0: the line that names the paper stays in its body.
    return [_Piece(start.title or None, [*start.body, *lines[start.at + start.skip : end]], plain=False,
                   venue=start.venue, authors=start.authors, heading=start.heading, post_date=date)
            for start, end in sections]


# --- Hatena's Movable Type export ---------------------------------------------------------------

_MT_FIELDS = frozenset({"AUTHOR", "TITLE", "BASENAME", "STATUS", "ALLOW COMMENTS", "CONVERT BREAKS", "DATE",
                        "CATEGORY", "IMAGE", "BODY", "EXTENDED BODY", "COMMENT", "EMAIL", "URL", "IP"})
_MT_KEY = re.compile(r"^(?P<key>[A-Z][A-Z ]+):\s?(?P<value>.*)$")
_HTML_HEADING = re.compile(r"<h(?P<n>[1-6])[^>]*>(?P<text>.*?)</h[1-6]>", re.IGNORECASE | re.DOTALL)
_HTML_LINK = re.compile(r"<a\s[^>]*href=[\"'](?P<url>[^\"']+)[\"'][^>]*>(?P<text>.*?)</a>", re.IGNORECASE | re.DOTALL)
_HTML_IMAGE = re.compile(r"<img\s[^>]*>", re.IGNORECASE)
_HTML_TAG = re.compile(r"<[^>]+>")


def _is_movable_type(lines: list[str]) -> bool:
    keys = {m["key"] for line in lines[:40] if (m := _MT_KEY.match(line))}
    return {"TITLE", "BODY"} <= keys or {"AUTHOR", "TITLE", "DATE"} <= keys


def _movable_type_posts(lines: list[str]) -> list[tuple[str, str | None, list[str]]]:
    """(title, date, body lines) of each entry of a Movable Type export (entries end at 8 dashes;
    fields at 5 dashes; the BODY is HTML, or Markdown when the blog was written in Markdown)."""
    posts, entry = [], []
    for line in [*lines, "--------"]:
        if line.strip() != "--------":
            entry.append(line)
            continue
        if any(text.strip() for text in entry):
            title, date, body, in_body = "", None, [], False
            for text in entry:
                if text.strip() == "-----":
                    in_body = False
                    continue
                key = _MT_KEY.match(text)
                if key and not in_body and key["key"] in _MT_FIELDS:
                    if key["key"] == "TITLE":
                        title = key["value"].strip()
                    elif key["key"] == "DATE":
                        date = _any_date(key["value"])
                    in_body = key["key"] in {"BODY", "EXTENDED BODY"}
                    continue
                if in_body:
                    body.append(text)
            posts.append((title, date, _html_to_markdown("\n".join(body)).split("\n")))
        entry = []
    return posts


def _html_to_markdown(text: str) -> str:
    """Enough of HTML as Markdown for splitting a post: headings, list items, links, paragraphs."""
    import html

    if not re.search(r"<(?:p|h[1-6]|li|div|br|a)\b", text, re.IGNORECASE):
        return text
    text = _HTML_IMAGE.sub("", text)
    text = _HTML_HEADING.sub(lambda m: f"\n\n{'#' * int(m['n'])} {_HTML_TAG.sub('', m['text']).strip()}\n\n", text)
    text = _HTML_LINK.sub(lambda m: f"[{_HTML_TAG.sub('', m['text']).strip()}]({m['url']})", text)
    text = re.sub(r"<li[^>]*>", "\n- ", text, flags=re.IGNORECASE)
    text = re.sub(r"</?(?:strong|b)>", "**", text, flags=re.IGNORECASE)
    text = re.sub(r"<br\s*/?>|</p>|</div>|</li>|</tr>|<p[^>]*>", "\n", text, flags=re.IGNORECASE)
    text = html.unescape(_HTML_TAG.sub("", text))
    return re.sub(r"\n{3,}", "\n\n", text)


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
    lines = piece.lines
    # A year-in-review heading may carry its (YYYY/M) date on the line below.
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if piece.heading and first is not None and (below := _YEAR_MONTH.fullmatch(lines[first].strip())):
        date = date or _iso_date(below)
        lines = lines[:first] + lines[first + 1 :]
    body = _markdown_body(lines, plain=piece.plain)
    # The paper's own link comes first: front matter `paper:`, then the 論文リンク section, its heading.
    paper = _arxiv_key(front["paper"]) if front.get("paper") else None
    own = find_arxiv_ids("\n".join(_section(lines, "論文リンク")))
    own += find_arxiv_ids(_ALPHAXIV.sub("arxiv.org/abs/", "\n".join([piece.title or "", piece.heading or ""])))
    found = ([paper] if paper else []) + own + find_arxiv_ids(_ALPHAXIV.sub("arxiv.org/abs/", "\n".join(lines)))
    rating = next((m for line in lines[:12] if (m := _RATING.match(_EMPHASIS.sub("", line.strip().lstrip("#- "))))),
                  None)
    stars = max((piece.title or "").count("★"), (piece.heading or "").count("★"),
                rating["stars"].count("★") if rating else 0)
    links = [url for url in _ANY_URL.findall("\n".join([piece.heading or "", *lines]))
             if _PAPER_URL.search(url) and not find_arxiv_ids(_ALPHAXIV.sub("arxiv.org/abs/", url))]
    return ParsedNote(
        title=front.get("title") or title,
        body=body,
        lang=front.get("lang") or detect_language(body or title or ""),
        paper_ref=front.get("paper"),
        arxiv_ids=list(dict.fromkeys(pid.key for pid in found)),
        source=front.get("source"),
        tags=front.get("tags", []),
        venue=front.get("venue") or piece.venue or venue,
        date=front.get("date") or piece.date or date or piece.post_date,
        important=front.get("important") or important or stars > 0,
        origin=front.get("origin") or origin,
        authors=front.get("authors") or piece.authors or _authors(lines),
        stars=front.get("stars") or stars,
        heading=front.get("heading") or piece.heading,
        addenda=front.get("addenda") or _addenda(lines),
        unfinished=front.get("unfinished") or bool(_UNFINISHED.search(body)),
        own_ids=list(dict.fromkeys(pid.key for pid in own)),
        links=list(dict.fromkeys(links)),
        mentions=front.get("mentions", []),
    )


def _addenda(lines: list[str]) -> list[str]:
    """The dates of the writer's 追記 lines ('追記 (2020/1/5)', '【追記】2020-01-05')."""
    dates = [_any_date(line[m.end() : m.end() + 30]) or _any_date(line[: m.start()][-20:])
             for line in lines if (m := _ADDENDUM.search(line))]
    return list(dict.fromkeys(d for d in dates if d))


def _arxiv_key(ref: str) -> PaperId | None:
    """The arXiv ``PaperId`` of a front matter reference, or None for a slug or a DOI."""
    try:
        pid = parse_id(ref)
    except BadInput:
        return None
    return pid if pid.is_arxiv else None
