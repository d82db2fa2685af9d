"""Image-classification data for every runner of the family, in the formats the datasets are released in.

- CIFAR-10 (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html), "python version":
  ``cifar-10-batches-py/`` holding ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
  ``batches.meta``. Each batch is a pickled dict: ``b"data"`` a (N, 3072) uint8 array whose rows are the
  red, green and blue 32x32 planes in row-major order, ``b"labels"`` a list of N ints, ``b"batch_label"``;
  ``batches.meta`` has ``b"label_names"``.
- CIFAR-100, ``cifar-100-python/`` holding ``train``, ``test`` and ``meta``: the same rows, with
  ``b"fine_labels"`` (100 classes) and ``b"coarse_labels"`` (20 superclasses); ``meta`` has
  ``b"fine_label_names"`` and ``b"coarse_label_names"``.
- SVHN format 2 (Netzer et al. 2011, http://ufldl.stanford.edu/housenumbers/): ``train_32x32.mat``,
  ``test_32x32.mat`` and optionally ``extra_32x32.mat``, MATLAB files with ``X`` (32, 32, 3, N) uint8 and
  ``y`` (N, 1), where label 10 is the digit 0.
- ImageNet (ILSVRC-2012) in the usual folder layout: ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG``,
  classes the sorted wnids of ``train/``. Too large to decode up front: the set stays a list of files,
  decoded (and, for training, randomly cropped) by loader workers.
- Nothing (``dataset=generated`` without ``--data``): a labelled set made from a seed, for smoke runs.

CIFAR and SVHN are small (CIFAR-10 is 180 MB as uint8), so they are kept whole as uint8 tensors and,
on a GPU, moved there once (``train.py``). With ``dataset=generated`` and ``--data``, the folder's
contents decide which dataset it is.
"""

import hashlib
import io
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kb.errors import BadInput, KBError

CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN, "test_batch", "batches.meta")
CIFAR100_FILES = ("train", "test", "meta")
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")
FULL_TEST_SIZE = {"cifar10": 10_000, "cifar100": 10_000, "svhn": 26_032, "imagenet": 50_000}
# ImageNet's per-channel statistics of the training set in 0..255 pixels, as every ImageNet recipe
# the family's papers build on uses them (fb.resnet.torch, torchvision references).
IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")
# What the CIFAR python batches pickle besides dicts, lists and bytes: numpy arrays (NumPy 1 and 2 names).
CIFAR_PICKLE_CLASSES = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
    ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("_codecs", "encode"),
})


@dataclass(frozen=True)
class ImageFiles:
    """Image files and their labels, decoded on demand (ImageNet).

    Attributes:
        paths: the files, in a fixed order (sorted by class, then name).
        labels: (N,) int64 class indices.
        root: the folder they were found in.
    """

    paths: tuple[Path, ...]
    labels: torch.Tensor
    root: Path

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, keep: torch.Tensor) -> "ImageFiles":
        return ImageFiles(tuple(self.paths[i] for i in keep.tolist()), self.labels[keep], self.root)


@dataclass(frozen=True)
class ClassificationData:
    """A dataset as the family's loop uses it.

    Attributes:
        train_images: (N, 3, H, W) uint8 tensor, or ``ImageFiles`` for ImageNet.
        train_labels: (N,) int64.
        test_images, test_labels: the evaluation split, the same kinds.
        val_images, val_labels: the held-out end of the training set (``validation_size``), or None.
        num_classes: classes of the labels.
        name: the dataset name claims are compared with (``cifar10-test``; ``-subset`` when not all test images
            are used; ``generated-test`` for the generated set).
        fingerprint: short sha256 of the data used (arrays, or the file list with sizes for ImageNet).
        synthetic: True for the generated set.
        mean, std: per-channel normalisation in 0..255 pixel units.
        detail: one line for the run record (where the data came from, how many images).
        label_names: class names as the dataset gives them.
    """

    train_images: torch.Tensor | ImageFiles
    train_labels: torch.Tensor
    test_images: torch.Tensor | ImageFiles
    test_labels: torch.Tensor
    val_images: torch.Tensor | ImageFiles | None
    val_labels: torch.Tensor | None
    num_classes: int
    name: str
    fingerprint: str
    synthetic: bool
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    detail: str
    label_names: tuple[str, ...]

    @property
    def decoded(self) -> bool:
        """True when the images are in memory as tensors (everything but ImageNet)."""
        return isinstance(self.train_images, torch.Tensor)


