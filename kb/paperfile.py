"""``papers/<slug>/paper.yaml``: the git-tracked source of a paper, its schema and its text.

A paper folder holds ``paper.yaml`` (metadata snapshot, tags, runners, claims) and notes
``notes.<lang>.md`` (written for kb) or ``notes/<name>.<lang>.md`` (imported). This module only
parses and writes that text; ``kb/ingest`` puts it in the catalog.
"""

import datetime as dt
import difflib
import io
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError as RoundTripError
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from kb.codelinks import check_code_links
from kb.errors import BadInput
from kb.ids import parse_id
from kb.models import Paper

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)     # libyaml's: ~10x faster, for kb sync
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
DIRECTIONS = ("higher", "lower")
_CLAIM_REQUIRED = {"metric": str, "dataset": str, "value": (int, float), "direction": str, "source": str}
_CLAIM_OPTIONAL = {"tolerance": (int, float), "unit": str, "setting": str, "when": dict, "device": str, "seeds": int,
                   "task": str, "model": str, "split": str, "extra_data": (bool, str), "data_free": bool}
_LISTS = ("other_titles", "authors", "categories", "tags", "runners")
_TEXTS = ("title", "venue", "primary_category", "doi", "journal_ref", "comment", "abstract", "summary")
_DATES = ("published", "updated", "added")
# The keys in the order kb writes them; an edit puts a key the file lacks where this order puts it.
_ORDER = ("id", "slug", "version", "title", "other_titles", "authors", "year", "venue", "categories",
          "primary_category", "doi", "journal_ref", "comment", *_DATES, "summary", "abstract", "tags", "runners",
          "claims")
_KNOWN = set(_ORDER) | {"code"}   # code: links checked here, read from the file (kb/codelinks.py)
_ALWAYS = {"id", "slug", "title", "authors", "added", "tags", "runners", "claims"}   # written even when empty
# Scalar styles an edit keeps when it replaces a value: a quoted title stays quoted, a folded summary folded.
_STYLES = (DoubleQuotedScalarString, SingleQuotedScalarString, FoldedScalarString, LiteralScalarString)


def slugify(title: str, *, max_words: int = 4) -> str:
    """A short lowercase slug from a title: the part before a colon when it is short (``YOLO: ...``)."""
    head = title.split(":", 1)[0] if ":" in title and len(title.split(":", 1)[0].split()) <= 3 else title
    ascii_text = unicodedata.normalize("NFKD", head).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    stop = {"a", "an", "the", "of", "for", "and", "on", "in", "with", "to", "via", "using", "by"}
    kept = [w for w in words if w not in stop] or words or ["paper"]
    return "-".join(kept[:max_words])[:48].strip("-")


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise BadInput(f"slug {slug!r} is not allowed: use lowercase letters, digits and '-' (e.g. yolo, resnet-v2)")
    return slug


def unique_slug(base: str, taken: set[str]) -> str:
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def _check_claims(claims: Any, where: str) -> list[dict[str, Any]]:
    if claims is None:
        return []
    if not isinstance(claims, list):
        raise BadInput(f"{where}: claims must be a list")
    checked = []
    for i, claim in enumerate(claims, 1):
        if not isinstance(claim, dict):
            raise BadInput(f"{where}: claim {i} must be a mapping")
        for key, kind in _CLAIM_REQUIRED.items():
            if not isinstance(claim.get(key), kind) or isinstance(claim.get(key), bool):
                raise BadInput(f"{where}: claim {i} needs {key!r} ({getattr(kind, '__name__', 'number')})")
        for key, kind in _CLAIM_OPTIONAL.items():
            if claim.get(key) is not None and not isinstance(claim[key], kind):
                raise BadInput(f"{where}: claim {i} field {key!r} has the wrong type")
        if claim["direction"] not in DIRECTIONS:
            raise BadInput(f"{where}: claim {i} direction must be higher or lower, not {claim['direction']!r}")
        _check_claim_meaning(claim, f"{where}: claim {i}")
        unknown = set(claim) - set(_CLAIM_REQUIRED) - set(_CLAIM_OPTIONAL)
        if unknown:
            raise BadInput(f"{where}: claim {i} has unknown fields {sorted(unknown)}")
        checked.append(dict(claim))
    return checked


