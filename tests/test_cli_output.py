"""Listings in a pipe and in a terminal of any width, and the ORM-free read path that serves them (issue 21).

The read path (``kb.reader``) is checked against the ORM's own queries on one built catalog: every
listing is run both ways and must give the same rows. The printing is checked as a user sees it:
through the CLI into a pipe (the ``kb`` fixture writes to a StringIO, not a terminal), and as a
terminal of 80 columns (``is_terminal`` forced, ``COLUMNS=80``, the styles stripped).
"""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import loaded_after, write_paper

LONG_TITLE = ("A Very Long Title About Object Detection That Goes On And On Past Any Terminal Width "
              "Because Papers Have Such Titles")
RUN_IDS = [f"yolo-20261123-0{n}0000-ab{n}c" for n in range(1, 5)]
BOX = re.compile("[│┃━─┏┓┗┛┡┩╇╋┳┻]")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@pytest.fixture
def catalog(kb_env, kb):
    """Four papers (one with the yolo runner, claims and a long title), notes in two languages,
    a version flag, four yolo runs (one a regression) with verdicts, a job and a regression."""
    from kb.db import session_scope
    from kb.models import Job, NotesVersion, Regression, RunRecord

    claims = ("claims:\n" + "".join(
        f"  - {{metric: {m}, value: {v}, unit: '%', direction: higher, dataset: voc2007-test, source: Table {n}, setting: 'the paper''s "
        f"network at 448 pixels, trained on VOC 2007+2012 trainval, with a very long description of the setting'}}\n"
        for n, (m, v) in enumerate((("map", 63.4), ("map_fast", 52.7)), 1)))
    write_paper(kb_env.papers, "yolo", "1506.02640", LONG_TITLE,
                notes={"ja": "## 概要\n物体検出を一回の回帰で解く。", "en": "## Summary\nDetection as one regression."},
                extra=f"tags: [detection, real-time]\nrunners: [yolo]\nversion: 5\n{claims}")
    write_paper(kb_env.papers, "ssd", "1512.02325", "SSD: Single Shot MultiBox Detector",
                notes={"en": "## Summary\nA single-shot detector with default boxes."}, extra="tags: [detection]\n")
    write_paper(kb_env.papers, "resnet", "1512.03385", "Deep Residual Learning for Image Recognition",
                notes={"ja": "## 概要\n残差学習で深いネットワークを学習する。"}, extra="tags: [classification]\n")
    write_paper(kb_env.papers, "doi-paper", "doi:10.1038/nature14539", "Deep learning")
    assert kb("sync").code == 0
    start = datetime(2026, 11, 23, 1, tzinfo=UTC)
    verdicts = [{"metric": f"m{n}", "dataset": "voc2007-test", "claimed": 60.0 + n, "unit": "%", "ours": 1.5 * n,
                 "verdict": "not comparable", "reason": "the run read generated data, not voc2007-test; " * 3}
                for n in range(4)]
    with session_scope(kb_env) as session:
        for n, run_id in enumerate(RUN_IDS):
            session.add(RunRecord(
                id=run_id, runner="yolo", paper_key="1506.02640", preset="smoke" if n % 2 else "cpu", status="succeeded",
                created=start + timedelta(hours=n), started=start + timedelta(hours=n), ended=start + timedelta(hours=n, minutes=5),
                dataset="generated-shapes", dataset_synthetic=True, final={"map": 10.0 * n, "test_loss": 1.0 / (n + 1)},
                verdicts=verdicts, run_dir=f"/tmp/{run_id}", seed=n % 2, config={"epochs": n},
                info={"regression": True} if n == 1 else {}, git_dirty=n == 2))
        session.flush()
        session.add(NotesVersion(key="1506.02640", written_for=2))
        session.add(Job(runner="yolo", preset="smoke", time_limit_s=60, status="failed", run_id=RUN_IDS[0],
                        error="the worker was lost three times; " * 4))
        session.add(Regression(run_id=RUN_IDS[1], baseline_id=RUN_IDS[0], runner="yolo", preset="smoke",
                               findings=[{"message": "map fell from 0 to 10 " * 3}],
                               differences={"config": {"epochs": [0, 1]}}))
    return kb_env


