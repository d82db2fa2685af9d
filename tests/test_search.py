"""kb search: Japanese (two-character words, mixed queries), English word forms, filters, ranking."""

import json
import os
import re

from sqlmodel import select

from kb.db import _ready_engine, session_scope
from kb.ingest.edits import remove_paper
from kb.ingest.sync import sync
from kb.search import compact, compact_document, expand, index_tokens, parse_query, search, tokenize
from tests.conftest import write_paper


def _catalog(settings):
    write_paper(settings.papers, "yolo", "1506.02640", "You Only Look Once: Unified, Real-Time Object Detection",
                notes={"ja": "## 概要\n物体検出を一段で行う。鳥瞰図ではない。", "en": "## Summary\nA single-stage detector."},
                extra="tags: [detection]\n")
    write_paper(settings.papers, "pixor", "1902.06326", "PIXOR: Real-time 3D Object Detection from Point Clouds",
                notes={"ja": "## 概要\n点群を鳥瞰図に変換して検出する。"}, extra="tags: [detection, 3d]\n")
    write_paper(settings.papers, "deeplab", "1802.02611", "Encoder-Decoder with Atrous Separable Convolution",
                notes={"ja": "## 結果\nsemantic segmentationの精度が向上した。重みは ImageNet で事前学習。"},
                extra="tags: [segmentation]\nyear: 2018\n")
    write_paper(settings.papers, "gnmt", "1609.08144", "Google's Neural Machine Translation System",
                notes={"en": "## Summary\nDetection of nothing; translation with wordpieces."})
    sync(settings)


def _slugs(settings, query, **filters):
    with session_scope(settings) as session:
        return [h.paper.slug for h in search(query, **filters, session=session)]


def test_tokenizer_bigrams_japanese_and_stems_english():
    assert tokenize("物体検出") == ["物体", "体検", "検出"]
    assert tokenize("Detectors detecting") == ["detect", "detect"]
    assert tokenize("ＣＮＮ") == ["cnn"]                         # full-width folded
    assert [t.raw for t in parse_query("検出の精度")] == ["検出", "精度"]


def test_the_c_stemmer_stems_as_snowballs_pure_python_english_stemmer():
    """kb stems through PyStemmer (C); an index built where only the pure-Python stemmer is
    installed must hold the same tokens. Every word of the shipped papers and notes is checked
    against snowballstemmer's own Python implementation (the reference)."""
    from pathlib import Path

    from snowballstemmer.english_stemmer import EnglishStemmer

    from kb.search import _stemmer

    root = Path(__file__).resolve().parents[1]
    words = set()
    for path in [*root.glob("papers/*/*.md"), *root.glob("papers/*/paper.yaml")]:
        words.update(re.findall(r"[a-z]+", path.read_text(encoding="utf-8").lower()))
    assert len(words) > 3000
    assert type(_stemmer()).__module__ == "Stemmer"             # the C build is what kb uses
    reference = EnglishStemmer()
    assert [w for w in sorted(words) if _stemmer().stemWord(w) != reference.stemWord(w)] == []


def test_two_character_japanese_words_find_their_papers(kb_env):
    _catalog(kb_env)
    assert set(_slugs(kb_env, "検出")) == {"yolo", "pixor"}
    assert _slugs(kb_env, "点群") == ["pixor"]
    assert _slugs(kb_env, "重み") == ["deeplab"]
    assert set(_slugs(kb_env, "鳥瞰図")) == {"yolo", "pixor"}
    assert _slugs(kb_env, "画像") == []


def test_mixed_japanese_english_query(kb_env):
    _catalog(kb_env)
    assert _slugs(kb_env, "semantic segmentation 精度") == ["deeplab"]
    assert _slugs(kb_env, "segmentationの精度") == ["deeplab"]


def test_english_word_forms_and_ranking(kb_env):
    _catalog(kb_env)
    hits = _slugs(kb_env, "detector")
    assert hits[:2] == ["pixor", "yolo"] or hits[:2] == ["yolo", "pixor"]
    assert hits[-1] == "gnmt"                    # a notes-only match ranks below title matches
    assert _slugs(kb_env, "point clouds") == ["pixor"]


