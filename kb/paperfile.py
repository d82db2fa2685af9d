"""``papers/<slug>/paper.yaml``: the git-tracked source of a paper, its schema and its text.

A paper folder holds ``paper.yaml`` (metadata snapshot, tags, runners, claims) and notes
``notes.<lang>.md`` (written for kb) or ``notes/<name>.<lang>.md`` (imported). This module only
parses and writes that text; ``kb/ingest`` puts it in the catalog.
"""

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kb.errors import BadInput
from kb.ids import parse_id
from kb.models import Paper, utcnow

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
DIRECTIONS = ("higher", "lower")
_CLAIM_REQUIRED = {"metric": str, "dataset": str, "value": (int, float), "direction": str, "source": str}
_CLAIM_OPTIONAL = {"tolerance": (int, float), "unit": str, "setting": str, "when": dict, "device": str, "seeds": int,
                   "task": str, "model": str, "split": str, "extra_data": (bool, str)}
_LISTS = ("other_titles", "authors", "categories", "tags", "runners")
_TEXTS = ("title", "venue", "primary_category", "doi", "journal_ref", "comment", "abstract", "summary")
_KNOWN = {"id", "slug", "version", "year", "published", "updated", "added", "claims", *_LISTS, *_TEXTS}


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
        data = yaml.safe_load(text)
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
    pid = parse_id(str(data["id"]))
    slug = check_slug(str(data.get("slug") or folder_slug or ""))
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
    for key in ("published", "updated", "added"):
        fields[key] = _date(data.get(key), where, key)
    if fields["added"] is None:
        fields["added"] = utcnow()
    if fields["year"] is None and fields["published"]:
        fields["year"] = fields["published"].year
    fields["claims"] = _check_claims(data.get("claims"), where)
    fields["tags"] = sorted({t.strip().lower() for t in fields["tags"] if t.strip()})
    return PaperFile(key=pid.key, slug=slug, title=" ".join(data["title"].split()), fields=fields)


def dump_paper_yaml(paper: Paper) -> str:
    """The ``paper.yaml`` text of a catalog row (stable key order, for clean git diffs)."""
    data: dict[str, Any] = {"id": paper.key, "slug": paper.slug}
    if paper.version:
        data["version"] = paper.version
    data["title"] = paper.title
    if paper.other_titles:
        data["other_titles"] = list(paper.other_titles)
    data["authors"] = list(paper.authors)
    for key in ("year", "venue", "categories", "primary_category", "doi", "journal_ref", "comment"):
        value = getattr(paper, key)
        if value:
            data[key] = list(value) if isinstance(value, list) else value
    for key in ("published", "updated"):
        value = getattr(paper, key)
        if value:
            data[key] = value.date().isoformat()
    data["added"] = paper.added.date().isoformat()
    for key in ("summary", "abstract"):
        if getattr(paper, key):
            data[key] = getattr(paper, key)
    data["tags"] = list(paper.tags)
    data["runners"] = list(paper.runners)
    data["claims"] = list(paper.claims)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)


def note_files(folder: Path) -> list[Path]:
    """Note files of one paper folder: ``notes.<lang>.md`` and ``notes/*.md``."""
    files = sorted(folder.glob("notes.*.md"))
    if (folder / "notes").is_dir():
        files += sorted((folder / "notes").glob("*.md"))
    return files
