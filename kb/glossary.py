"""The bilingual glossary of the field: Japanese and English names of one concept, for search.

Japanese notes write many terms in English ("object detection"), English abstracts never write
物体検出: a query in one language must find papers written in the other. The glossary is data:
``kb/glossary.tsv`` ships with kb, and ``papers/glossary.tsv`` (optional, git-tracked with the
papers) extends it. Both have one concept a line, its names separated by tabs (katakana, kanji and
English variants alike); ``#`` starts a comment line. A name that appears on several lines joins
their names. kb/search.py expands a query word to its line; the site's search index ships the
same lines (kb/site/search_index.py) so its worker expands queries the same way.
"""

import unicodedata
from functools import lru_cache
from pathlib import Path

from kb.errors import BadInput

USER_FILE = "glossary.tsv"       # under papers/


def normalize(name: str) -> str:
    """A name as queries and the index see it: NFKC, lower case, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", name).lower().split())


def parse_glossary(text: str, *, where: str) -> list[tuple[str, ...]]:
    """The concepts of a glossary file: each a tuple of two or more normalized names."""
    concepts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        names = tuple(dict.fromkeys(normalize(name) for name in line.split("\t") if name.strip()))
        if len(names) < 2:
            raise BadInput(f"{where}:{number}: a glossary line needs two or more names separated by tabs, "
                           f"e.g. '物体検出<TAB>object detection'")
        concepts.append(names)
    return concepts


@lru_cache(maxsize=1)
def shipped() -> tuple[tuple[str, ...], ...]:
    """The glossary that ships with kb."""
    from importlib.resources import files

    text = files("kb").joinpath("glossary.tsv").read_text(encoding="utf-8")
    return tuple(parse_glossary(text, where="kb/glossary.tsv"))


def user_concepts(papers: Path) -> list[tuple[str, ...]]:
    """The user's additions, ``papers/glossary.tsv``; none when the file does not exist."""
    path = Path(papers) / USER_FILE
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read the glossary ({exc})") from None
    return parse_glossary(text, where=str(path))


def sources(papers: Path | None) -> list[Path]:
    """The files ``concepts(papers)`` reads (the user's whether it exists or not), for a cache to check."""
    return [Path(__file__).with_name("glossary.tsv"), *([Path(papers) / USER_FILE] if papers is not None else [])]


def concepts(papers: Path | None) -> tuple[tuple[str, ...], ...]:
    """The shipped glossary extended by ``papers/glossary.tsv`` (when ``papers`` is given)."""
    return shipped() + tuple(user_concepts(papers)) if papers is not None else shipped()


def synonyms(entries: tuple[tuple[str, ...], ...]) -> dict[str, frozenset[str]]:
    """Each name with every name that shares a line with it (itself included)."""
    found: dict[str, set[str]] = {}
    for names in entries:
        for name in names:
            found.setdefault(name, set()).update(names)
    return {name: frozenset(names) for name, names in found.items()}