def _both(settings):
    """The sqlite3 catalog and the ORM one over the same catalog."""
    from contextlib import ExitStack

    from kb.db import session_scope
    from kb.reader import OrmCatalog, SqliteCatalog, open_catalog

    stack = ExitStack()
    fast = stack.enter_context(open_catalog(settings))
    assert isinstance(fast, SqliteCatalog)      # a synced catalog of this schema is read without the ORM
    return stack, fast, OrmCatalog(stack.enter_context(session_scope(settings)))


def _dumped(value):
    if isinstance(value, list):
        return [_dumped(v) for v in value]
    if isinstance(value, dict):
        return {k: _dumped(v) for k, v in value.items()}
    return value.model_dump() if hasattr(value, "model_dump") else value


def test_every_listing_reads_the_same_rows_without_the_orm(catalog):
    from kb.errors import NotFound
    from kb.runs.overview import runner_overview, runs_table
    from kb.runs.registry import load_registry

    stack, fast, orm = _both(catalog)
    with stack:
        for filters in ({}, {"tag": "detection"}, {"lang": "ja"}, {"year": 2016}, {"author": "turing"}, {"runner": True},
                        {"sort": "title"}, {"sort": "year", "reverse": True}, {"sort": "slug", "limit": 2}):
            assert _dumped(fast.list_papers(**filters)) == _dumped(orm.list_papers(**filters)), filters
            shown = ("slug", "key", "year", "title")
            assert [{k: v for k, v in p.model_dump().items() if k in shown} for p in fast.list_papers(**filters, fields=shown)] \
                == [{k: getattr(p, k) for k in shown} for p in orm.list_papers(**filters)], filters
        langs = fast.note_languages()
        assert langs == orm.note_languages()
        assert fast.note_languages([2, 3]) == orm.note_languages([2, 3]) == {k: v for k, v in langs.items() if k in (2, 3)}
        assert {slug: langs.get(fast.get_paper(slug).id) for slug in ("yolo", "ssd", "resnet", "doi-paper")} == \
            {"yolo": ["en", "ja"], "ssd": ["en"], "resnet": ["ja"], "doi-paper": None}
        assert fast.version_flags() == orm.version_flags() == {"1506.02640": "notes written for v2, arXiv has v5"}
        for ref in ("yolo", "1506.02640", "arXiv:1506.02640v5", "https://arxiv.org/abs/1512.02325", "doi:10.1038/nature14539"):
            paper = fast.get_paper(ref)
            assert paper.model_dump() == orm.get_paper(ref).model_dump()
            assert _dumped(fast.notes_of(paper)) == _dumped(orm.notes_of(orm.get_paper(ref)))
        for ref in ("nothing", "9999.99999"):
            with pytest.raises(NotFound) as fast_error:
                fast.get_paper(ref)
            with pytest.raises(NotFound) as orm_error:
                orm.get_paper(ref)
            assert str(fast_error.value) == str(orm_error.value)
        for filters in ({}, {"runner": "yolo", "limit": 2}, {"status": "failed"}):
            # A listing's runs: every column but the per-epoch metrics, the environment and of info all but
            # the regression flag (the ORM's rows trimmed so; the catalog holds a regression and plain runs).
            listed = [{k: v for k, v in run.items() if k not in ("epochs", "env")} | {"info": {"regression": True} if run["info"].get(
                "regression") else {}} for run in _dumped(orm.list_runs(**filters))]
            assert _dumped(fast.list_runs(**filters)) == listed
            assert runs_table(catalog=fast, **filters) == runs_table(catalog=orm, **filters)
        for filters, count in (({}, 4), ({"runner": "yolo"}, 4), ({"status": "failed"}, 0), ({"runner": "qrnn"}, 0)):
            assert fast.count_runs(**filters) == orm.count_runs(**filters) == count
        assert fast.count_papers() == orm.count_papers() == 4
        assert fast.count_papers(year=2016) == orm.count_papers(year=2016) == len(fast.list_papers(year=2016))
        registry = load_registry()
        assert runner_overview(registry, catalog=fast) == runner_overview(registry, catalog=orm)
        for query, filters in (("検出", {}), ("detector", {}), ("detection", {"lang": "en"}), ("残差", {"tag": "classification"}),
                               ("deep", {"year": 2016, "limit": 1}), ("nothing-matches", {})):
            found = [(h.paper.model_dump(), h.score, h.where, h.snippet) for h in fast.search(query, **filters)]
            assert found == [(h.paper.model_dump(), h.score, h.where, h.snippet) for h in orm.search(query, **filters)]
        assert [h.paper.slug for h in fast.search("検出")][:1] == ["yolo"]