def _check_claim_meaning(claim: dict[str, Any], where: str) -> None:
    """``seeds`` is a count, a ``when:`` value is a value or ``{not: value}``, and a counted
    data-free metric (parameters, FLOPs) is in units, thousands (K), millions (M) or billions (G, B)."""
    from kb.runs.verdict import COUNT_UNITS, COUNTED_METRICS

    seeds = claim.get("seeds")
    if seeds is not None and (isinstance(seeds, bool) or seeds < 1):
        raise BadInput(f"{where} field 'seeds' must be a whole number of at least 1 (the seeds whose mean is judged)")
    for field_name, want in (claim.get("when") or {}).items():
        if isinstance(want, dict) and set(want) != {"not"}:
            raise BadInput(f"{where} when: {field_name} must be a value or {{not: value}}, not {want!r}")
    if claim["metric"] in COUNTED_METRICS and (claim.get("unit") or "") not in COUNT_UNITS:
        raise BadInput(f"{where} unit {claim['unit']!r} of {claim['metric']}: use K, M, G or B (or none for a plain count)")


def _date(value: Any, where: str, key: str) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    try:
        parsed = dt.datetime.fromisoformat(str(value))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise BadInput(f"{where}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


@dataclass
class PaperFile:
    """A validated ``paper.yaml``."""

    key: str
    slug: str
    title: str
    fields: dict[str, Any] = field(default_factory=dict)

    def to_paper(self) -> Paper:
        return Paper(key=self.key, slug=self.slug, title=self.title, **self.fields)


def parse_paper_yaml(text: str, *, where: str, folder_slug: str | None = None) -> PaperFile:
    """Validate one ``paper.yaml``; ``BadInput`` names the file and the problem."""
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"{where}: not valid YAML{at}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{where}: expected a mapping of fields (id, slug, title, ...)")
    unknown = set(data) - _KNOWN
    if unknown:
        raise BadInput(f"{where}: unknown fields {sorted(unknown)}")
    if not data.get("id"):
        raise BadInput(f"{where}: missing 'id' (an arXiv id or doi:...)")
    if isinstance(data["id"], (int, float)):
        # YAML reads an unquoted 1506.02640 as the number 1506.0264: the trailing zero is gone.
        written = re.search(r"^id:\s*([^\s#]+)", text, re.MULTILINE)
        raise BadInput(f"{where}: id {data['id']} was read as a number; quote it: "
                       f"id: \"{written.group(1) if written else data['id']}\"")
    try:
        pid = parse_id(str(data["id"]))
        slug = check_slug(str(data.get("slug") or folder_slug or ""))
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None
    if folder_slug and slug != folder_slug:
        raise BadInput(f"{where}: slug {slug!r} differs from its folder name {folder_slug!r}")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise BadInput(f"{where}: missing 'title'")
    fields: dict[str, Any] = {}
    for key in _LISTS:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise BadInput(f"{where}: {key} must be a list of strings")
        fields[key] = [str(v) for v in value]
    for key in _TEXTS:
        if key == "title":
            continue
        value = data.get(key)
        if value is not None and not isinstance(value, (str, int, float)):
            raise BadInput(f"{where}: {key} must be text")
        fields[key] = str(value).strip() if value is not None else ("" if key in ("abstract", "summary") else None)
    for key in ("version", "year"):
        value = data.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise BadInput(f"{where}: {key} must be a whole number")
        fields[key] = value
    fields["version"] = fields["version"] or pid.version
    for key in ("published", "updated"):
        fields[key] = _date(data.get(key), where, key)
    added = _date(data.get("added"), where, "added")
    if added:                   # without it, the catalog keeps the day it first saw the paper
        fields["added"] = added
    if fields["year"] is None and fields["published"]:
        fields["year"] = fields["published"].year
    fields["claims"] = _check_claims(data.get("claims"), where)
    fields["code"] = check_code_links(data.get("code"), where)
    fields["tags"] = sorted({t.strip().lower() for t in fields["tags"] if t.strip()})
    return PaperFile(key=pid.key, slug=slug, title=" ".join(data["title"].split()), fields=fields)


