"""Code links of a paper: ``code:`` entries of ``paper.yaml`` (url, official or third-party, framework).

Notes add theirs: every GitHub/GitLab link in a paper's notes (imported ones included) is a code link,
official when its line or section says so (著者実装, 公式実装, official, author's), third-party otherwise.
Both are read from the catalog, which ``kb sync`` fills from the files: editing a note or
``paper.yaml`` and syncing is all it takes.
"""

import re

from kb.errors import BadInput

KINDS = ("official", "third-party")
FRAMEWORKS = ("PyTorch", "TensorFlow", "JAX", "Keras", "Chainer", "Caffe", "MXNet", "PaddlePaddle", "Darknet")
_REPO = re.compile(r"(?<![\w.])(?:https?://)?(?:www\.)?(?P<repo>(?:github\.com|gitlab\.com)/[\w.\-]+/[\w.\-]+)")
_OFFICIAL = re.compile(r"著者実装|公式実装|公式コード|著者のコード|official|author'?s? (?:code|implementation)", re.I)


def extract_code_links(body: str) -> list[dict]:
    """Repository links in a note, each with its kind and framework when the note names them."""
    if not _REPO.search(body):
        return []           # most notes: one scan of the whole text instead of one per line (a site build reads all)
    found: dict[str, dict] = {}
    official_section = False
    for line in body.splitlines():
        if line.lstrip().startswith("#"):
            official_section = bool(_OFFICIAL.search(line))
        for match in _REPO.finditer(line):
            url = "https://" + match["repo"].rstrip(".,)").removesuffix(".git")
            framework = next((f for f in FRAMEWORKS if f.lower() in line.lower()), None)
            entry = {"url": url, "kind": "official" if official_section or _OFFICIAL.search(line) else "third-party"}
            if framework:
                entry["framework"] = framework
            found.setdefault(url, entry)
    return list(found.values())


def check_code_links(entries, where: str) -> list[dict]:
    """The ``code:`` entries of a ``paper.yaml``: each a mapping with a url, and a known kind."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise BadInput(f"{where}: code must be a list of {{url, kind, framework}} entries")
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str) or not entry["url"].startswith("http"):
            raise BadInput(f"{where}: code entry {number} needs a url (https://...)")
        unknown = set(entry) - {"url", "kind", "framework"}
        if unknown:
            raise BadInput(f"{where}: code entry {number} has unknown fields {sorted(unknown)} (url, kind, framework)")
        if entry.get("kind") not in (None, *KINDS):
            raise BadInput(f"{where}: code entry {number} kind must be official or third-party, not {entry['kind']!r}")
    return [dict(e) for e in entries]


def code_links(entries: list[dict], note_bodies: list[str]) -> list[dict]:
    """A paper's code links: its ``paper.yaml`` ``code:`` entries (as the catalog holds them), then
    the repositories its notes link to."""
    links = {e["url"]: e for e in entries}
    for body in note_bodies:
        for entry in extract_code_links(body):
            links.setdefault(entry["url"], entry)
    return list(links.values())
