"""``kb list`` in a pipe: the text SQLite joins (``kb.reader.SqliteCatalog.listing_lines``) against
the general path (rows from ``list_papers`` through ``kb.cli.output.tsv_line``), and the terminal's cap.

The general path is the reference: each listing is printed both ways (the fast one turned off by
making ``listing_lines`` answer None) and must be the same text, byte for byte.
"""

import re

import pytest

from tests.conftest import write_paper

ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def catalog(kb_env, kb):
    """Papers with escaped and empty tags, runners, stars, notes in two languages, no year."""
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection",
                notes={"ja": "## 概要\n物体検出。", "en": "## Summary\nDetection."},
                extra="tags: [detection, real-time, 物体検出]\nrunners: [yolo]\n")
    write_paper(kb_env.papers, "ssd", "1512.02325", 'SSD: \\"Single\\" Shot \\\\ MultiBox Detector',
                notes={"en": "## Summary\nboxes ★★\n"}, extra="tags: [detection]\n")
    write_paper(kb_env.papers, "resnet", "1512.03385", "Deep Residual Learning", extra="tags: []\n")
    folder = write_paper(kb_env.papers, "doi-paper", "doi:10.1038/nature14539", "Deep learning")
    text = (folder / "paper.yaml").read_text(encoding="utf-8").replace("year: 2016\n", "")
    (folder / "paper.yaml").write_text(text, encoding="utf-8")
    assert kb("sync").code == 0
    return kb_env


def _both(kb, monkeypatch, *argv: str) -> tuple[str, str]:
    fast = kb("list", *argv)
    with monkeypatch.context() as patched:
        patched.setattr("kb.reader.SqliteCatalog.listing_lines", lambda self, **order: None)
        general = kb("list", *argv)
    assert fast.code == general.code == 0, (fast.err, general.err)
    return fast.out, general.out


@pytest.mark.parametrize("argv", [(), ("--sort", "title"), ("--sort", "year", "--reverse"), ("--sort", "slug"),
                                  ("--limit", "2"), ("--year", "2016"), ("--year", "1999")])
def test_the_joined_text_is_what_the_general_path_prints(catalog, kb, monkeypatch, argv):
    fast, general = _both(kb, monkeypatch, *argv)
    assert fast == general


def test_year_and_limit_are_cut_from_a_kept_listing_and_each_order_is_kept_apart(catalog, kb, monkeypatch):
    kb("list"), kb("list", "--sort", "title", "--reverse")
    assert {p.name for p in catalog.cache_dir.glob("listing-*")} == {"listing-added.marshal", "listing-title-reverse.marshal"}
    for argv in [("--limit", "2"), ("--year", "2016"), ("--year", "2016", "--limit", "1"), ("--year", "1999"),
                 ("--limit", "9"), ("--sort", "title", "--reverse", "--limit", "3"), ("--sort", "title", "--reverse")]:
        with monkeypatch.context() as patched:
            patched.setattr("kb.listing.join_lines", lambda *a, **k: pytest.fail("listed again"))
            kept = kb("list", *argv).out
        fast, general = _both(kb, monkeypatch, *argv)
        assert kept == general, argv
    assert len(kb("list", "--year", "2016", "--limit", "1").out.splitlines()) == 2


def test_the_joined_text_by_hand(catalog, kb):
    from kb.reader import SqliteCatalog, open_catalog

    with open_catalog(catalog) as reader:
        assert isinstance(reader, SqliteCatalog) and reader.listing_lines(sort="slug").startswith("doi-paper\t")
    rows = [line.split("\t") for line in kb("list", "--sort", "slug").out.splitlines()]
    assert rows[0] == ["slug", "id", "year", "★", "title", "tags", "notes", "runners"]
    assert rows[1] == ["doi-paper", "doi:10.1038/nature14539", "", "", "Deep learning", "", "", ""]
    assert rows[2] == ["resnet", "1512.03385", "2016", "", "Deep Residual Learning", "", "", ""]
    assert rows[3] == ["ssd", "1512.02325", "2016", "", 'SSD: "Single" Shot \\ MultiBox Detector', "detection", "en", ""]
    assert rows[4] == ["yolo", "1506.02640", "2016", "", "You Only Look Once: Unified, Real-Time Object Detection",
                       "detection,real-time,物体検出", "en,ja", "yolo"]