def test_the_reader_leaves_a_catalog_it_cannot_read_as_the_orm_would_to_the_orm(kb_env, kb):
    import sqlite3

    from kb.db import _ready_engine
    from kb.reader import OrmCatalog, open_catalog

    with open_catalog(kb_env) as missing:                   # no catalog yet: the ORM path creates it
        assert isinstance(missing, OrmCatalog)
    assert (kb_env.home / "catalog.db").is_file()
    connection = sqlite3.connect(kb_env.home / "catalog.db")
    connection.execute("UPDATE kb_meta SET value = '999' WHERE key = 'schema_version'")
    connection.commit()
    connection.close()
    _ready_engine.cache_clear()                             # as a new process sees it
    result = kb("list")                                     # a newer kb's catalog is refused, as before
    assert result.code == 1 and "newer than this kb's" in result.err and result.err.count("\n") == 1


def test_the_everyday_commands_do_not_import_the_orm_or_rich_in_a_pipe(catalog):
    # One process runs the six commands one after another: what any of them imported stays loaded.
    done, loaded = loaded_after([["list"], ["search", "検出"], ["show", "yolo"], ["runs"], ["runners"], ["note", "yolo"]],
                                ("sqlalchemy", "sqlmodel", "rich", "kb.models"))
    assert loaded == [], done.stderr[-2000:]


# -- in a pipe: one row per line, tab-separated, nothing drawn, nothing cut -------------------------


def test_listings_in_a_pipe_are_tab_separated_rows_under_a_header(catalog, kb):
    listed = kb("list").out.splitlines()
    header = listed[0].split("\t")
    assert header[:3] == ["slug", "id", "year"] and len(listed) == 1 + 4 and not BOX.search("\n".join(listed))
    yolo = dict(zip(header, next(line for line in listed if line.startswith("yolo\t")).split("\t"), strict=True))
    assert yolo | {"★": ""} == {"slug": "yolo", "id": "1506.02640", "year": "2016", "★": "", "title": LONG_TITLE,
                                "tags": "detection,real-time", "notes": "en,ja", "runners": "yolo"}
    runs = kb("runs").out.splitlines()
    assert runs[0].split("\t")[0] == "run" and len(runs) == 1 + len(RUN_IDS)
    for run_id in RUN_IDS:
        grepped = [line for line in runs if run_id in line]
        assert len(grepped) == 1 and grepped[0].split("\t")[0] == run_id     # `kb runs | grep ID`: the whole id
    assert runs[1].split("\t")[:4] == [RUN_IDS[1], "yolo", "smoke", "REGRESSION"]     # regressions first
    runners = [line.split("\t") for line in kb("runners").out.splitlines()]
    assert any(fields[0] == "kervolution" for fields in runners)           # `kb runners | grep kervolution`
    yolo = next(fields for fields in runners if fields[0] == "yolo")
    assert yolo[1] == "1506.02640" and yolo[-1] == RUN_IDS[-1] and "map 63.4% (voc2007-test" in yolo[4]


