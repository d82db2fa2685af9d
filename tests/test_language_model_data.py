"""The language-model family's corpora: PTB word and character tokens, WikiText's layout, batchified
streams, and the one-line errors. Also provides ``write_ptb`` (a small folder in PTB's real file layout,
with PTB's 10k-word vocabulary) for the runners' tests."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from kb.errors import BadInput
from runners.language_model.config import Config
from runners.language_model.data import batchify, load, tokens_of_line

# A few sentences repeated, so a smoke run has something learnable; then one line naming every other word
# of a 10k vocabulary (9999 words + <eos>, with <unk>), so the folder has PTB's vocabulary size.
SENTENCES = [" the cat sat on the mat ", " a dog ate N bones ", " the <unk> said no "]


def write_ptb(folder: Path, *, repeats: int = 60, files: tuple[str, ...] = ("train", "valid", "test")) -> Path:
    """ptb.{train,valid,test}.txt in Mikolov's format (a leading and trailing space on each line)."""
    folder.mkdir(parents=True, exist_ok=True)
    known = {w for line in SENTENCES for w in line.split()}
    filler = [f"w{i}" for i in range(9999 - len(known))]
    texts = {"train": SENTENCES * repeats + [" " + " ".join(filler) + " "],
             "valid": SENTENCES * (repeats // 4 + 1), "test": SENTENCES[::-1] * (repeats // 4 + 1)}
    for split in files:
        (folder / f"ptb.{split}.txt").write_text("\n".join(texts[split]) + "\n", encoding="utf-8")
    return folder


def test_a_line_is_its_words_then_eos_or_its_characters_with_underscores():
    assert tokens_of_line(" the cat <unk> \n", characters=False) == ["the", "cat", "<unk>", "<eos>"]
    assert tokens_of_line(" a bc N \n", characters=True) == ["a", "_", "b", "c", "_", "N", "<eos>"]
    assert tokens_of_line("\n", characters=False) == ["<eos>"]


def test_word_level_ptb_ids_follow_first_appearance_in_train(tmp_path):
    corpus = load(Config(), write_ptb(tmp_path))
    # train starts "the cat sat on the mat <eos> a dog ...": ids by first appearance, by hand
    assert corpus.train[:12].tolist() == [0, 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10]
    assert corpus.vocab[:6] == ("the", "cat", "sat", "on", "mat", "<eos>") and len(corpus.vocab) == 10000
    assert corpus.name == "ptb-test" and corpus.train.dtype == torch.int64
    # test is the sentences reversed: "the <unk> said no <eos>" first
    assert corpus.test[:5].tolist() == [0, corpus.vocab.index("<unk>"), corpus.vocab.index("said"),
                                        corpus.vocab.index("no"), 5]


def test_limits_cut_the_splits_and_mark_the_evaluation_set_a_subset(tmp_path):
    whole = load(Config(), write_ptb(tmp_path))
    cut = load(Config(train_limit=50, eval_limit=20), tmp_path)
    assert (len(cut.train), len(cut.valid), len(cut.test)) == (50, 20, 20)
    assert torch.equal(cut.train, whole.train[:50]) and cut.name == "ptb-test-subset"
    assert cut.fingerprint != whole.fingerprint


def test_a_different_vocabulary_is_refused(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" a b c \n", encoding="utf-8")
    for split in ("valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(" a b \n", encoding="utf-8")
    with pytest.raises(BadInput, match="vocabulary of 4 tokens; ptb has 10000"):
        load(Config(), tmp_path)


def test_character_level_ptb_from_the_same_files(tmp_path):
    (tmp_path / "ptb").mkdir()
    lines = [f" {c}{c} {c} " for c in "abcdefghijklmnopqrstuvwxyz0123456789N<>#$&'*-./\\"]
    (tmp_path / "ptb" / "ptb.train.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for split in ("valid", "test"):
        (tmp_path / "ptb" / f"ptb.{split}.txt").write_text(" ba \n", encoding="utf-8")
    corpus = load(Config(dataset="ptb-char"), tmp_path)
    assert len(corpus.vocab) == 50 and corpus.vocab[:3] == ("a", "_", "<eos>")
    assert corpus.train[:7].tolist() == [0, 0, 1, 0, 2, 3, 3]  # "a a _ a <eos> b b"
    assert corpus.valid.tolist() == [3, 0, 2] and corpus.name == "ptb-char-test"


def test_wikitext_in_its_released_folder(tmp_path):
    folder = tmp_path / "wikitext-2"
    folder.mkdir()
    words = [f"t{i}" for i in range(33278 - 4)]  # + <eos>, "=", "Title", <unk>
    (folder / "wiki.train.tokens").write_text(" \n = Title = \n" + " ".join(words) + " <unk>\n", encoding="utf-8")
    (folder / "wiki.valid.tokens").write_text(" = t0 = \n", encoding="utf-8")
    (folder / "wiki.test.tokens").write_text(" never seen \n", encoding="utf-8")
    corpus = load(Config(dataset="wikitext2"), tmp_path)
    assert corpus.vocab[:3] == ("<eos>", "=", "Title") and len(corpus.vocab) == 33278
    unk = corpus.vocab.index("<unk>")
    assert corpus.valid.tolist() == [1, 3, 1, 0] and corpus.test.tolist() == [unk, unk, 0]


def test_a_missing_file_is_named_and_no_folder_says_pass_data(tmp_path, monkeypatch):
    monkeypatch.delenv("KB_DATA", raising=False)
    write_ptb(tmp_path, files=("train", "valid"))
    with pytest.raises(BadInput, match=r"folder .* lacks ptb\.test\.txt$"):
        load(Config(), tmp_path)
    with pytest.raises(BadInput, match="pass --data with the folder"):
        load(Config(), None)
    with pytest.raises(BadInput, match="WikiText-103 not found"):
        load(replace(Config(), dataset="wikitext103"), tmp_path)


def test_batchify_makes_contiguous_streams_and_drops_the_tail():
    streams = batchify(torch.arange(11), 3)
    assert streams.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
