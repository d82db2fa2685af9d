"""``kb refresh``: arXiv metadata of catalog papers refreshed in batches, and new versions flagged."""

from dataclasses import dataclass, field

from sqlmodel import select

from kb.db import session_scope
from kb.feed.versions import read_versions, write_versions
from kb.ingest.add import add_papers
from kb.models import Note, Paper
from kb.queries import get_paper
from kb.settings import Settings


@dataclass
class RefreshReport:
    refreshed: list[str] = field(default_factory=list)
    flagged: dict[str, str] = field(default_factory=dict)
    not_found: list[str] = field(default_factory=list)
    from_cache: bool = False


def refresh(settings: Settings, refs: list[str], *, offline: bool = False) -> RefreshReport:
    """Refresh the given papers (all arXiv papers without ``refs``) through ``kb add``'s upsert path."""
    with session_scope(settings) as session:
        papers = [get_paper(r, session=session) for r in refs] if refs else list(session.exec(select(Paper)))
        before = {p.key: p.version for p in papers if not p.key.startswith("doi:")}
        written = {p.id for p in papers if p.claims} | set(session.exec(select(Note.paper_id)))
        with_notes = {p.key for p in papers if p.id in written}
    report = RefreshReport()
    if not before:
        return report
    result = add_papers(settings, list(before), offline=offline)
    report.not_found, report.from_cache = result.not_found, result.from_cache
    versions = read_versions(settings)
    for paper in result.updated:
        report.refreshed.append(paper.slug)
        old = before.get(paper.key)
        if paper.key in with_notes and old and paper.version and paper.version > old:
            versions.setdefault(paper.key, old)
        if paper.key in versions and paper.version and paper.version > versions[paper.key]:
            report.flagged[paper.slug] = f"notes written for v{versions[paper.key]}, arXiv has v{paper.version}"
    with session_scope(settings, write=True) as session:
        write_versions(settings, versions, session=session)
    return report