# -- safe unpickling of the CIFAR batches ----------------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR batch holds (dicts, lists, bytes, numpy arrays): a pickle can run any
    code it names, and ``--data`` is a folder of files from the internet."""

    def find_class(self, module: str, name: str):
        if (module, name) not in CIFAR_PICKLE_CLASSES:
            raise pickle.UnpicklingError(f"{module}.{name} is not part of a CIFAR batch")
        return super().find_class(module, name)


def read_cifar_pickle(path: Path) -> dict:
    """One CIFAR python batch (or meta file) as a dict with bytes keys.

    Raises:
        KBError: the file is not a readable CIFAR pickle.
    """
    try:
        content = _CifarUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise KBError(f"{path} is not a CIFAR python batch ({exc}); re-download the python version") from None
    if not isinstance(content, dict):
        raise KBError(f"{path} is not a CIFAR python batch (a {type(content).__name__}, expected a dict)")
    return content


def _cifar_rows(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3, 32, 32) uint8 images and (N,) labels of one batch (rows are R, G, B planes, row-major)."""
    batch = read_cifar_pickle(path)
    if b"data" not in batch or label_key not in batch:
        raise KBError(f"{path} lacks {b'data'!r} or {label_key!r}: not a CIFAR batch of this dataset")
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[label_key], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(labels):
        raise KBError(f"{path}: data is {data.shape} with {len(labels)} labels, expected (N, 3072) and N labels")
    return data.reshape(-1, 3, 32, 32), labels


def _missing(folder: Path, names: tuple[str, ...]) -> list[str]:
    return [name for name in names if not (folder / name).is_file()]


def _need(folder: Path, names: tuple[str, ...], dataset: str) -> None:
    """Raise naming the files of ``names`` that ``folder`` lacks."""
    missing = _missing(folder, names)
    if missing:
        raise BadInput(f"{dataset} folder {folder} lacks {', '.join(missing)} (expected {', '.join(names)})")


def read_cifar10(folder: Path):
    """CIFAR-10's five training batches, test batch and class names."""
    _need(folder, CIFAR10_FILES, "CIFAR-10")
    train = [_cifar_rows(folder / name, b"labels") for name in CIFAR10_TRAIN]
    test_images, test_labels = _cifar_rows(folder / "test_batch", b"labels")
    names = read_cifar_pickle(folder / "batches.meta").get(b"label_names", [])
    return (np.concatenate([t[0] for t in train]), np.concatenate([t[1] for t in train]), test_images, test_labels,
            tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names), 10)


def read_cifar100(folder: Path, coarse: bool):
    """CIFAR-100's training and test sets with fine (100) or coarse (20) labels, and class names."""
    _need(folder, CIFAR100_FILES, "CIFAR-100")
    key = b"coarse_labels" if coarse else b"fine_labels"
    train_images, train_labels = _cifar_rows(folder / "train", key)
    test_images, test_labels = _cifar_rows(folder / "test", key)
    meta = read_cifar_pickle(folder / "meta")
    names = meta.get(b"coarse_label_names" if coarse else b"fine_label_names", [])
    return (train_images, train_labels, test_images, test_labels,
            tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names), 20 if coarse else 100)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One SVHN format-2 file: (N, 3, 32, 32) uint8 images and (N,) labels with 10 read as digit 0."""
    import scipy.io

    try:
        content = scipy.io.loadmat(path)
    except (ValueError, OSError, NotImplementedError, TypeError) as exc:
        raise KBError(f"{path} is not a readable SVHN .mat file ({exc})") from None
    if "X" not in content or "y" not in content:
        raise KBError(f"{path} lacks the variables X and y of SVHN's format 2")
    images, labels = content["X"], content["y"].reshape(-1).astype(np.int64)
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != len(labels):
        raise KBError(f"{path}: X is {images.shape} with {len(labels)} labels, expected (32, 32, 3, N)")
    if len(labels) and (labels.min() < 1 or labels.max() > 10):
        raise KBError(f"{path}: labels go from {labels.min()} to {labels.max()}, expected 1..10 (10 = digit 0)")
    return np.ascontiguousarray(images.transpose(3, 2, 0, 1)).astype(np.uint8), labels % 10


def read_svhn(folder: Path, extra: bool):
    """SVHN's training set (plus ``extra_32x32.mat`` with ``extra``) and test set."""
    _need(folder, (*SVHN_FILES, *(("extra_32x32.mat",) if extra else ())), "SVHN")
    train_images, train_labels = read_svhn_mat(folder / "train_32x32.mat")
    if extra:
        extra_images, extra_labels = read_svhn_mat(folder / "extra_32x32.mat")
        train_images = np.concatenate([train_images, extra_images])
        train_labels = np.concatenate([train_labels, extra_labels])
    test_images, test_labels = read_svhn_mat(folder / "test_32x32.mat")
    return train_images, train_labels, test_images, test_labels, tuple(str(d) for d in range(10)), 10