def test_a_pipe_lists_every_run_and_job_and_a_terminal_the_newest_saying_how_many_more(catalog, kb, monkeypatch):
    from kb.db import session_scope
    from kb.models import Job, RunRecord

    start = datetime(2026, 10, 1, tzinfo=UTC)
    old_ids = [f"qrnn-20261001-{n:06d}-aaaa" for n in range(60)]
    with session_scope(catalog) as session:
        for n, run_id in enumerate(old_ids):
            session.add(RunRecord(id=run_id, runner="qrnn", paper_key="1611.01576", preset="cpu", status="succeeded",
                                  created=start + timedelta(minutes=n),
                                  final={}, verdicts=[], run_dir=f"/tmp/{run_id}", config={}, info={}))
            session.add(Job(runner="qrnn", preset="cpu", time_limit_s=60, status="succeeded", run_id=run_id))
    piped = kb("runs").out.splitlines()
    assert len(piped) == 1 + 64 and all(sum(line.startswith(run_id + "\t") for line in piped) == 1
                                        for run_id in old_ids + RUN_IDS)      # the oldest run too: `kb runs | grep ID`
    assert len(kb("runs", "--json").out.split('"id":')) == 1 + 64
    assert len(kb("runs", "--limit", "3").out.splitlines()) == 1 + 3
    assert len(kb("jobs").out.splitlines()) == 1 + 61
    monkeypatch.setattr("kb.cli.output.is_terminal", lambda stream=None: True)
    monkeypatch.setattr("kb.cli.output.TERMINAL_ROWS", 50)
    monkeypatch.setenv("COLUMNS", "200")
    on_terminal = ANSI.sub("", kb("runs").out).splitlines()
    assert on_terminal[0] == "64 runs" and len(on_terminal) == 2 + 50 + 1
    assert on_terminal[-1] == "… and 14 more: kb runs --all shows every run, --limit N the newest N"
    assert old_ids[0] not in "\n".join(on_terminal) and old_ids[-1] in "\n".join(on_terminal)
    assert len(ANSI.sub("", kb("runs", "--all").out).splitlines()) == 2 + 64
    assert ANSI.sub("", kb("runs", "--runner", "yolo").out).splitlines()[0] == "4 runs"
    jobs = ANSI.sub("", kb("jobs").out).splitlines()
    assert jobs[0] == "61 jobs" and jobs[-1].startswith("… and 11 more: kb jobs --all")


def test_every_other_listing_prints_one_row_per_line_in_a_pipe(catalog, kb):
    jobs = kb("jobs").out.splitlines()
    assert len(jobs) == 2 and jobs[1].split("\t")[:6] == ["1", "yolo", "smoke", RUN_IDS[0], "failed",
                                                           ("the worker was lost three times; " * 4).strip()]
    regressions = kb("regressions").out.splitlines()
    assert len(regressions) == 2 and regressions[1].startswith(f"REGRESSION {RUN_IDS[1]}\t{RUN_IDS[0]}\tmap fell")
    assert "config epochs: 0 -> 1" in regressions[1]
    assert kb("schedule", "add", "yolo", "--config", "smoke", "--cron", "0 3 * * *").code == 0
    schedules = kb("schedule", "list").out.splitlines()
    assert len(schedules) == 2 and schedules[1].startswith("1\tyolo\tsmoke\t0 3 * * *\tUTC\t")
    hits = kb("search", "検出").out.splitlines()
    assert hits[0].split("\t") == ["rank", "slug", "id", "year", "title", "where", "snippet"]
    assert hits[1].startswith(f"1\tyolo\t1506.02640\t2016\t{LONG_TITLE}\t")
    shown = kb("show", "yolo").out.splitlines()
    claims = shown[shown.index("metric\tclaimed\tdataset\tsource") + 1:][:2]
    assert [c.split("\t")[:3] for c in claims] == [["map", "63.4%", "voc2007-test"], ["map_fast", "52.7%", "voc2007-test"]]