def test_filters(kb_env):
    _catalog(kb_env)
    assert _slugs(kb_env, "検出", tag="3d") == ["pixor"]
    assert _slugs(kb_env, "detection", lang="en") in (["yolo", "gnmt"],)
    assert _slugs(kb_env, "精度", year=2018) == ["deeplab"]
    assert _slugs(kb_env, "detection", author="turing") != []
    assert _slugs(kb_env, "detection", author="nobody") == []


def test_cli_search_json_and_snippets(kb_env, kb):
    _catalog(kb_env)
    result = kb("search", "点群", "--json")
    assert result.code == 0
    hits = json.loads(result.out)
    assert hits[0]["slug"] == "pixor" and "**点群**" in hits[0]["snippet"]
    shown = kb("search", "鳥瞰図")
    assert "PIXOR" in shown.out and "鳥瞰図" in shown.out
    assert "no matches" in kb("search", "transformer").out


def test_search_survives_reindexing(kb_env):
    _catalog(kb_env)
    (kb_env.papers / "pixor" / "notes.ja.md").write_text('---\npaper: "1902.06326"\nlang: ja\n---\n## 概要\nLiDAR のみ。\n', encoding="utf-8")
    sync(kb_env)
    assert _slugs(kb_env, "点群") == []
    assert _slugs(kb_env, "lidar") == ["pixor"]


def test_compact_tokens_are_the_index_tokens_before_bigrams():
    # By hand: a CJK run (kana included) stays whole, a Latin word is stemmed.
    assert compact("物体検出の精度 Detectors") == ["物体検出の精度", "detect"]
    assert expand("物体検出の精度 detect") == "物体 体検 検出 出の の精 精度 detect"
    assert expand("検 cnn") == "検 cnn"
    assert index_tokens("物体検出の精度 detect 検") == ["物体", "体検", "検出", "出の", "の精", "精度", "detect", "検"]
    for text in ("鳥瞰図に変換して検出する。", "Real-time 3D Object Detection", "ＣＮＮの重み"):
        assert expand(" ".join(compact(text))).split() == tokenize(text) == index_tokens(" ".join(compact(text)))


def test_a_papers_notes_column_is_its_notes_tokens_in_turn():
    # compact_document tokenizes each note apart (kb sync's workers do so); the reference is the
    # notes' text joined by line ends, tokenized as one, on every shipped note.
    from pathlib import Path
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[1] / "papers"
    notes = [SimpleNamespace(title=None if i % 3 else f"題 {i}", body=path.read_text(encoding="utf-8"))
             for i, path in enumerate(sorted(root.glob("*/*.md")))]
    assert len(notes) > 40
    paper = SimpleNamespace(title="T", other_titles=[], slug="t", authors=[], abstract="", summary="", tags=[])
    for start in range(0, len(notes), 7):
        group = notes[start : start + 7]
        joined = "\n".join(f"{n.title or ''}\n{n.body}" for n in group)
        assert compact_document(paper, group)[3] == " ".join(compact(joined))


def _catalog_file(settings):
    import sqlite3

    return sqlite3.connect(settings.home / "catalog.db")


def _index_contents(settings):
    with _catalog_file(settings) as connection:
        return (sorted(connection.execute("SELECT token, ids, keys FROM search_posting")),
                sorted(connection.execute("SELECT paper_id, tokens FROM search_tokens")),
                sorted(connection.execute("SELECT key, value FROM search_stats")))


def test_the_sqlite_index_keeps_no_copy_of_the_text_and_stays_sound_through_edits(kb_env):
    from kb.db import engine_for
    from kb.search import rebuild_sqlite_index

    _catalog(kb_env)
    for text in ("## 概要\nLiDAR のみ。\n", "## 概要\n点群を鳥瞰図に変換して検出する。\n"):
        (kb_env.papers / "pixor" / "notes.ja.md").write_text(f'---\npaper: "1902.06326"\nlang: ja\n---\n{text}',
                                                             encoding="utf-8")
        sync(kb_env)
    with _catalog_file(kb_env) as connection:
        assert connection.execute("SELECT count(*) FROM search_doc").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM search_tokens").fetchone() == (4,)
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert not any(name.startswith("search_fts") for name in tables)
    assert set(_slugs(kb_env, "点群")) == {"pixor"} and _slugs(kb_env, "lidar") == []
    remove_paper(kb_env, "pixor")
    kept = _index_contents(kb_env)
    with engine_for(kb_env).begin() as connection:          # the same catalog indexed from scratch
        assert rebuild_sqlite_index(connection) == 3
    assert _index_contents(kb_env) == kept and len(kept[1]) == 3
    assert _slugs(kb_env, "点群") == []


