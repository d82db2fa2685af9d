"""MNIST from the original IDX files, for every runner of the MNIST family (kervolution, bnn).

The four files (LeCun, Cortes, Burges; http://yann.lecun.com/exdb/mnist/) are read from a folder
given with ``--data`` (``run.data_dir``) or the ``KB_DATA`` environment variable, either flat or
in torchvision's layout ``<root>/MNIST/raw/``, gzipped or not. The whole dataset is kept as uint8
tensors (60000x28x28 is 47 MB), so it is moved to the device once and batches are indexed there:
no DataLoader, no workers.

IDX format: a big-endian uint32 magic number ``0x00000800 | ndim`` (2051 for the 3-d image files,
2049 for the 1-d label files), then ``ndim`` big-endian uint32 sizes, then the uint8 payload.
"""

import gzip
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kb.errors import BadInput, KBError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
FULL_TEST_SIZE = 10000
HOW_TO_GET = ("with network access add --set download=true (torchvision fetches them into DIR/MNIST/raw/), "
              "or copy them there from a machine that has them")


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 tensors: images (N, 28, 28), labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    folder: Path

    def subset(self, train_limit: int, test_limit: int) -> "Mnist":
        """The first ``train_limit`` / ``test_limit`` examples of each split (0 keeps all)."""
        train = slice(None, train_limit or None)
        test = slice(None, test_limit or None)
        return Mnist(self.train_images[train], self.train_labels[train],
                     self.test_images[test], self.test_labels[test], self.folder)

    @property
    def dataset_name(self) -> str:
        """``mnist-test`` only when evaluated on the whole 10k test set, as the papers are."""
        return "mnist-test" if len(self.test_labels) == FULL_TEST_SIZE else "mnist-test-subset"

    def fingerprint(self) -> str:
        """Short sha256 of the tensors actually used (so a subset or changed file is visible)."""
        digest = hashlib.sha256()
        for tensor in (self.train_images, self.train_labels, self.test_images, self.test_labels):
            digest.update(tensor.cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]


def candidate_folders(root: Path) -> list[Path]:
    """Where the four files may sit under ``root``: flat, torchvision's raw folder, or ``mnist/``."""
    return [root, root / "MNIST" / "raw", root / "mnist"]


def find_file(folder: Path, name: str) -> Path | None:
    """``name`` or ``name.gz`` in ``folder``, preferring the uncompressed file."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def data_root(data_dir: Path | None) -> Path | None:
    """``--data`` if given, else ``KB_DATA`` (read by kb's settings, the one reader of the environment),
    else None."""
    from kb.settings import load_settings

    root = data_dir if data_dir is not None else load_settings().data
    return root.expanduser() if root is not None else None


def locate(data_dir: Path | None) -> Path:
    """The folder holding all four MNIST files, searched under ``data_dir`` or ``KB_DATA``.

    Raises:
        BadInput: no root was given, or no candidate folder holds all four files (a run stops before it
            starts: exit 2, no run record).
    """
    expected = ", ".join(f"{name}[.gz]" for name in FILES.values())
    root = data_root(data_dir)
    if root is None:
        raise BadInput(f"MNIST needs its four IDX files ({expected}): pass --data DIR or set KB_DATA; {HOW_TO_GET}")
    searched = candidate_folders(root)
    for folder in searched:
        if all(find_file(folder, name) for name in FILES.values()):
            return folder
    partial = [f for f in searched if any(find_file(f, name) for name in FILES.values())]
    if partial:
        missing = [name for name in FILES.values() if not find_file(partial[0], name)]
        raise BadInput(f"MNIST folder {partial[0]} lacks {', '.join(missing)} (each may be .gz); {HOW_TO_GET}")
    where = ", ".join(str(f) for f in searched)
    raise BadInput(f"MNIST not found: expected {expected} in one of {where}; {HOW_TO_GET}")


def read_idx(path: Path, magic: int) -> np.ndarray:
    """One IDX file (gzipped or not) as a uint8 array, checking magic number and sizes.

    Raises:
        KBError: unreadable gzip, wrong magic number, or a payload that does not match the sizes.
    """
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadInput(f"{path} is not a readable gzip file ({exc}); re-download it") from None
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        found = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else None
        raise BadInput(f"{path} is not an MNIST IDX file: magic number {found}, expected {magic}")
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if len(raw) - header != int(np.prod(dims)):
        raise BadInput(f"{path} is truncated or corrupt: header says {'x'.join(map(str, dims))} "
                      f"= {int(np.prod(dims))} bytes of data, found {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def download(root: Path) -> None:
    """Fetch MNIST with torchvision into ``root/MNIST/raw/`` (needs network; never run in tests).

    Raises:
        KBError: torchvision is not installed, or the download failed.
    """
    try:
        from torchvision.datasets import MNIST
    except ImportError:
        raise KBError("downloading MNIST needs torchvision: pip install torchvision (a build matching your torch), "
                      "or copy the four files into the --data folder") from None
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            MNIST(str(root), train=train, download=True)
    except (OSError, RuntimeError) as exc:
        raise KBError(f"could not download MNIST into {root} ({exc}); check the network, or copy the four files "
                      "there from a machine that has them") from None


def load_mnist(data_dir: Path | None, *, fetch: bool = False) -> Mnist:
    """All of MNIST from ``data_dir`` (or ``KB_DATA``), checked for consistent shapes and labels.

    With ``fetch``, files that are not there are downloaded first (torchvision).

    Raises:
        KBError: the files are missing (and not fetched), corrupt, or disagree with each other.
    """
    try:
        folder = locate(data_dir)
    except KBError:
        root = data_root(data_dir)
        if not fetch or root is None:
            raise
        download(root)
        folder = locate(data_dir)
    arrays = {}
    for key, name in FILES.items():
        path = find_file(folder, name)
        arrays[key] = read_idx(path, IMAGES_MAGIC if key.endswith("images") else LABELS_MAGIC)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28):
            raise BadInput(f"{split} images in {folder} are {images.shape[1:]}, expected 28x28")
        if len(images) != len(labels):
            raise BadInput(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise BadInput(f"{folder}: {split} labels go up to {labels.max()}, expected digits 0-9")
    return Mnist(*(torch.from_numpy(arrays[key].copy()) for key in FILES), folder=folder)


def load(config, data_dir: Path | None) -> Mnist:
    """MNIST from ``data_dir`` (or ``KB_DATA``; downloaded there with ``config.download``), cut to the
    config's ``train_limit`` / ``test_limit``."""
    return load_mnist(data_dir, fetch=config.download).subset(config.train_limit, config.test_limit)


def record_dataset(run, data: Mnist) -> None:
    """Tell the run which data it uses (compared with the claims' ``mnist-test``)."""
    run.set_dataset(data.dataset_name, fingerprint=data.fingerprint(),
                    detail=f"{len(data.train_labels)} train / {len(data.test_labels)} test images from {data.folder}")
