"""kb feed: a recorded cs.CV announcement feed served locally, ranked by a small catalog."""

import json
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import RecordedHandler, local_server, write_paper
from tests.fixtures import arxiv_feed, arxiv_rss

LIDAR, PROTEIN = "1711.06396", "2009.01411"       # VoxelNet (LiDAR point clouds), GVP (protein structure)


class _FeedHandler(RecordedHandler):
    empty = False

    def do_GET(self):  # noqa: N802 - http.server's name
        type(self).requests.append(self.path)
        if self.path.startswith("/rss/"):
            body = arxiv_rss.rss(self.path.rsplit("/", 1)[1], [] if type(self).empty else arxiv_rss.ITEMS)
        elif parse_qs(urlsplit(self.path).query).get("id_list"):
            body = arxiv_feed.feed(parse_qs(urlsplit(self.path).query)["id_list"][0].split(","))
        else:
            query = parse_qs(urlsplit(self.path).query)["search_query"][0]
            assert query.startswith("submittedDate:[") and query.endswith("AND cat:cs.CV"), query
            body = arxiv_feed.feed(["1505.04597"])
        self.answer(body, "application/rss+xml" if self.path.startswith("/rss/") else "application/atom+xml")


@pytest.fixture
def rss_server(kb_env, monkeypatch):
    _FeedHandler.requests, _FeedHandler.empty = [], False
    with local_server(_FeedHandler) as base:
        monkeypatch.setenv("KB_ARXIV_RSS", f"{base}/rss/")
        monkeypatch.setenv("KB_ARXIV_API", f"{base}/api/query")
        yield _FeedHandler


def point_cloud_catalog(kb_env, kb):
    """Two papers about LiDAR point clouds, one with a Japanese note."""
    write_paper(kb_env.papers, "pixor", "1902.06326", "PIXOR: Real-time 3D Object Detection from Point Clouds",
                extra="tags: [point-cloud, detection]\nabstract: LiDAR point cloud bird's eye view detector for autonomous driving.\n",
                notes={"ja": "LiDAR の点群から3D物体検出をする。KITTI で評価。"})
    write_paper(kb_env.papers, "pointcnn", "1801.07791", "PointCNN: Convolution On X-Transformed Points",
                extra="tags: [point-cloud]\nabstract: Convolution on unordered point clouds for classification and segmentation.\n",
                notes={"en": "Point cloud convolution; good for LiDAR scans."})
    assert kb("sync").code == 0


def feed_json(kb, *args):
    result = kb("feed", "cs.CV", "--json", *args)
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_feed_ranks_a_lidar_paper_above_a_protein_paper_and_says_why(rss_server, kb_env, kb):
    point_cloud_catalog(kb_env, kb)
    data = feed_json(kb)
    keys = [i["key"] for i in data["items"]]
    assert len(keys) == len(arxiv_rss.ITEMS) == 59 and data["order"] == "ranked"
    assert keys.index(LIDAR) < keys.index(PROTEIN)
    # Every point-cloud paper of the feed ranks above both protein papers.
    point_clouds = ["1612.00593", "1706.02413", "1711.06396", "1812.05784", "1812.04244", "1801.07829", "1904.08889",
                    "2012.09164", "2006.11275", "1711.08488"]
    assert max(keys.index(k) for k in point_clouds) < min(keys.index(PROTEIN), keys.index("2007.06225"))
    lidar = data["items"][keys.index(LIDAR)]
    assert lidar["reasons"][0] == "tag point-cloud" and {"point", "cloud"} <= set(lidar["reasons"][1][6:].split(", "))
    scores = [i["score"] for i in data["items"]]
    assert scores == sorted(scores, reverse=True)


def test_a_second_call_makes_no_request_and_offline_answers_from_the_cache(rss_server, kb_env, kb):
    first = feed_json(kb)
    assert len(rss_server.requests) == 1 and first["requests"] == 1
    second = feed_json(kb)
    third = feed_json(kb, "--offline")
    assert len(rss_server.requests) == 1 and second["requests"] == third["requests"] == 0
    assert [i["key"] for i in second["items"]] == [i["key"] for i in first["items"]]


def test_an_empty_catalog_gives_announcement_order_and_says_so(rss_server, kb_env, kb):
    data = feed_json(kb)
    assert data["order"] == "announcement"
    assert [i["key"] for i in data["items"]] == [item[0] for item in arxiv_rss.ITEMS]
    assert all(i["score"] is None for i in data["items"])
    text = kb("feed", "--offline")
    assert text.code == 0 and "announcement order (your catalog is empty" in text.out


