"""kb triage: the textual loop driven by textual's own pilot at 80x24; every key's decision is stored at once."""

import asyncio
import json

from tests.fixtures import arxiv_rss
from tests.test_feed import rss_server  # noqa: F401 - the recorded feed's local server

FIRST, SECOND, THIRD, FOURTH = (item[0] for item in arxiv_rss.ITEMS[:4])   # announcement order: empty catalog


def decided(kb_env) -> dict[str, str]:
    from kb.db import session_scope
    from kb.feed.decisions import decisions_by_key

    with session_scope(kb_env) as session:
        return {k: d.action for k, d in decisions_by_key(session=session).items()}


def test_add_star_skip_undo_and_quit_with_single_keys(rss_server, kb_env, kb):  # noqa: F811
    from kb.cli.triage import TriageApp
    from kb.feed.daily import read_feed

    from kb.settings import load_settings

    settings = load_settings()            # with the feed server's KB_ARXIV_RSS
    opened = []
    app = TriageApp(settings, read_feed(settings, []), open_url=opened.append)
    seen_after: dict[str, dict] = {}

    async def drive():
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            assert "a add" in str(app.query_one("#keys").render()) and "q quit" in str(app.query_one("#keys").render())
            assert arxiv_rss.ITEMS[0][4] in str(app.query_one("#body").render())
            await pilot.press("a", *"resnet classification", "enter")       # add FIRST with two tags
            seen_after["add"] = decided(kb_env)
            await pilot.press("asterisk", "enter")                           # star SECOND, no tags
            await pilot.press("s")                                           # skip THIRD
            seen_after["skip"] = decided(kb_env)
            await pilot.press("u")                                           # take the skip back
            seen_after["undo"] = decided(kb_env)
            await pilot.press("down", "l")                                   # move past THIRD, FOURTH for later
            await pilot.press("up", "up", "o")
            assert screen is app.screen
            await pilot.press("q")

    asyncio.run(drive())
    assert seen_after["add"] == {FIRST: "added"}
    assert seen_after["skip"] == {FIRST: "added", SECOND: "starred", THIRD: "skipped"}
    assert seen_after["undo"] == {FIRST: "added", SECOND: "starred"}
    assert decided(kb_env) == {FIRST: "added", SECOND: "starred", FOURTH: "later"}
    assert opened == [f"https://arxiv.org/abs/{THIRD}"]
    # The catalog shows the decisions: the added and starred papers are in it, with the tags typed.
    papers = {p["key"]: p for p in json.loads(kb("list", "--json").out)}
    assert set(papers) == {FIRST, SECOND} and papers[FIRST]["tags"] == ["classification", "resnet"]
    left = {i["key"] for i in json.loads(kb("feed", "--json", "--offline").out)["items"]}
    assert THIRD in left and not {FIRST, SECOND, FOURTH} & left and len(left) == len(arxiv_rss.ITEMS) - 3


def test_undo_of_an_add_removes_the_paper_it_added(rss_server, kb_env, kb):  # noqa: F811
    from kb.cli.triage import TriageApp
    from kb.feed.daily import read_feed

    from kb.settings import load_settings

    settings = load_settings()
    app = TriageApp(settings, read_feed(settings, []))

    async def drive():
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("a", "enter", "u", "q")

    asyncio.run(drive())
    assert decided(kb_env) == {} and json.loads(kb("list", "--json").out) == []
    assert not (kb_env.papers / "deep-residual-learning-image").exists()


def test_without_a_terminal_triage_refuses_with_one_line(kb_env, kb):
    result = kb("triage")
    assert result.code == 2 and result.err.count("\n") == 1 and "needs a terminal" in result.err