def test_a_runs_claims_table_is_one_line_per_claim_in_a_pipe(catalog, kb):
    # kb reproduce prints a finished run with the same code as kb run show (`kb reproduce ... | cat`).
    shown = kb("run", "show", RUN_IDS[0]).out.splitlines()
    header = shown.index("metric\tdataset\tclaimed\tours\tverdict\twhy")
    claims = shown[header + 1 : header + 5]
    assert [c.split("\t")[:4] for c in claims] == [[f"m{n}", "voc2007-test", f"{60 + n:g}%", f"{1.5 * n:.4g}"] for n in range(4)]
    assert all(c.endswith(("the run read generated data, not voc2007-test; " * 3).strip()) for c in claims)
    assert shown[header + 5].startswith("run folder: ")


# -- in a terminal: fitted to its width, names whole, text cut with an ellipsis; --wide shows it ----


@pytest.fixture
def terminal(monkeypatch):
    """A terminal of 80 columns: the ``kb`` fixture's output, styles stripped, as lines."""
    for module in ("kb.cli.output", "kb.cli.papers"):
        monkeypatch.setattr(f"{module}.is_terminal", lambda stream=None: True)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    return lambda result: ANSI.sub("", result.out).splitlines()


def _fits(lines: list[str], width: int = 80) -> bool:
    from rich.cells import cell_len

    return all(cell_len(line.rstrip()) <= width for line in lines)


def test_kb_list_at_80_columns_is_one_line_per_paper_with_ids_whole_and_titles_cut(catalog, kb, terminal):
    lines = terminal(kb("list"))
    assert lines[0] == "4 papers" and lines[1].split()[:3] == ["slug", "id", "year"] and "title" in lines[1]
    assert len(lines) == 2 + 4 and _fits(lines)
    yolo = next(line for line in lines if line.startswith("yolo "))
    assert "1506.02640" in yolo and "2016" in yolo and "…" in yolo and LONG_TITLE not in yolo
    assert LONG_TITLE[:6] in yolo
    doi = next(line for line in lines if line.startswith("doi-paper "))
    assert "doi:10.1038/nature14539" in doi               # the longest id, whole
    wide = terminal(kb("list", "--wide"))
    assert any(LONG_TITLE in line for line in wide)


def test_kb_runs_and_runners_at_80_columns_keep_every_run_id_whole(catalog, kb, terminal):
    lines = terminal(kb("runs"))
    assert len(lines) == 2 + len(RUN_IDS) and _fits(lines)
    for run_id in RUN_IDS:
        assert sum(run_id in line for line in lines) == 1
    assert RUN_IDS[1] in lines[2] and "REGR" in lines[2]
    runners = terminal(kb("runners"))
    assert any(line.startswith("kervolution ") for line in runners)
    yolo = next(line for line in runners if line.startswith("yolo "))
    assert "1506.02640" in yolo and RUN_IDS[-1] in yolo


@pytest.mark.parametrize("argv", [("jobs",), ("regressions",), ("show", "yolo"), ("run", "show", RUN_IDS[0]),
                                  ("search", "検出")])
def test_other_listings_at_80_columns_fit_with_names_whole(catalog, kb, terminal, argv):
    lines = terminal(kb(*argv))
    text = "\n".join(lines)
    # kb show and kb run show print a record above (and below) their table, whole: the table is checked.
    first = next((n for n, line in enumerate(lines) if line.startswith("claims")), 0)
    last = next((n for n, line in enumerate(lines) if line.startswith(("runners:", "run folder:"))), len(lines))
    assert _fits(lines[first:last]) and not BOX.search(text)
    names = {"jobs": [RUN_IDS[0]], "regressions": [RUN_IDS[1], RUN_IDS[0]], "show": ["voc2007-test", "63.4%"],
             "run": ["m0", "m3", "voc2007-test"], "search": ["yolo · 1506.02640 · 2016"]}[argv[0]]
    assert all(name in text for name in names)
    if argv[0] != "show":                                 # (its claims fit)
        assert "…" in text                                # the long error, finding, reason or title is cut