def test_a_catalog_with_the_old_index_is_indexed_anew_with_the_same_ranking(kb_env, caplog):
    _catalog(kb_env)
    queries = ["検出", "detector", "semantic segmentation 精度", "鳥瞰図", "detection"]
    with session_scope(kb_env) as session:
        before = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    # Schema 4's layout: the token text in search_doc, an FTS5 table reading its content from there.
    with session_scope(kb_env) as session:
        from kb.models import Note, Paper

        documents = {p.id: document_of(p, list(session.exec(select(Note).where(Note.paper_id == p.id).order_by(Note.id))))
                     for p in session.exec(select(Paper))}
    with _catalog_file(kb_env) as connection:
        connection.executescript(
            "DROP TABLE search_posting; DROP TABLE search_tokens; DROP TABLE search_stats; DELETE FROM source_file;"
            "CREATE VIRTUAL TABLE search_fts USING fts5(title, authors, abstract, notes, content='search_doc', "
            "content_rowid='paper_id', tokenize='unicode61 remove_diacritics 0');"
            "UPDATE kb_meta SET value = '4' WHERE key = 'schema_version';")
        for paper_id, columns in documents.items():
            connection.execute("INSERT INTO search_doc VALUES (?, ?, ?, ?, ?)", (paper_id, *columns))
        connection.execute("INSERT INTO search_fts(search_fts) VALUES('rebuild')")
    _ready_engine.cache_clear()
    with session_scope(kb_env) as session:
        after = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    assert after == before and "from schema 4 to" in caplog.text
    with _catalog_file(kb_env) as connection:
        assert connection.execute("SELECT count(*) FROM search_doc").fetchone() == (0,)
    assert sync(kb_env).problems == []


def test_a_catalog_with_schema_5s_fts5_index_is_indexed_anew(kb_env, caplog):
    _catalog(kb_env)
    queries = ["検出", "detector", "鳥瞰図"]
    with session_scope(kb_env) as session:
        before = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    kept = _index_contents(kb_env)
    with _catalog_file(kb_env) as connection:      # schema 5's layout: a contentless FTS5 table and its tokens
        connection.executescript(
            "DROP TABLE search_posting; DROP TABLE search_tokens; DROP TABLE search_stats;"
            "CREATE VIRTUAL TABLE search_fts USING fts5(title, authors, abstract, notes, content='', "
            "tokenize='unicode61 remove_diacritics 0');"
            "CREATE TABLE search_fts_doc (paper_id INTEGER PRIMARY KEY, tokens BLOB NOT NULL);"
            "UPDATE kb_meta SET value = '5' WHERE key = 'schema_version';")
    _ready_engine.cache_clear()
    with session_scope(kb_env) as session:
        after = [[(h.paper.slug, round(h.score, 9)) for h in search(q, session=session)] for q in queries]
    assert after == before and all(before) and "from schema 5 to" in caplog.text
    assert _index_contents(kb_env) == kept
    with _catalog_file(kb_env) as connection:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not any(name.startswith("search_fts") for name in tables)


def document_of(paper, notes):
    """The token text of one paper's columns, as the old index stored it."""
    return tuple(expand(columns) for columns in compact_document(paper, notes))


def test_on_postgresql_the_portable_index_finds_the_same_papers_through_edits(kb_env, postgres_server, monkeypatch):
    from kb.settings import load_settings
    from tests.jobs_fixtures import new_database

    monkeypatch.setenv("KB_DATABASE_URL", new_database(postgres_server, f"kb_search_{os.getpid()}"))
    _ready_engine.cache_clear()
    settings = load_settings()
    _catalog(settings)
    assert set(_slugs(settings, "検出")) == {"yolo", "pixor"} and _slugs(settings, "点群") == ["pixor"]
    assert _slugs(settings, "semantic segmentation 精度") == ["deeplab"]
    (settings.papers / "pixor" / "notes.ja.md").write_text('---\npaper: "1902.06326"\nlang: ja\n---\nLiDAR のみ。\n',
                                                            encoding="utf-8")
    sync(settings)
    assert _slugs(settings, "点群") == [] and _slugs(settings, "lidar") == ["pixor"]
    remove_paper(settings, "pixor")
    assert _slugs(settings, "lidar") == []
