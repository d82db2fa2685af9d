"""Language-model corpora from their released text files, for every runner of the family.

- ``ptb``: Mikolov's preprocessed Penn Treebank (``ptb.train.txt``, ``ptb.valid.txt``, ``ptb.test.txt``
  from simple-examples.tgz; Mikolov et al. 2010), one sentence a line, words split on spaces, ``<eos>``
  appended to every line. Its training text holds exactly the 10k-word vocabulary (``<unk>`` included,
  9999 words + ``<eos>``), and the validation and test text use no other word.
- ``ptb-char``: character-level PTB derived from the same three files the way Mikolov's
  ``ptb.char.*.txt`` are: each character of a line is a token, the spaces between words become ``_``
  and every line ends with ``<eos>`` (``<unk>`` is spelled ``<``, ``u``, ``n``, ``k``, ``>``). 48 characters
  + ``_`` + ``<eos>`` = 50 symbols.
- ``wikitext2`` / ``wikitext103``: WikiText (Merity et al. 2016, arXiv 1609.07843) in its released layout,
  ``wiki.train.tokens``, ``wiki.valid.tokens``, ``wiki.test.tokens`` (already tokenized, ``<unk>`` in place),
  read like PTB: words split on spaces, ``<eos>`` at every line end, empty lines included, as the
  papers' code reads them.

The vocabulary is the training file's, in order of first appearance; a validation or test token outside
it is ``<unk>``. Token ids are kept as one int64 tensor per split (PTB's 929k training words are 7 MB), so
batches are slices of streams already on the device: no DataLoader.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import torch

from kb.errors import BadInput
from runners.language_model.config import VOCAB_SIZES

SPLITS = ("train", "valid", "test")
EOS = "<eos>"
UNK = "<unk>"
# (file name pattern, sub-folders of --data it may sit in, what to call it in messages)
LAYOUTS = {
    "ptb": ("ptb.{}.txt", ("", "ptb", "simple-examples/data"), "Penn Treebank"),
    "ptb-char": ("ptb.{}.txt", ("", "ptb", "simple-examples/data"), "Penn Treebank"),
    "wikitext2": ("wiki.{}.tokens", ("", "wikitext-2"), "WikiText-2"),
    "wikitext103": ("wiki.{}.tokens", ("", "wikitext-103"), "WikiText-103"),
}


@dataclass(frozen=True)
class Corpus:
    """A tokenized corpus: ``train``, ``valid``, ``test`` are 1-d int64 tensors of token ids into ``vocab``.

    Attributes:
        name: the dataset a claim names (``ptb-test``, ``ptb-char-test``, ``wikitext2-test``,
            ``wikitext103-test``), with ``-subset`` when the evaluation text was cut.
        fingerprint: short sha256 of the token ids and vocabulary actually used.
        folder: where the files were read.
    """

    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    vocab: tuple[str, ...]
    name: str
    fingerprint: str
    folder: Path


def tokens_of_line(line: str, *, characters: bool) -> list[str]:
    """One line's tokens: its words (or, for character PTB, its characters with ``_`` between words),
    then ``<eos>``."""
    words = line.split()
    return [*("_".join(words) if characters else words), EOS]


def read_tokens(path: Path, *, characters: bool) -> list[str]:
    """Every token of a text file, line by line."""
    with path.open(encoding="utf-8") as text:
        return [token for line in text for token in tokens_of_line(line, characters=characters)]


def locate(dataset: str, data_dir: Path | None) -> Path:
    """The folder holding the dataset's three files, under ``data_dir`` (or ``KB_DATA``).

    Raises:
        BadInput: no folder was given, or none of the candidate folders holds all three files (the
            message names the files missing from the folder that holds some of them).
    """
    from kb.settings import load_settings

    pattern, subfolders, title = LAYOUTS[dataset]
    files = [pattern.format(split) for split in SPLITS]
    root = data_dir if data_dir is not None else load_settings().data   # KB_DATA, read by kb's settings
    root = root.expanduser() if root is not None else None
    if root is None:
        raise BadInput(f"{title} is read from its released files ({', '.join(files)}): pass --data with the "
                       "folder holding them (there is no generated stand-in for a language model)")
    searched = [root / sub if sub else root for sub in subfolders]
    for folder in searched:
        if all((folder / name).is_file() for name in files):
            return folder
    for folder in searched:
        present = [name for name in files if (folder / name).is_file()]
        if present:
            missing = [name for name in files if name not in present]
            raise BadInput(f"{title} folder {folder} lacks {', '.join(missing)}")
    raise BadInput(f"{title} not found: expected {', '.join(files)} in {' or '.join(map(str, searched))}")


def fingerprint(splits: list[torch.Tensor], vocab: tuple[str, ...]) -> str:
    """Short sha256 of the token ids and the vocabulary (so a cut or changed file is visible)."""
    digest = hashlib.sha256("\n".join(vocab).encode("utf-8"))
    for ids in splits:
        digest.update(ids.numpy().tobytes())
    return digest.hexdigest()[:16]


def load(config, data_dir: Path | None) -> Corpus:
    """The config's dataset from ``data_dir`` (or ``KB_DATA``), cut to ``train_limit`` / ``eval_limit`` tokens.

    Raises:
        BadInput: files missing, or a vocabulary other than the dataset's published one (a different
            corpus under the expected file names).
    """
    folder = locate(config.dataset, data_dir)
    pattern = LAYOUTS[config.dataset][0]
    characters = config.dataset == "ptb-char"
    texts = {split: read_tokens(folder / pattern.format(split), characters=characters) for split in SPLITS}
    index: dict[str, int] = {}
    for token in texts["train"]:
        index.setdefault(token, len(index))
    if len(index) != VOCAB_SIZES[config.dataset]:
        raise BadInput(f"{folder / pattern.format('train')} has a vocabulary of {len(index)} tokens; "
                       f"{config.dataset} has {VOCAB_SIZES[config.dataset]}: is it the released file?")
    unk = index.get(UNK)
    ids = {}
    for split, tokens in texts.items():
        try:
            ids[split] = torch.tensor([index[t] if unk is None else index.get(t, unk) for t in tokens])
        except KeyError as exc:
            raise BadInput(f"{folder / pattern.format(split)} holds {exc.args[0]!r}, which the training "
                           "text never uses (and the corpus has no <unk>)") from None
    limits = {"train": config.train_limit, "valid": config.eval_limit, "test": config.eval_limit}
    cut = {split: ids[split][:limits[split] or None] for split in SPLITS}
    vocab = tuple(index)
    whole = all(len(cut[s]) == len(ids[s]) for s in ("valid", "test"))
    return Corpus(**cut, vocab=vocab, name=f"{config.dataset}-test" + ("" if whole else "-subset"),
                  fingerprint=fingerprint([cut[s] for s in SPLITS], vocab), folder=folder)


def batchify(tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    """``batch_size`` contiguous streams (batch_size, T) of a token sequence, the tail that does not fill
    a column dropped (as Zaremba et al.'s and the papers' code do): row b is tokens[b*T:(b+1)*T]."""
    length = len(tokens) // batch_size
    return tokens[:length * batch_size].view(batch_size, length)


def record_dataset(run, corpus: Corpus) -> None:
    """Tell the run which data it uses (compared with the claims' ``ptb-test`` and the like)."""
    run.set_dataset(corpus.name, fingerprint=corpus.fingerprint,
                    detail=f"{len(corpus.train)} train / {len(corpus.valid)} valid / {len(corpus.test)} test "
                           f"tokens, vocabulary {len(corpus.vocab)}, from {corpus.folder}")