def paper_values(paper: Paper) -> dict[str, Any]:
    """A catalog row as ``paper.yaml`` values, every key in kb's order (``None`` or ``[]`` when empty)."""
    values = {key: getattr(paper, "key" if key == "id" else key) for key in _ORDER}
    for key in _DATES:
        values[key] = values[key].date() if values[key] else None
    return {key: list(value) if isinstance(value, list) else value for key, value in values.items()}


def dump_paper_yaml(paper: Paper) -> str:
    """The ``paper.yaml`` text of a new paper (stable key order, for clean git diffs)."""
    data = {key: value for key, value in paper_values(paper).items() if value or key in _ALWAYS}
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def _round_trip(text: str) -> YAML:
    """A round-trip YAML that writes lists as ``text`` does (``- x`` at the key's column, or indented)."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 100
    first_item = re.search(r"^[^\s#][^\n]*:[ \t]*\n(?:[ \t]*#[^\n]*\n)*( *)- ", text, re.MULTILINE)
    offset = len(first_item.group(1)) if first_item else 2
    rt.indent(mapping=2, sequence=offset + 2, offset=offset)
    return rt


def _meaning(key: str, value: Any) -> Any:
    """A value as kb reads it, so that restyling (quotes, list style, line breaks) is no change."""
    if value is None or value == "" or value == []:
        return None
    if key == "id":
        return parse_id(str(value)).key
    if key == "tags":
        return sorted({str(tag).strip().lower() for tag in value} - {""}) or None
    if key in _LISTS:
        return [str(item) for item in value]
    if key in _DATES:
        return _date(value, key, key).date()
    if key in ("version", "year", "claims"):
        return value
    return " ".join(str(value).split())


def _new_value(value: Any, *, flow: bool) -> Any:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        seq = CommentedSeq(value)
        if flow:
            seq.fa.set_flow_style()
        return seq
    return value


def _edit_list(old: list, new: list) -> None:
    """Make ``old`` equal ``new`` by deleting and inserting items, so the list keeps its style and
    the comments of the items that stay."""
    steps = difflib.SequenceMatcher(None, [str(item) for item in old], [str(item) for item in new]).get_opcodes()
    for tag, i1, i2, j1, j2 in reversed(steps):
        if tag != "equal":
            for i in reversed(range(i1, i2)):
                del old[i]
            for offset, item in enumerate(new[j1:j2]):
                old.insert(i1 + offset, item)


def _set(doc: CommentedMap, key: str, value: Any, *, flow: bool) -> None:
    """Set one top-level key, keeping the old value's style; an empty value removes a scalar key."""
    old = doc.get(key)
    if isinstance(old, list):
        if key == "tags":           # the file's order and spelling of the tags that stay, new ones after
            wanted = set(_meaning(key, value) or [])
            kept = [tag for tag in old if str(tag).strip().lower() in wanted]
            value = kept + [tag for tag in value if tag not in (_meaning(key, kept) or [])]
        _edit_list(old, list(value or []))
    elif _meaning(key, value) is None:
        del doc[key]
    elif isinstance(old, _STYLES) and isinstance(value, str):
        doc[key] = type(old)(value)
    elif key in doc:
        doc[key] = _new_value(value, flow=flow)
    else:
        rank = _ORDER.index(key)
        before = [i for i, name in enumerate(doc) if name in _ORDER and _ORDER.index(name) < rank]
        doc.insert(before[-1] + 1 if before else 0, key, _new_value(value, flow=flow))


