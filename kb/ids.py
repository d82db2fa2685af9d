"""Paper identifiers: every form a user may type, reduced to one key (design.md, Identifiers).

A key is an arXiv id without version (``1506.02640``, ``hep-th/9901001``) or ``doi:<doi>`` for
papers that have no arXiv id.
"""

import re
from dataclasses import dataclass

from kb.errors import BadInput

# New-style ids: YYMM.NNNN (2007-2014) or YYMM.NNNNN (2015-), optional version.
_NEW = r"(?P<new>(?P<yymm>\d{4})\.(?P<num>\d{4,5}))"
# Old-style ids: archive(.SUBJ)/YYMMNNN; subject class optional (math.GT/0309136).
_OLD = r"(?P<old>(?P<archive>[a-z][a-z\-]+)(?:\.(?P<subj>[A-Za-z]{2}))?/(?P<oldnum>\d{7}))"
_VERSION = r"(?:v(?P<version>\d+))?"
_ID = rf"(?:{_NEW}|{_OLD}){_VERSION}"

_FORMS = [
    re.compile(rf"^(?:arxiv:)?{_ID}$", re.I),
    re.compile(rf"^10\.48550/arxiv\.{_ID}$", re.I),
    re.compile(rf"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf|html)/{_ID}(?:\.pdf)?/?(?:[?#].*)?$", re.I),
    re.compile(rf"^(?:https?://)?(?:dx\.)?doi\.org/10\.48550/arxiv\.{_ID}$", re.I),
]
_DOI = re.compile(r"^(?:doi:|https?://(?:dx\.)?doi\.org/)?(?P<doi>10\.\d{4,9}/\S+)$", re.I)

# Ids inside free text (notes, pasted links).
_IN_TEXT = re.compile(
    r"(?:arxiv\.org/(?:abs|pdf|html)/|arxiv:\s?|10\.48550/arxiv\.)(?P<id>(?:\d{4}\.\d{4,5}|[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7})(?:v\d+)?)",
    re.I,
)


@dataclass(frozen=True)
class PaperId:
    key: str
    version: int | None = None

    @property
    def is_arxiv(self) -> bool:
        return not self.key.startswith("doi:")


def _valid_new(yymm: str) -> bool:
    month = int(yymm[2:])
    return 1 <= month <= 12 and int(yymm[:2]) >= 7


def parse_id(text: str) -> PaperId:
    """Reduce any accepted form to a ``PaperId``; raise ``BadInput`` naming the input otherwise."""
    raw = text.strip()
    for form in _FORMS:
        match = form.match(raw)
        if not match:
            continue
        version = int(match["version"]) if match["version"] else None
        if match["new"]:
            if not _valid_new(match["yymm"]):
                break
            # Five-digit numbers only exist from 1501 on; four-digit ones only before.
            if (len(match["num"]) == 5) != (match["yymm"] >= "1501"):
                break
            return PaperId(match["new"], version)
        # The subject class is not part of the identifier (math.GT/0309136 == math/0309136).
        return PaperId(f"{match['archive'].lower()}/{match['oldnum']}", version)
    doi = _DOI.match(raw)
    if doi and not doi["doi"].lower().startswith("10.48550/"):
        return PaperId(f"doi:{doi['doi'].lower()}")
    raise BadInput(f"{text!r} is not an arXiv id, arXiv URL or DOI (expected e.g. 1506.02640, arXiv:1506.02640v5, https://arxiv.org/abs/1506.02640)")


def find_arxiv_ids(text: str) -> list[PaperId]:
    """arXiv ids linked or cited in free text, in order of appearance, without duplicates."""
    seen: dict[str, PaperId] = {}
    for match in _IN_TEXT.finditer(text):
        try:
            pid = parse_id(match["id"])
        except BadInput:
            continue
        seen.setdefault(pid.key, pid)
    return list(seen.values())