def _image_files(split: Path, classes: tuple[str, ...]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for index, wnid in enumerate(classes):
        folder = split / wnid
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        paths += files
        labels += [index] * len(files)
    return paths, labels


def read_imagenet(folder: Path) -> tuple[ImageFiles, ImageFiles, tuple[str, ...]]:
    """The training and validation file lists of an ImageNet folder (``train/<wnid>/``, ``val/<wnid>/``)."""
    for split in ("train", "val"):
        if not (folder / split).is_dir():
            raise BadInput(f"ImageNet folder {folder} lacks {split}/ (expected train/<wnid>/*.JPEG and "
                           "val/<wnid>/*.JPEG, the validation images sorted into class folders)")
    classes = tuple(sorted(p.name for p in (folder / "train").iterdir() if p.is_dir()))
    if not classes:
        raise BadInput(f"ImageNet folder {folder}/train has no class folders (expected train/<wnid>/*.JPEG)")
    sets = []
    for split in ("train", "val"):
        paths, labels = _image_files(folder / split, classes)
        if not paths:
            raise BadInput(f"ImageNet folder {folder}/{split} holds no .JPEG images in its class folders")
        sets.append(ImageFiles(tuple(paths), torch.tensor(labels, dtype=torch.int64), folder))
    unknown = sorted(p.name for p in (folder / "val").iterdir() if p.is_dir() and p.name not in classes)
    if unknown:
        raise BadInput(f"ImageNet folder {folder}/val has class folders not in train/: {', '.join(unknown[:3])}")
    return sets[0], sets[1], classes


# -- which dataset a folder holds ------------------------------------------------------------------

def _cifar10_folder(root: Path) -> Path | None:
    for folder in (root / "cifar-10-batches-py", root):
        if any((folder / name).is_file() for name in CIFAR10_FILES):
            return folder
    return None


def _cifar100_folder(root: Path) -> Path | None:
    for folder in (root / "cifar-100-python", root):
        if (folder / "train").is_file() or (folder / "meta").is_file():
            return folder
    return None


def _svhn_folder(root: Path) -> Path | None:
    for folder in (root, root / "svhn"):
        if any((folder / name).is_file() for name in (*SVHN_FILES, "extra_32x32.mat")):
            return folder
    return None


def _imagenet_folder(root: Path) -> Path | None:
    for folder in (root, root / "imagenet"):
        if (folder / "train").is_dir() or (folder / "val").is_dir():
            return folder
    return None


FINDERS = {"cifar10": _cifar10_folder, "cifar100": _cifar100_folder, "svhn": _svhn_folder,
           "imagenet": _imagenet_folder}
EXPECTED = {
    "cifar10": "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta), or those files themselves",
    "cifar100": "cifar-100-python/ (train, test, meta), or those files themselves",
    "svhn": "train_32x32.mat and test_32x32.mat (SVHN format 2; extra_32x32.mat for svhn_extra)",
    "imagenet": "train/<wnid>/*.JPEG and val/<wnid>/*.JPEG",
}


def detect_dataset(root: Path) -> tuple[str, Path]:
    """Which dataset ``root`` holds, and the folder with its files, for ``dataset=generated`` with ``--data``.

    Raises:
        BadInput: the folder holds none of the family's datasets.
    """
    for dataset, finder in FINDERS.items():
        folder = finder(root)
        if folder is not None:
            return dataset, folder
    raise BadInput(f"--data {root}: no dataset found; expected one of: "
                   + "; ".join(f"{name}: {what}" for name, what in EXPECTED.items()))


# -- the generated set -----------------------------------------------------------------------------

def generate_images(count: int, classes: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` labelled (3, size, size) uint8 images: each class is a colour, a stripe frequency and a
    stripe direction (vertical or horizontal) of its own, colour and frequency jittered, at a random phase,
    contrast and brightness with pixel noise. Horizontal flips and small shifts keep an image in its class
    (the CIFAR augmentation applies to it), and a small network learns it in a few epochs. Deterministic in
    ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, classes, (count,), generator=g)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    share = labels.float() / classes
    frequency = (1.5 + 3 * ((labels * 7) % classes).float() / classes
                 + 0.1 * torch.randn(count, generator=g)).view(count, 1, 1)
    phase = 2 * torch.pi * torch.rand(count, 1, 1, generator=g)
    along = torch.where((labels % 2 == 0).view(count, 1, 1), x, y)  # vertical stripes for even classes
    stripes = torch.sin(2 * torch.pi * frequency * along + phase)  # (N, H, W)
    hue = (share + 0.03 * torch.randn(count, generator=g)).view(count, 1)
    colour = 0.5 + 0.35 * torch.cos(2 * torch.pi * (hue + torch.tensor([0.0, 1 / 3, 2 / 3])))  # (N, 3)
    contrast = 0.15 + 0.15 * torch.rand(count, 1, 1, 1, generator=g)
    brightness = 0.1 * torch.randn(count, 1, 1, 1, generator=g)
    images = colour.view(count, 3, 1, 1) + contrast * stripes[:, None] + brightness
    images = images + 0.08 * torch.randn(count, 3, size, size, generator=g)
    return (images.clamp(0, 1) * 255).round().to(torch.uint8), labels


# -- putting it together ---------------------------------------------------------------------------

def fingerprint(*tensors: torch.Tensor) -> str:
    """Short sha256 of the tensors actually used (a subset or a changed file shows)."""
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def files_fingerprint(*sets: ImageFiles) -> str:
    """Short sha256 of the file names, sizes and labels (decoding 1.3M JPEGs to hash them would take hours)."""
    digest = hashlib.sha256()
    for files in sets:
        for path, label in zip(files.paths, files.labels.tolist()):
            digest.update(f"{path.relative_to(files.root)}\t{path.stat().st_size}\t{label}\n".encode())
    return digest.hexdigest()[:16]


def channel_statistics(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of uint8 images (N, 3, H, W), in pixel units: the "standard
    normalisation" of the CIFAR papers, computed on the training images (as fb.resnet.torch does)."""
    flat = images.transpose(0, 1).reshape(3, -1).double()
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).tolist())


def _evenly(count: int, limit: int) -> torch.Tensor:
    """``limit`` indices spread evenly over ``count`` (all of them for 0)."""
    if not limit or limit >= count:
        return torch.arange(count)
    return torch.linspace(0, count - 1, limit).round().long()


def _data_root(data_dir: Path | None) -> Path | None:
    from kb.settings import load_settings

    root = data_dir if data_dir is not None else load_settings().data
    return Path(root).expanduser() if root is not None else None


def load(config, data_dir: Path | None, *, run=None) -> ClassificationData:
    """The config's dataset, cut to ``train_limit`` / ``test_limit`` and split by ``validation_size``.

    ``config.dataset`` names the dataset and ``--data`` (``data_dir``, else ``KB_DATA``) its folder; with
    ``dataset=generated``, a ``--data`` folder's contents decide, and without one the generated set is made.

    Args:
        config: a family ``Config``.
        data_dir: the ``--data`` folder, or None.
        run: the run, for notes on what is being read (optional).

    Raises:
        BadInput: the folder is missing, or lacks the dataset's files (named in the message).
        KBError: a file is corrupt.
    """
    root = _data_root(data_dir)
    dataset = config.dataset
    if root is not None and not root.is_dir():
        raise BadInput(f"--data {root}: no such folder")
    if dataset == "generated" and root is None:
        return _generated(config)
    if dataset == "generated":
        dataset, folder = detect_dataset(root)
    elif root is None:
        raise BadInput(f"dataset={dataset} needs its files: pass --data DIR, DIR holding {EXPECTED[dataset]}")
    else:
        folder = FINDERS[dataset](root) or root
    if run is not None:
        run.note(f"reading {dataset} from {folder}")
    if dataset == "imagenet":
        return _imagenet(config, folder)
    reader = {"cifar10": lambda: read_cifar10(folder), "cifar100": lambda: read_cifar100(folder, config.coarse),
              "svhn": lambda: read_svhn(folder, config.svhn_extra)}[dataset]
    train_images, train_labels, test_images, test_labels, label_names, classes = reader()
    tensors = [torch.from_numpy(a) for a in (train_images, train_labels, test_images, test_labels)]
    return _split(config, *tensors, classes=classes, dataset=dataset, folder=folder, label_names=label_names)


def _split(config, train_images, train_labels, test_images, test_labels, *, classes: int, dataset: str,
           folder: Path | None, label_names: tuple[str, ...]) -> ClassificationData:
    """Apply the limits and the validation split to in-memory arrays."""
    if config.validation_size >= len(train_labels):
        raise BadInput(f"validation_size={config.validation_size} leaves no training images "
                       f"({len(train_labels)} in the training set)")
    cut = len(train_labels) - config.validation_size
    val_images = train_images[cut:] if config.validation_size else None
    val_labels = train_labels[cut:] if config.validation_size else None
    keep = slice(None, config.train_limit or None)
    train_images, train_labels = train_images[:cut][keep], train_labels[:cut][keep]
    test_images, test_labels = test_images[:config.test_limit or None], test_labels[:config.test_limit or None]
    used = [train_images, train_labels, test_images, test_labels, *(() if val_images is None else (val_images,))]
    if dataset == "generated":
        name = "generated-test"
        mean, std = channel_statistics(train_images)
    else:
        name = f"{dataset}-test" if len(test_labels) == FULL_TEST_SIZE[dataset] else f"{dataset}-test-subset"
        # SVHN: "we divide the pixel values by 255 so they are in the [0, 1] range" (DenseNet, arXiv
        # 1608.06993 Sec. 4.1, following Stochastic Depth); CIFAR: the channel means and deviations.
        mean, std = ((0.0,) * 3, (255.0,) * 3) if dataset == "svhn" else channel_statistics(train_images)
    where = f" from {folder}" if folder is not None else f" (seed {config.generated_seed})"
    return ClassificationData(
        train_images, train_labels.long(), test_images, test_labels.long(), val_images,
        None if val_labels is None else val_labels.long(), classes, name, fingerprint(*used),
        dataset == "generated", mean, std,
        f"{dataset}{where}: {len(train_labels)} train / {len(test_labels)} test"
        + (f" / {len(val_labels)} validation" if val_labels is not None else "") + " images",
        label_names)


def _generated(config) -> ClassificationData:
    """The generated set (train and test from seeds ``generated_seed`` and ``generated_seed + 1``)."""
    size, classes = config.generated_size, config.generated_classes
    train_images, train_labels = generate_images(config.generated_train, classes, size, config.generated_seed)
    test_images, test_labels = generate_images(config.generated_test, classes, size, config.generated_seed + 1)
    return _split(config, train_images, train_labels, test_images, test_labels, classes=classes,
                  dataset="generated", folder=None, label_names=tuple(f"class {c}" for c in range(classes)))


def _imagenet(config, folder: Path) -> ClassificationData:
    """ImageNet as file lists; the validation split (if any) is the end of the training list."""
    train, test, classes = read_imagenet(folder)
    if config.validation_size >= len(train):
        raise BadInput(f"validation_size={config.validation_size} leaves no ImageNet training images")
    order = torch.arange(len(train))
    cut = len(train) - config.validation_size
    val = train.subset(order[cut:]) if config.validation_size else None
    train = train.subset(order[:cut][_evenly(cut, config.train_limit)])
    test = test.subset(_evenly(len(test), config.test_limit))
    name = "imagenet-val" if len(test) == FULL_TEST_SIZE["imagenet"] else "imagenet-val-subset"
    return ClassificationData(
        train, train.labels, test, test.labels, val, None if val is None else val.labels, len(classes), name,
        files_fingerprint(train, test, *(() if val is None else (val,))), False, IMAGENET_MEAN, IMAGENET_STD,
        f"imagenet from {folder}: {len(train)} train / {len(test)} val images, {len(classes)} classes", classes)