def test_decided_items_do_not_come_back_unless_all_and_survive_a_rebuilt_catalog(rss_server, kb_env, kb):
    point_cloud_catalog(kb_env, kb)
    feed_json(kb)
    assert kb("feed", "skip", PROTEIN, "arXiv:2007.06225v1").code == 0
    from kb.feed.rss import parse_feed
    from kb.feed.triage import take

    voxelnet = next(i for i in parse_feed(arxiv_rss.rss(), fetched=datetime.now().date()) if i.key == LIDAR)
    take(kb_env, voxelnet, "starred", tags=["point-cloud", "lidar"])
    keys = [i["key"] for i in feed_json(kb)["items"]]
    assert len(keys) == 56 and not {PROTEIN, "2007.06225", LIDAR} & set(keys)
    assert {PROTEIN, LIDAR} <= {i["key"] for i in feed_json(kb, "--all")["items"]}
    shown = json.loads(kb("show", "voxelnet", "--json").out)
    assert shown["tags"] == ["lidar", "point-cloud"] and shown["key"] == LIDAR
    # The catalog is an index: deleted and rebuilt, the decisions come back from KB_HOME/feed/decisions.jsonl.
    from kb.db import _ready_engine

    _ready_engine.cache_clear()
    (kb_env.home / "catalog.db").unlink()
    assert kb("sync").code == 0
    keys = [i["key"] for i in feed_json(kb)["items"]]
    assert len(keys) == 56 and PROTEIN not in keys


def test_kb_add_of_a_feed_item_records_an_added_decision(rss_server, kb_env, kb):
    assert "1506.02640" in {i["key"] for i in feed_json(kb)["items"]}
    assert kb("add", "1506.02640", "1505.04597").code == 0          # the second was never in a feed
    from kb.db import session_scope
    from kb.feed.decisions import decisions_by_key

    with session_scope(kb_env) as session:
        assert {k: d.action for k, d in decisions_by_key(session=session).items()} == {"1506.02640": "added"}
    assert "1506.02640" not in {i["key"] for i in feed_json(kb)["items"]}


