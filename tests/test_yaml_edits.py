"""kb's edits of hand-written paper.yaml files change only the lines they mean to change.

Every shipped papers/*/paper.yaml is copied and edited the way `kb tag` and a metadata refresh
from arXiv edit it; the reference is the original file itself (line diffs against its text).
"""

import difflib
import shutil
from pathlib import Path

import pytest
import yaml
from sqlmodel import select

from kb.arxiv_api import Metadata
from kb.db import session_scope
from kb.files import transaction
from kb.ingest.add import upsert_from_metadata
from kb.ingest.edits import retag
from kb.ingest.sync import sync
from kb.models import Paper
from kb.paperfile import edit_paper_yaml, parse_paper_yaml
from tests.conftest import write_paper

SHIPPED = Path(__file__).resolve().parent.parent / "papers"
FOLDERS = sorted(p.parent for p in SHIPPED.glob("*/paper.yaml"))


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines of a line diff."""
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


@pytest.fixture
def shipped(kb_env):
    """Copies of every shipped paper.yaml (no notes or runs), synced into a fresh catalog."""
    for folder in FOLDERS:
        (kb_env.papers / folder.name).mkdir()
        shutil.copy(folder / "paper.yaml", kb_env.papers / folder.name / "paper.yaml")
    assert sync(kb_env).problems == []
    return kb_env


def metadata_of(text: str) -> Metadata:
    """What arXiv would answer if its metadata were exactly what the file says."""
    data = yaml.safe_load(text)
    parsed = parse_paper_yaml(text, where="paper.yaml")
    f = parsed.fields
    return Metadata(key=parsed.key, version=data.get("version"), title=parsed.title, authors=f["authors"],
                    abstract=f["abstract"], categories=f["categories"], primary_category=f["primary_category"],
                    published=f["published"], updated=f["updated"], doi=f["doi"], journal_ref=f["journal_ref"],
                    comment=f["comment"])


def refresh(settings, meta: Metadata) -> None:
    with transaction(settings) as (session, files):
        upsert_from_metadata(files, settings, meta, session=session)


def test_tag_add_and_remove_change_one_line_of_every_shipped_paper(shipped):
    for folder in FOLDERS:
        path = shipped.papers / folder.name / "paper.yaml"
        original = path.read_text(encoding="utf-8")
        tags = yaml.safe_load(original).get("tags") or []
        retag(shipped, folder.name, ["+zz-new"])
        tagged = path.read_text(encoding="utf-8")
        removed, added = changed_lines(original, tagged)
        assert len(removed) == len(added) == 1 and removed[0].startswith("tags:"), (folder.name, removed, added)
        assert yaml.safe_load(tagged)["tags"] == [*tags, "zz-new"]        # the file's order, the new tag last
        retag(shipped, folder.name, ["-zz-new"])
        assert path.read_text(encoding="utf-8") == original, folder.name
        if tags:
            retag(shipped, folder.name, [f"-{tags[0]}"])
            removed, added = changed_lines(original, path.read_text(encoding="utf-8"))
            assert len(removed) == len(added) == 1 and added[0].startswith("tags:"), folder.name
            assert yaml.safe_load(path.read_text(encoding="utf-8"))["tags"] == tags[1:]


def test_kervolution_tag_is_the_one_line_diff_of_the_issue(shipped, kb):
    path = shipped.papers / "kervolution" / "paper.yaml"
    original = path.read_text(encoding="utf-8")
    assert kb("tag", "kervolution", "+mnist").code == 0
    after = path.read_text(encoding="utf-8")
    assert changed_lines(original, after) == (["tags: [classification, architecture]"],
                                               ["tags: [classification, architecture, mnist]"])
    assert "other_titles: []" in after and "added:" not in after and "# Sec. 4's numbers" in after


def test_a_refresh_with_the_same_metadata_writes_nothing(shipped):
    for folder in FOLDERS:
        path = shipped.papers / folder.name / "paper.yaml"
        before, mtime = path.read_bytes(), path.stat().st_mtime_ns
        refresh(shipped, metadata_of(before.decode()))
        assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime, folder.name


def test_a_changed_title_changes_only_the_title_line(shipped):
    for folder in FOLDERS:
        path = shipped.papers / folder.name / "paper.yaml"
        original = path.read_text(encoding="utf-8")
        meta = metadata_of(original)
        meta.title = "A Retitled Paper"
        refresh(shipped, meta)
        removed, added = changed_lines(original, path.read_text(encoding="utf-8"))
        assert [line.split(":")[0] for line in removed] == ["title"], (folder.name, removed)
        quote = '"' if removed[0].startswith('title: "') else ""          # the file's quoting stays
        assert added == [f"title: {quote}A Retitled Paper{quote}"], folder.name
        with session_scope(shipped) as session:
            assert session.exec(select(Paper.title).where(Paper.slug == folder.name)).one() == "A Retitled Paper"


def test_kb_add_refresh_of_a_shipped_paper_adds_only_what_arxiv_knows_more(arxiv_server, kb_env, kb):
    """arXiv's yolo entry (tests/fixtures/arxiv_feed.py) has the file's title, authors and category,
    plus a version, dates and an abstract the file lacks: those lines appear, nothing else moves."""
    (kb_env.papers / "yolo").mkdir()
    shutil.copy(SHIPPED / "yolo" / "paper.yaml", kb_env.papers / "yolo" / "paper.yaml")
    sync(kb_env)
    path = kb_env.papers / "yolo" / "paper.yaml"
    original = path.read_text(encoding="utf-8")
    result = kb("add", "1506.02640", "--tag", "detection")
    assert result.code == 0 and "updated" in result.out, result.err
    after = path.read_text(encoding="utf-8")
    removed, added = changed_lines(original, after)
    assert removed == []
    assert added == ["version: 5", "published: 2015-06-08", "updated: 2016-05-09",
                     "abstract: We present YOLO, a new approach to object detection."]
    lines = after.splitlines()
    assert lines.index("version: 5") == 2                                  # after slug, kb's order
    assert lines.index("published: 2015-06-08") == lines.index("primary_category: cs.CV") + 1
    assert kb("add", "1506.02640").code == 0 and path.read_text(encoding="utf-8") == after


def test_edits_keep_comments_quotes_block_lists_and_odd_layout():
    text = (
        "# A hand-written file\n"
        "id: '1506.02640'   # quoted: an unquoted id is a number\n"
        "slug: yolo\n"
        "title: You Only Look Once\n"
        "  continued on a second line\n"
        "authors:\n"
        "- Joseph Redmon\n"
        "- Ali Farhadi\n"
        "\n"
        "# tags below are reviewed\n"
        "tags:\n"
        "- detection   # the task\n"
        "- real-time\n"
        "runners: []\n"
    )
    edited = edit_paper_yaml(text, {"tags": ["detection", "real-time", "voc"]}, where="x/paper.yaml")
    removed, added = changed_lines(text, edited)
    assert removed == [] and added == ["- voc"]
    assert yaml.safe_load(edited)["tags"] == ["detection", "real-time", "voc"]
    assert edited.startswith("# A hand-written file\nid: '1506.02640'   # quoted")
    assert "title: You Only Look Once\n  continued on a second line\n" in edited   # not re-wrapped
    assert "- Joseph Redmon\n- Ali Farhadi\n\n# tags below are reviewed\n" in edited
    # A new key lands where kb writes it (venue after authors), in the file's list style.
    with_venue = edit_paper_yaml(text, {"venue": "CVPR 2016", "categories": ["cs.CV"]}, where="x/paper.yaml")
    assert changed_lines(text, with_venue) == ([], ["venue: CVPR 2016", "categories:", "- cs.CV"])
    assert with_venue.index("venue:") > with_venue.index("- Ali Farhadi") and with_venue.index("venue:") < with_venue.index("# tags below")
    # Removing the last tag keeps the key as an empty list; an emptied scalar goes.
    assert yaml.safe_load(edit_paper_yaml(text, {"tags": []}, where="x/paper.yaml"))["tags"] == []
    assert edit_paper_yaml(text, {"title": "You Only Look Once continued on a second line"}, where="x") == text


def test_a_broken_file_is_refused_by_name_and_left_alone(kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO")
    sync(kb_env)
    path = kb_env.papers / "yolo" / "paper.yaml"
    path.write_text(path.read_text() + "tags: [unclosed\n", encoding="utf-8")
    before = path.read_bytes()
    result = kb("tag", "yolo", "+x")
    assert result.code != 0 and "yolo/paper.yaml" in result.err and "Traceback" not in result.err
    assert path.read_bytes() == before


def test_a_paper_yaml_without_added_keeps_the_catalogs_first_seen_day(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO")
    sync(kb_env)
    with session_scope(kb_env) as session:
        first = session.exec(select(Paper)).one().added
    retag(kb_env, "yolo", ["+detection"])
    sync(kb_env)
    text = (kb_env.papers / "yolo" / "paper.yaml").read_text(encoding="utf-8")
    assert "added" not in text
    with session_scope(kb_env) as session:
        assert session.exec(select(Paper)).one().added == first
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", extra="added: 2020-01-02\n")
    sync(kb_env)
    with session_scope(kb_env) as session:
        assert session.exec(select(Paper)).one().added.date().isoformat() == "2020-01-02"


def test_tag_a_windows_file_without_a_slug_line(kb_env):
    """The slug comes from the folder; CRLF line ends stay CRLF on the changed line too."""
    (kb_env.papers / "yolo").mkdir()
    path = kb_env.papers / "yolo" / "paper.yaml"
    path.write_bytes(b'id: "1506.02640"\r\ntitle: YOLO\r\ntags: [detection]\r\nrunners: []\r\n')
    sync(kb_env)
    retag(kb_env, "yolo", ["+voc"])
    assert path.read_bytes() == b'id: "1506.02640"\r\ntitle: YOLO\r\ntags: [detection, voc]\r\nrunners: []\r\n'


def test_tag_applies_to_the_tags_the_file_has_since_its_last_sync(kb_env):
    write_paper(kb_env.papers, "yolo", "1506.02640", "YOLO", extra="tags: [detection]\n")
    sync(kb_env)
    path = kb_env.papers / "yolo" / "paper.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("[detection]", "[detection, hand-added]"), encoding="utf-8")
    assert retag(kb_env, "yolo", ["+voc"]).tags == ["detection", "hand-added", "voc"]
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["tags"] == ["detection", "hand-added", "voc"]