def _blocks(text: str, doc: CommentedMap) -> tuple[list[str], dict[str, list[str]]] | None:
    """The lines before the first key, and each top-level key's lines (up to the next key)."""
    starts = [doc.lc.key(key)[0] for key in doc]
    if starts != sorted(set(starts)):       # a flow mapping, {id: ..., title: ...}: keys share lines
        return None
    lines = text.splitlines(keepends=True)
    ends = starts[1:] + [len(lines)]
    return lines[:starts[0]], {key: lines[a:b] for key, a, b in zip(doc, starts, ends)}


def _split_trailer(lines: list[str]) -> tuple[list[str], list[str]]:
    """A key's lines and the comment or blank lines after its value (they introduce the next key)."""
    cut = len(lines)
    while cut > 1 and (not lines[cut - 1].strip() or lines[cut - 1].startswith("#")):
        cut -= 1
    return lines[:cut], lines[cut:]


def edit_paper_yaml(text: str, values: dict[str, Any], *, where: str, folder_slug: str | None = None) -> str:
    """``text`` with ``values`` set, every line that does not hold them kept byte for byte.

    Only keys whose meaning changes are rewritten (round-trip YAML keeps their quotes and list
    style); comments, key order, the other keys' layout and absent keys survive. The text is
    returned unchanged when nothing changes. A key the file lacks goes where kb's order puts it.
    """
    parse_paper_yaml(text, where=where, folder_slug=folder_slug)     # never rewrite a file kb cannot read
    rt = _round_trip(text)
    try:
        doc = rt.load(text)
    except RoundTripError:
        raise BadInput(f"{where}: not valid YAML") from None
    changed = [key for key, value in values.items() if _meaning(key, doc.get(key)) != _meaning(key, value)]
    if not changed:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"       # a file saved on Windows keeps its line ends
    if not text.endswith("\n"):
        text += newline
    old = _blocks(text, doc)
    flow = any(isinstance(v, CommentedSeq) and v.fa.flow_style() for v in doc.values())
    for key in changed:
        _set(doc, key, values[key], flow=flow)
    out = io.StringIO()
    rt.dump(doc, out)
    dumped = out.getvalue().replace("\n", newline)
    new = _blocks(dumped, rt.load(dumped))
    if old is None or new is None:
        return dumped
    # ruamel re-emits the whole file in one indentation and line width; splicing its lines for the
    # changed keys into the original keeps the file's own layout everywhere else.
    (head, old_keys), (_, new_keys) = old, new
    orphans: dict[str | None, list[str]] = {}   # comments after a removed key stay where they were
    previous = None
    for key, lines in old_keys.items():
        if key in new_keys:
            previous = key
        else:
            orphans.setdefault(previous, []).extend(_split_trailer(lines)[1])
    pieces, trailer = list(head), orphans.get(None, [])
    for key, lines in new_keys.items():
        if key not in old_keys:          # a new key, before the comments that introduce the next one
            pieces += _split_trailer(lines)[0]
            continue
        pieces += trailer
        body, trailer = _split_trailer(old_keys[key])
        pieces += _split_trailer(lines)[0] if key in changed else body
        trailer = trailer + orphans.get(key, [])
    return "".join(pieces + trailer)


def note_names(listing: list[str], notes_listing: list[str]) -> list[str]:
    """The note files among a paper folder's entries and its ``notes/``'s, as paths in the folder:
    ``notes.<lang>.md`` then ``notes/*.md``, each sorted."""
    return sorted(name for name in listing if name.startswith("notes.") and name.endswith(".md") and len(name) > 8) + \
        [f"notes/{name}" for name in sorted(notes_listing) if name.endswith(".md")]


def note_files(folder: Path) -> list[Path]:
    """Note files of one paper folder: ``notes.<lang>.md`` and ``notes/*.md``."""
    listing = os.listdir(folder) if folder.is_dir() else []
    notes = os.listdir(folder / "notes") if "notes" in listing and (folder / "notes").is_dir() else []
    return [folder / name for name in note_names(listing, notes)]