def test_a_replacement_of_a_paper_you_have_is_shown_as_its_new_version(rss_server, kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640v1", "You Only Look Once: Unified, Real-Time Object Detection")
    write_paper(kb_env.papers, "resnet", "1512.03385", "Deep Residual Learning for Image Recognition")
    assert kb("sync").code == 0
    items = {i["key"]: i for i in feed_json(kb)["items"]}
    assert items["1506.02640"]["note"] == "new version of a paper you have (you have v1)"
    assert "1512.03385" not in items                  # a new announcement of a paper you have is not news


def test_weekends_are_empty_feeds_not_errors(rss_server, kb_env, kb):
    rss_server.empty = True
    result = kb("feed")
    assert result.code == 0 and "nothing new" in result.out


def test_offline_without_a_cached_feed_is_one_line_and_exit_1(kb_env, kb):
    result = kb("feed", "--offline")
    assert result.code == 1 and result.err.count("\n") == 1 and "no cs.CV feed is cached" in result.err
    assert kb("feed", "cs/CV").code == 2


def test_since_fills_missed_days_through_the_api_date_query_once_a_day(rss_server, kb_env, kb):
    keys = [i["key"] for i in feed_json(kb, "--since", "2025-11-20")["items"]]
    assert "1505.04597" in keys and len(keys) == 60
    assert sum(r.startswith("/api/") for r in rss_server.requests) == 1
    feed_json(kb, "--since", "2025-11-20")
    assert len(rss_server.requests) == 2
    assert kb("feed", "--since", "20.11.2025").code == 2


def test_the_next_announcement_is_8pm_eastern_sunday_to_thursday():
    from kb.feed.rss import next_announcement

    utc = timezone.utc
    # Monday noon UTC: that evening, 20:00 EST = 01:00 UTC Tuesday.
    assert next_announcement(datetime(2025, 12, 1, 12, tzinfo=utc)) == datetime(2025, 12, 2, 1, tzinfo=utc)
    # Friday 21:00 UTC: no announcement Friday or Saturday evening; Sunday 20:00 EST.
    assert next_announcement(datetime(2025, 12, 5, 21, tzinfo=utc)) == datetime(2025, 12, 8, 1, tzinfo=utc)
    # Summer time: 20:00 EDT = 00:00 UTC.
    assert next_announcement(datetime(2025, 7, 1, 12, tzinfo=utc)) == datetime(2025, 7, 2, 0, tzinfo=utc)


def test_the_model_is_retrained_when_the_catalog_changes_only(rss_server, kb_env, kb):
    point_cloud_catalog(kb_env, kb)
    feed_json(kb)
    models = sorted((kb_env.cache_dir / "feed").glob("model-*.npz"))
    assert len(models) == 1
    stamp = models[0].stat().st_mtime_ns
    feed_json(kb)
    assert models[0].stat().st_mtime_ns == stamp
    assert kb("tag", "pixor", "+lidar").code == 0
    feed_json(kb)
    assert sorted((kb_env.cache_dir / "feed").glob("model-*.npz")) != models


def test_daily_counts_of_seen_added_and_starred(rss_server, kb_env, kb):
    feed_json(kb)
    feed_json(kb)
    from kb.db import session_scope
    from kb.feed.decisions import decide, reading_log

    with session_scope(kb_env, write=True) as session:
        decide(kb_env, ["1512.03385", "1409.1556"], "added", session=session)
        decide(kb_env, ["1409.1556"], "starred", session=session)       # already added: counts as a star only
        decide(kb_env, ["1703.06870"], "skipped", session=session)
        [today] = reading_log(session=session)
        assert (today.seen, today.added, today.starred) == (59, 2, 1)


def test_refresh_flags_notes_written_for_an_older_version_until_acknowledged(arxiv_server, kb_env, kb):
    write_paper(kb_env.papers, "yolo", "1506.02640", "You Only Look Once", extra="version: 2\n",
                notes={"ja": "YOLO のメモ。"})
    write_paper(kb_env.papers, "unet", "1505.04597", "U-Net", extra="version: 1\n")      # no notes, no claims
    assert kb("sync").code == 0
    result = kb("refresh")
    assert result.code == 0, result.err
    assert "yolo: notes written for v2, arXiv has v5" in result.out
    assert len(arxiv_server.requests) == 1                                            # one batch for both
    listed = {p["slug"]: p for p in json.loads(kb("list", "--json").out)}
    assert listed["yolo"]["version_flag"] == "notes written for v2, arXiv has v5" and listed["unet"]["version_flag"] is None
    assert "notes written for v2, arXiv has v5" in kb("show", "yolo").out
    # The flag is a file's: a rebuilt catalog keeps it.
    from kb.db import _ready_engine

    _ready_engine.cache_clear()
    (kb_env.home / "catalog.db").unlink()
    assert kb("sync").code == 0
    assert json.loads(kb("show", "yolo", "--json").out)["version_flag"] == "notes written for v2, arXiv has v5"
    assert kb("refresh", "--ack", "yolo").code == 0
    assert json.loads(kb("show", "yolo", "--json").out)["version_flag"] is None
    assert "notes written for" not in kb("show", "yolo").out


def test_the_feature_weights_equal_scikit_learns_tfidf():
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    from kb.feed.rank import Corpus, _tokens, tfidf, train

    texts = [f"{title} {abstract}" for _k, _v, _t, _c, title, _a, abstract in arxiv_rss.ITEMS[:20]]
    model = train(Corpus(texts, [["x"] if i % 2 else [] for i in range(20)], [False] * 20, []))
    reference = TfidfVectorizer(analyzer=_tokens, sublinear_tf=True).fit(texts)
    assert list(model.vocabulary) == list(reference.get_feature_names_out())
    np.testing.assert_allclose(tfidf(texts, model.vocabulary, model.idf).toarray(), reference.transform(texts).toarray(),
                               rtol=1e-12, atol=1e-12)


def test_creators_keep_affiliations_for_triage_and_names_only_for_the_catalog():
    from kb.feed.rss import Announcement, parse_feed, split_authors

    creators = "Ada Lovelace (University of London, UK), Alan Turing and Grace Hopper (Yale and Harvard)"
    authors = split_authors(creators)
    assert authors == ["Ada Lovelace (University of London, UK)", "Alan Turing", "Grace Hopper (Yale and Harvard)"]
    item = Announcement("2512.00001", 2, "T", authors, "", ["cs.CV"], "cs.CV", None, None, None, None, None)
    assert item.to_metadata().authors == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    replaced = {i.key: i for i in parse_feed(arxiv_rss.rss(), fetched=datetime.now().date())}
    assert replaced["1506.02640"].published is None                  # v5: the announcement is not v1's date
    assert replaced["1512.03385"].published == datetime(2025, 12, 1, tzinfo=timezone.utc)


def test_feed_categories_come_from_the_setting(rss_server, kb_env, kb, monkeypatch):
    monkeypatch.setenv("KB_FEED_CATEGORIES", "cs.CV, eess.IV")
    result = kb("feed", "--json")
    data = json.loads(result.out)
    assert data["categories"] == ["cs.CV", "eess.IV"] and sorted(rss_server.requests) == ["/rss/cs.CV", "/rss/eess.IV"]
    assert len(data["items"]) == 59                        # the same papers in both feeds are listed once


def test_a_decision_line_cut_short_by_a_crash_is_dropped_on_sync(rss_server, kb_env, kb):
    feed_json(kb)
    assert kb("feed", "skip", "1512.03385").code == 0
    log = kb_env.home / "feed" / "decisions.jsonl"
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"at": "2025-12-01T10:00:00+00:00", "action": "skipped", "key": "1409.15')   # torn append
    assert kb("sync").code == 0
    keys = {i["key"] for i in feed_json(kb)["items"]}
    assert "1512.03385" not in keys and "1409.1556" in keys
    log.write_text('not json\n' + log.read_text(encoding="utf-8"), encoding="utf-8")
    result = kb("sync")
    assert result.code == 2 and "decisions.jsonl: line 1 is not a decision record" in result.err