def test_a_cell_to_fold_lists_the_general_way(catalog, kb, monkeypatch):
    """Cells the catalog may hold from a writer other than paper.yaml's parser (which folds titles)."""
    import sqlite3

    connection = sqlite3.connect(catalog.home / "catalog.db")
    for title, shown in (("Two  spaces", "Two spaces"), ("A\ttab", "A tab"), ("Line\nbreak", "Line; break"),
                         (" Leading", "Leading"), ("Trailing\u3000", "Trailing"), ("No\u00a0break", "No\u00a0break"),
                         ("CR\r", "CR")):
        with connection:
            connection.execute("UPDATE paper SET title = ?, star = 2 WHERE slug = 'resnet'", [title])
        fast, general = _both(kb, monkeypatch, "--sort", "slug")
        assert fast == general
        resnet = next(line for line in fast.splitlines() if line.startswith("resnet\t"))
        assert resnet.split("\t")[3:5] == ["★★", shown], title
    connection.close()


def test_an_empty_catalog_says_so(kb_env, kb):
    (kb_env.papers).mkdir(parents=True, exist_ok=True)
    assert kb("sync").code == 0
    assert kb("list").out.startswith("no papers")


def test_a_terminal_is_shown_the_first_papers_and_how_to_see_the_rest(catalog, kb, monkeypatch):
    for module in ("kb.cli.output", "kb.cli.papers"):
        monkeypatch.setattr(f"{module}.is_terminal", lambda stream=None: True)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setattr("kb.cli.papers.TERMINAL_ROWS", 3)
    capped = ANSI.sub("", kb("list").out).splitlines()
    assert capped[0] == "4 papers" and len(capped) == 2 + 3 + 1
    assert capped[-1] == "… and 1 more: kb list --all shows every paper, --limit N the first N"
    assert "… and" not in kb("list", "--all").out and "… and" not in kb("list", "--limit", "4").out


@pytest.mark.parametrize("argv", [(), ("--all",), ("--limit", "2"), ("--year", "2016"), ("--sort", "title", "--wide"),
                                  ("--sort", "slug", "--reverse")])
def test_a_terminal_reads_only_the_rows_it_shows_and_prints_what_the_general_path_prints(catalog, kb, monkeypatch, argv):
    for module in ("kb.cli.output", "kb.cli.papers"):
        monkeypatch.setattr(f"{module}.is_terminal", lambda stream=None: True)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setattr("kb.cli.papers.TERMINAL_ROWS", 3)
    asked = []
    real = __import__("kb.listing", fromlist=["join_lines"]).join_lines
    monkeypatch.setattr("kb.listing.join_lines", lambda *a, **k: asked.append(k.get("limit")) or real(*a, **k))
    fast, general = _both(kb, monkeypatch, *argv)
    assert fast == general
    if "--all" not in argv:             # kept (kb sync keeps the default order's), or the rows shown only
        assert set(asked) <= {2, 3} and (asked or "--sort" not in argv)
    if argv == ():
        lines = ANSI.sub("", fast).splitlines()
        assert lines[0] == "4 papers" and len(lines) == 2 + 3 + 1 and lines[-1].startswith("… and 1 more")


