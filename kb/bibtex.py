"""``kb export bibtex``: valid BibTeX with arXiv fields and keys that stay the same."""

import re
import unicodedata

from sqlmodel import Session, select

from kb.models import Paper
from kb.queries import get_paper

_LATEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
          "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _latex(value: str) -> str:
    return "".join(_LATEX.get(c, c) for c in value)


def bibtex_key(paper: Paper) -> str:
    """``<first author's surname><year><first title word>``, ASCII lowercase: stable across runs."""
    surname = _ascii(paper.authors[0].split()[-1]) if paper.authors else ""
    stop = {"a", "an", "the", "on", "of", "for", "to", "in", "and"}
    words = [w for w in re.findall(r"[a-z0-9]+", _ascii(paper.title.replace("-", " "), keep=" ")) if w not in stop]
    return f"{surname or 'anon'}{paper.year or ''}{words[0] if words else ''}"


def _ascii(value: str, keep: str = "") -> str:
    folded = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return "".join(c for c in folded if c.isalnum() or c in keep)


def bibtex_entry(paper: Paper, key: str) -> str:
    fields = [("title", "{" + _latex(paper.title) + "}"), ("author", _latex(" and ".join(paper.authors)))]
    if paper.year:
        fields.append(("year", str(paper.year)))
    if paper.key.startswith("doi:"):
        kind = "article"
        if paper.venue:
            fields.append(("journal", _latex(paper.venue)))
        fields.append(("doi", paper.key[4:]))
    else:
        kind = "misc"
        fields += [("eprint", paper.key), ("archivePrefix", "arXiv")]
        if paper.primary_category:
            fields.append(("primaryClass", paper.primary_category))
        if paper.doi:
            fields.append(("doi", paper.doi))
        if paper.venue:
            fields.append(("note", _latex(paper.venue)))
        fields.append(("url", f"https://arxiv.org/abs/{paper.key}"))
    body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields)
    return f"@{kind}{{{key},\n{body}\n}}\n"


def export_bibtex(refs: list[str], *, session: Session) -> str:
    papers = [get_paper(r, session=session) for r in refs] if refs else list(session.exec(select(Paper).order_by(Paper.slug)))
    entries, used = [], {}
    for paper in sorted(papers, key=lambda p: p.key):
        base = bibtex_key(paper)
        used[base] = used.get(base, 0) + 1
        key = base if used[base] == 1 else f"{base}{chr(ord('a') + used[base] - 1)}"
        entries.append(bibtex_entry(paper, key))
    return "\n".join(entries)