def test_the_table_gives_cut_columns_the_room_left_and_keeps_whole_ones():
    from kb.cli.output import _fit

    # 80 columns, 3 gaps of 2: ids of 10 and 20 whole, 44 cells left for a title (100) and tags (12).
    assert _fit([10, 20, 100, 12], [True, True, False, False], 74) == [10, 20, 32, 12]
    assert _fit([10, 20, 100, 100], [True, True, False, False], 74) == [10, 20, 22, 22]
    # Whole columns wider than the terminal stay whole; the others keep room for "detecti…" (then
    # table() leaves the last of them out until the rest fits).
    assert _fit([60, 30, 100, 5], [True, True, False, False], 74) == [60, 30, 8, 5]


# -- progress: a bar on a terminal's stderr, nothing in a pipe --------------------------------------


def test_progress_bars_show_on_a_terminal_only(kb_env, kb, monkeypatch):
    from kb.cli.output import progress_bar

    for n in range(3):
        write_paper(kb_env.papers, f"p{n}", f"1512.0000{n}", f"Paper {n}")
    piped = kb("sync")
    assert piped.code == 0 and "━" not in piped.out + piped.err and piped.err == ""
    with progress_bar("sync") as progress:
        assert progress is None                             # the library is given nothing to call
    monkeypatch.setattr("kb.cli.output.is_terminal", lambda stream=None: True)
    monkeypatch.setenv("COLUMNS", "80")
    shown = kb("sync")
    assert shown.code == 0 and "sync: papers/" in shown.err and "3/3" in shown.err
    assert shown.out.startswith("synced 3 papers")


def test_import_calls_its_progress_callback_once_per_file(kb_env, tmp_path):
    from kb.ingest.notes import import_notes

    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once")
    posts = tmp_path / "posts"
    posts.mkdir()
    for n in range(3):
        (posts / f"post{n}.md").write_text(f"# You Only Look Once\n\nhttps://arxiv.org/abs/1506.02640\n\nnote {n}\n",
                                          encoding="utf-8")
    calls = []
    import_notes(kb_env, [posts], offline=True, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 3), (1, 3), (2, 3)]


def test_terminal_cells_are_cut_by_their_width_on_screen_and_styled_as_the_terminal_allows(monkeypatch, capsys):
    from kb.cli import output

    # Hand-counted: a CJK character takes two cells, so 7 cells hold three of them and the ellipsis.
    assert output._cut("物体検出の論文", 7) == "物体検…" and output.cell_width("物体検…") == 7
    assert output._cut("detection", 8) == "detecti…" and output._cut("detect", 8) == "detect"
    assert output._cut("物体", 4) == "物体" and output._cut("物体検", 4) == "物…"
    monkeypatch.setattr(output, "is_terminal", lambda stream=None: True)
    monkeypatch.setenv("COLUMNS", "30")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    output.table("2 runs", ["run", "title"], [["r-1", "Evil\x1b[2J title 物体検出の論文です"], [("r-2", "bold red"), "short"]],
                 whole=("run",))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "\x1b[1m2 runs\x1b[0m" and "\x1b[2J" not in "".join(lines)
    assert ANSI.sub("", lines[2]) == "r-1  Evil[2J title 物体検出の…" and output.cell_width(ANSI.sub("", lines[2])) == 30
    assert lines[3].startswith("\x1b[1;31mr-2\x1b[0m  short")
    monkeypatch.setenv("NO_COLOR", "1")             # colour goes, bold stays (as rich does)
    output.say(("REGRESSION", "bold red"), " x")
    assert capsys.readouterr().out == "\x1b[1mREGRESSION\x1b[0m x\n"
    monkeypatch.setenv("TERM", "dumb")
    output.say(("plain", "bold"), " text that is long enough to be cut here", wide=False)
    assert capsys.readouterr().out == "plain text that is long enoug…\n"          # 30 cells
    output.say("x" * 30, " and more", wide=False)                    # a piece that fills the line exactly
    assert capsys.readouterr().out == "x" * 29 + "…\n"