def test_a_listing_is_kept_until_a_paper_or_note_changes_and_a_write_patches_it(catalog, kb, monkeypatch, tmp_path):
    # Every kind of change the listing shows, each by a command as a user makes it, then printed
    # again: the kept listing must never outlive it (the general path is the reference). A write
    # command patches the kept listing with its papers' lines, and kb sync works it out again, so
    # the kb list after either reads it back without SQLite joining every paper again.
    first = kb("list").out
    assert (catalog.cache_dir / "listing-added.marshal").is_file()
    with monkeypatch.context() as patched:          # read back: SQLite is not asked for the rows again
        patched.setattr("kb.listing.join_lines", lambda *a, **k: pytest.fail("listed again"))
        assert kb("list").out == first
    (tmp_path / "memo.md").write_text('---\npaper: "1512.02325"\nlang: ja\n---\n## 概要\nデフォルトボックス。 ★★★\n',
                                      encoding="utf-8")
    changes = [
        lambda: kb("tag", "resnet", "+backbone"),
        lambda: kb("tag", "yolo", "-real-time", "+一段"),
        lambda: kb("import", str(tmp_path / "memo.md"), "--offline"),          # a new note: ja, and a star
        lambda: (catalog.papers / "resnet" / "notes.ja.md").write_text(
            '---\npaper: "1512.03385"\nlang: ja\n---\n残差学習。\n', encoding="utf-8") and kb("sync"),
        lambda: (catalog.papers / "ssd" / "paper.yaml").write_text(
            (catalog.papers / "ssd" / "paper.yaml").read_text(encoding="utf-8").replace("SSD:", "SSD v2:"),
            encoding="utf-8") and kb("sync"),
        lambda: kb("remove", "doi-paper", "--yes"),
    ]
    seen = {first}
    for change in changes:
        assert change().code == 0
        with monkeypatch.context() as patched:
            patched.setattr("kb.listing.join_lines", lambda *a, **k: pytest.fail("listed again"))
            kept = kb("list").out
        fast, general = _both(kb, monkeypatch)
        assert kept == fast == general and fast not in seen
        seen.add(fast)
    rows = {line.split("\t")[0]: line.split("\t") for line in fast.splitlines()}
    assert set(rows) == {"slug", "resnet", "ssd", "yolo"}                  # doi-paper removed
    assert rows["ssd"][4].startswith("SSD v2:") and rows["ssd"][6] == "en,ja"   # the title; the imported ja note
    assert set(rows["yolo"][5].split(",")) == {"detection", "物体検出", "一段"} and rows["resnet"][5:7] == ["backbone", "ja"]


def test_a_write_the_listing_cannot_follow_leaves_it_to_be_joined_again(catalog, kb, monkeypatch):
    from sqlmodel import update

    from kb.db import session_scope
    from kb.models import Paper

    kb("list")
    # A bulk statement (its rows are not seen), then a raw one (more rows than seen: the counts differ).
    with session_scope(catalog, write=True) as session:
        session.exec(update(Paper).where(Paper.slug == "resnet").values(title="Bulk Title"))
    joined = []
    real = __import__("kb.listing", fromlist=["join_lines"]).join_lines
    monkeypatch.setattr("kb.listing.join_lines", lambda *a, **k: joined.append(1) or real(*a, **k))
    assert "resnet\t1512.03385\t2016\t\tBulk Title\t" in kb("list").out and joined == [1]
    with session_scope(catalog, write=True) as session:
        session.get(Paper, session.exec(__import__("sqlmodel").select(Paper.id).where(Paper.slug == "yolo")).one()).star = 1
        session.flush()
        session.connection().exec_driver_sql("UPDATE paper SET title = 'Raw Title' WHERE slug = 'ssd'")
    fast, general = _both(kb, monkeypatch)
    assert fast == general and "ssd\t1512.02325\t2016\t\tRaw Title\t" in fast and "yolo\t1506.02640\t2016\t★\t" in fast
    assert joined == [1, 1]


def test_kb_sync_keeps_the_listing_the_next_kb_list_prints(catalog, kb, monkeypatch):
    (catalog.papers / "resnet" / "notes.en.md").write_text('---\npaper: "1512.03385"\nlang: en\n---\nResiduals.\n',
                                                          encoding="utf-8")
    assert kb("sync").code == 0
    with monkeypatch.context() as patched:          # the sync worked it out: kb list only reads it back
        patched.setattr("kb.listing.join_lines", lambda *a, **k: pytest.fail("listed again"))
        fast = kb("list").out
    fast_again, general = _both(kb, monkeypatch)
    assert fast == fast_again == general and "resnet\t1512.03385\t2016\t\tDeep Residual Learning\t\ten\t" in general
