"""A rebuild after an edit writes the site a cold build of the same catalog writes: the search index
updated in place (kb.site.search_index.updated_index) checked against the whole index built again
with no cache (the reference), edit after edit, and a posting worked out by hand; then the whole site."""

import shutil
from pathlib import Path

import pytest

from kb.ingest.sync import sync
from kb.site import search_index
from kb.site.build import build_site, source_dir
from kb.site.search_index import FOLDER, index_state, updated_index
from tests.test_site_build import catalog_settings, search_parts


def doc(n: int, title: str, text: str) -> dict[str, str]:
    return {"location": f"paper/p{n}/", "title": title, "text": text, "excerpt": text[:40]}


def corpus() -> list[dict[str, str]]:
    """Twelve documents (one edit is under ``CHANGED_SHARE`` of them): English words of a few families and
    Japanese text, so an edit touches Latin and CJK parts."""
    texts = ["An object detector on point clouds. 点群から物体を検出する。",
             "Detection with anchors; the detector is a single stage. 鳥瞰図を使う。",
             "Segmentation of images with skip connections. セグメンテーション。",
             "Quantized weights and binary activations. 重みを二値化する。",
             "A survey of attention. 注意機構の調査。"]
    return [doc(n, f"Paper {n}: {texts[n % len(texts)].split('.')[0]}", f"{texts[n % len(texts)]} Note {n}.")
            for n in range(12)]


def edited(docs: list[dict[str, str]], n: int, *, title: str | None = None,
           text: str | None = None) -> list[dict[str, str]]:
    docs = [dict(d) for d in docs]
    docs[n] = doc(n, title if title is not None else docs[n]["title"], text if text is not None else docs[n]["text"])
    return docs


# Each edit after the one before: words joining and leaving the corpus, a family growing from one word and
# shrinking back, a Latin prefix appearing and going, CJK text added and removed, a title changed.
EDITS = [
    (3, None, "Quantized weights. A zebra crossing, zebras and quantization. 重みを二値化し、縞馬を数える。 Note 3."),
    (1, None, "Anchors only. 鳥瞰図。 Note 1."),                          # detection and detector leave doc 1
    (0, None, "Nothing else. Note 0."),                                 # its words and 点群, 物体 leave doc 0
    (3, "Paper 3: segmentations of zebras", None),
    (3, None, "Note 3."),                                                # zebra, zebras, quantization: gone
    (7, None, "An object detector on point clouds. 点群から物体を検出する。 Note 7. Detect, detected, detecting."),
]


def test_each_edit_updates_the_index_to_the_one_a_cold_build_writes():
    docs, cache = corpus(), {}
    state = index_state(docs, (("点群", "point cloud"),), cache=cache)
    for n, title, text in EDITS:
        docs = edited(docs, n, title=title, text=text)
        state = updated_index(state, docs, (("点群", "point cloud"),), cache=cache)
        assert state is not None
        cold = index_state(docs, (("点群", "point cloud"),))
        assert state.files == cold.files, (n, title, text)
        assert state.stems == cold.stems and state.cjk_size == cold.cjk_size and state.keys == cold.keys
        assert len(cache) == len({key for key in state.keys})        # only the current documents' tokens kept


def test_an_added_word_has_the_posting_worked_out_by_hand():
    docs, cache = corpus(), {}
    state = index_state(docs, cache=cache)
    docs = edited(docs, 5, text=docs[5]["text"] + " Zebra zebra.", title="Paper 5: a zebra")
    state = updated_index(state, docs, cache=cache)
    part = search_index._data(state.files[f"{FOLDER}/l-ze.js"])
    # Doc 5 alone: gap 5; twice in its text and once in its title: 2 + 32 * 1.
    assert part["words"] == {"zebra": [5, 34]} and part["families"] == {}


def test_nothing_changed_writes_the_same_files():
    docs, cache = corpus(), {}
    state = index_state(docs, cache=cache)
    again = updated_index(state, docs, cache=cache)
    assert again.files == state.files


def test_it_takes_the_whole_build_where_numbers_move_many_change_or_tokens_are_missing(monkeypatch):
    docs, cache = corpus(), {}
    state = index_state(docs, cache=cache)
    assert updated_index(state, docs[1:], cache=dict(cache)) is None                      # every number moves
    many = edited(edited(docs, 0, text="One."), 1, text="Two.")
    assert updated_index(state, many, cache=dict(cache)) is None                         # 2 of 12 > 10%
    assert updated_index(state, edited(docs, 0, text="One."), cache={}) is None          # no earlier tokens
    # Enough CJK text added to double the CJK parts: every token moves to another part.
    monkeypatch.setattr(search_index, "CJK_PART_BYTES", state.cjk_size)
    grown = edited(docs, 0, text=docs[0]["text"] + "".join(chr(0x4E00 + i) for i in range(400)))
    assert updated_index(state, grown, cache=dict(cache)) is None


def _site(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture
def site_settings(tmp_path):
    with catalog_settings(tmp_path / "catalog") as settings:
        yield settings


def test_a_rebuild_after_editing_a_note_is_the_site_a_cold_build_writes(site_settings, tmp_path):
    first = build_site(site_settings, tmp_path / "site")
    note = site_settings.papers / "bev" / "notes.en.md"
    body = note.read_text(encoding="utf-8")
    note.write_text(body.replace("LiDAR points", "radar returns") + "\nZebras crossing, 縞馬の横断。\n", encoding="utf-8")
    assert sync(site_settings).problems == []
    again = build_site(site_settings, first.out)
    assert not again.full and again.rendered == 1
    words = {word for part, data in search_parts(again.out).items() if part.startswith("l-") for word in data["words"]}
    assert {"zebras", "radar"} <= words and "lidar" not in words
    shutil.rmtree(source_dir(site_settings))
    cold = build_site(site_settings, tmp_path / "cold")
    assert cold.full and _site(again.out) == _site(cold.out)


def test_a_rebuild_writes_again_an_index_part_deleted_from_the_site(site_settings, tmp_path):
    first = build_site(site_settings, tmp_path / "site")
    part = first.out / FOLDER / "l-de.js"
    written = part.read_bytes()
    part.unlink()
    again = build_site(site_settings, first.out)
    assert not again.full and part.read_bytes() == written
