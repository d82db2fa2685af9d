"""Detection data for the detection family's runners (YOLOv1), and its on-device augmentation.

Four sources, chosen by what ``--data`` points at:

- a PASCAL VOC devkit (``VOCdevkit/`` holding ``VOC2007/`` and optionally ``VOC2012/``): trained on
  2007 + 2012 trainval and evaluated on 2007 test, as in the paper (Sec. 2.2, Table 1);
- one VOC-format folder (``Annotations/*.xml`` + ``JPEGImages/``, e.g. ``VOCdevkit/VOC2012`` or a set
  made with LabelImg): split by its ``ImageSets/Main`` lists (trainval/test, train/val or train/test),
  else every ``holdout_every``-th annotation is held out; classes are the VOC 20 or the names found;
- a YOLO-format folder (rows ``class cx cy w h``, normalised): ``images/[split/]`` + ``labels/[split/]``
  as in coco128, or ``<split>/images`` + ``<split>/labels`` as Roboflow and Ultralytics export. A
  ``val*`` split (else a ``test*`` split) is used for evaluation; otherwise every ``holdout_every``-th
  image (sorted by path) is held out, the same images on every run. Class names come from
  ``classes.txt``, ``obj.names`` or ``data.yaml``;
- nothing: a generated set of coloured shapes on textured backgrounds, deterministic from a seed.

Boxes are kept as corner coordinates in fractions of the image; evaluation converts them to pixels.
"""

import hashlib
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kb.errors import BadInput, KBError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
SHAPE_CLASSES = ("circle", "square", "triangle", "cross")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Annotation:
    """The objects of one image: (G, 4) corner boxes in [0, 1], (G,) labels, (G,) difficult flags."""

    boxes: torch.Tensor
    labels: torch.Tensor
    difficult: torch.Tensor


class DetectionSet(torch.utils.data.Dataset):
    """Images and their objects. Indexed by a list of image indices, it returns a whole batch.

    Attributes:
        images: (N, 3, H, W) uint8 at the network size when pre-decoded, else the image files.
        sizes: original (width, height) of each image, for evaluation in pixels.
        targets: the objects of each image.
        image_size: the network input side.
        num_classes: number of classes.
    """

    def __init__(self, images, sizes, targets, image_size: int, num_classes: int) -> None:
        self.images, self.sizes, self.targets = images, sizes, targets
        self.image_size, self.num_classes = image_size, num_classes
        self._padded: tuple[torch.Tensor, torch.Tensor] | None = None  # the objects of every image, on the device

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def decoded(self) -> bool:
        return isinstance(self.images, torch.Tensor)

    @property
    def on_device(self) -> bool:
        """True for a set made by ``to``: batches are cut from whole-set tensors where they live."""
        return self._padded is not None

    def to(self, device: torch.device) -> "DetectionSet":
        """This (pre-decoded) set with its images and padded objects on ``device``.

        For sets that fit in GPU memory: a batch is then a gather on the GPU, with no host-side copy,
        pinning or transfer per step, which otherwise starve a fast GPU.
        """
        moved = DetectionSet(self.images.to(device), self.sizes, self.targets, self.image_size, self.num_classes)
        moved._padded = tuple(t.to(device) for t in _pad_objects(self.targets, range(len(self.targets))))
        return moved

    def __getitem__(self, indices: list[int]):
        """A batch: uint8 images (B, 3, H, W), boxes (B, M, 4), labels (B, M) with -1 as padding.

        Difficult objects are left out (Darknet's VOC labels leave them out of training too). On the
        device (``to``), M is the most objects of any image in the set, else of any in the batch.
        """
        if self.on_device:
            index = torch.as_tensor(indices, device=self.images.device)
            boxes, labels = self._padded
            return self.images[index], boxes[index], labels[index]
        if self.decoded:
            images = self.images[torch.as_tensor(indices)]
        else:
            images = torch.stack([decode_image(self.images[i], self.image_size) for i in indices])
        return (images, *_pad_objects(self.targets, indices))


def _pad_objects(targets: list[Annotation], indices) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, M, 4) boxes and (B, M) labels (-1 = padding) of the non-difficult objects of ``indices``."""
    kept = [targets[i].boxes[~targets[i].difficult] for i in indices]
    labels = [targets[i].labels[~targets[i].difficult] for i in indices]
    most = max(1, max((len(k) for k in kept), default=0))
    boxes = torch.zeros(len(kept), most, 4)
    padded = torch.full((len(kept), most), -1, dtype=torch.long)
    for row, (b, l) in enumerate(zip(kept, labels)):
        boxes[row, : len(b)], padded[row, : len(l)] = b, l
    return boxes, padded


@dataclass
class DetectionData:
    """Train and test sets plus what ``run.set_dataset`` needs."""

    train: DetectionSet
    test: DetectionSet
    classes: tuple[str, ...]
    name: str
    fingerprint: str
    synthetic: bool
    detail: str


def batches(dataset: DetectionSet, index_batches: list[list[int]], workers: int, pin_memory: bool):
    """Iterate over ``index_batches`` of ``dataset``; files are decoded in ``workers`` processes.

    The loader gets its own generator so that it draws nothing from the global torch RNG (a resumed
    run must consume the same random numbers as an uninterrupted one). A set already on the GPU needs
    no loader: each batch is a gather there.
    """
    if dataset.on_device:
        return (dataset[indices] for indices in index_batches)
    return torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=index_batches, num_workers=0 if dataset.decoded else workers,
        pin_memory=pin_memory, generator=torch.Generator(),
    )


def keep_on_gpu(data, device: torch.device, run) -> None:
    """Move pre-decoded train and test images to the GPU when they take at most half its free memory."""
    if not (data.train.decoded and data.test.decoded):
        return
    need = data.train.images.nbytes + data.test.images.nbytes
    free, _ = torch.cuda.mem_get_info(device)
    if need > free // 2:
        run.note(f"data: {need / 1e9:.1f} GB of decoded images is more than half the GPU's free memory; "
                 "batches are copied from host memory each step")
        return
    data.train, data.test = data.train.to(device), data.test.to(device)
    run.note(f"data: {len(data.train) + len(data.test)} decoded images kept on the GPU ({need / 1e9:.1f} GB)")


def load_data(data_dir: Path | None, config) -> DetectionData:
    """The train and test sets for ``--data`` (or the generated set when it is None)."""
    if data_dir is None:
        return generated_data(config)
    data_dir = Path(data_dir).expanduser()
    if not data_dir.is_dir():
        raise BadInput(f"--data {data_dir}: no such folder (expected a VOCdevkit folder or a YOLO-format folder)")
    for root in (data_dir, data_dir / "VOCdevkit"):
        # The paper's setting: VOC 2007 with its test list, or 2007 and 2012 together.
        if (root / "VOC2007/ImageSets/Main/test.txt").is_file() or (
                (root / "VOC2007").is_dir() and (root / "VOC2012").is_dir()):
            return voc_data(root, config)
    if _is_voc_folder(data_dir):
        return voc_folder_data(data_dir, config)
    for root in (data_dir, data_dir / "VOCdevkit"):
        years = sorted(p for p in root.glob("VOC*") if _is_voc_folder(p)) if root.is_dir() else []
        if years:
            return voc_folder_data(years[-1], config)
    if (data_dir / "images").is_dir() or any((data_dir / s / "images").is_dir() for s in _split_dirs(data_dir)):
        return yolo_folder_data(data_dir, config)
    raise BadInput(
        f"--data {data_dir}: expected a VOCdevkit folder (holding VOC2007/), a VOC-format folder (Annotations/ "
        "and JPEGImages/) or a YOLO-format folder (images/ and labels/, or train/images and train/labels)"
    )


# -- images ---------------------------------------------------------------------------------------

def decode_image(path: Path, size: int) -> torch.Tensor:
    """Read an image file as (3, size, size) uint8 RGB, resized without keeping the aspect ratio (Fig. 1)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise KBError(f"{path}: cannot be read as an image ({exc})") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


def image_size_of(path: Path) -> tuple[int, int]:
    """(width, height) from the file header."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise KBError(f"{path}: cannot be read as an image ({exc})") from None


def _image_source(paths: list[Path], size: int, config):
    """Pre-decode the images when they fit in ``config.cache_gb``, else keep the paths."""
    if len(paths) * 3 * size * size > config.cache_gb * 1e9:
        return paths
    with ThreadPoolExecutor(max(1, config.workers)) as pool:
        decoded = list(pool.map(lambda p: decode_image(p, size), paths))
    return torch.stack(decoded) if decoded else torch.zeros(0, 3, size, size, dtype=torch.uint8)


def _fingerprint(paths: list[Path], root: Path, annotations: list[bytes]) -> str:
    """sha256 over each image's relative path and byte size and its annotation bytes (16 hex digits)."""
    digest = hashlib.sha256()
    for path, annotation in zip(paths, annotations):
        digest.update(f"{path.relative_to(root).as_posix()}:{path.stat().st_size}\n".encode())
        digest.update(annotation)
    return digest.hexdigest()[:16]


# -- PASCAL VOC -----------------------------------------------------------------------------------

@dataclass
class VOCObjects:
    """One VOC annotation file as written: image size, corner boxes as image fractions, names, difficult."""

    size: tuple[int, int]
    boxes: list[list[float]]
    names: list[str]
    difficult: list[bool]

    def annotation(self, classes: tuple[str, ...], path: Path) -> Annotation:
        unknown = next((n for n in self.names if n not in classes), None)
        if unknown is not None:
            which = "VOC classes" if classes == VOC_CLASSES else f"classes ({', '.join(classes)})"
            raise KBError(f"{path}: object class {unknown!r} is not one of the {len(classes)} {which}")
        return Annotation(
            boxes=torch.tensor(self.boxes, dtype=torch.float32).reshape(-1, 4),
            labels=torch.tensor([classes.index(n) for n in self.names], dtype=torch.long),
            difficult=torch.tensor(self.difficult, dtype=torch.bool),
        )


def read_voc_xml(path: Path) -> VOCObjects:
    """Read one VOC annotation file; boxes become fractions of the image.

    VOC boxes are 1-based inclusive pixels, so pixels x1..x2 span [x1 - 1, x2] of a width-W image.
    Annotation tools that write 0-based or one-past-the-end corners (LabelImg, CVAT) are accepted by
    clipping to the image; a box more than one pixel outside it, or inverted, is an error.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise KBError(f"{path}: not a readable VOC annotation XML ({exc})") from None

    def number(node, tag: str) -> float:
        text = node.findtext(tag)
        try:
            return float(text)
        except (TypeError, ValueError):
            raise KBError(f"{path}: <{tag}> is {text!r}, expected a number") from None

    size = root.find("size")
    if size is None:
        raise KBError(f"{path}: no <size> element, expected <size><width>..</width><height>..</height></size>")
    width, height = int(number(size, "width")), int(number(size, "height"))
    if width <= 0 or height <= 0:
        raise KBError(f"{path}: image size {width}x{height} is not positive")
    objects = VOCObjects((width, height), [], [], [])
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise KBError(f"{path}: an <object> has no <name>")
        box = obj.find("bndbox")
        if box is None:
            raise KBError(f"{path}: object {name!r} has no <bndbox>")
        x1, y1, x2, y2 = (number(box, tag) for tag in ("xmin", "ymin", "xmax", "ymax"))
        if not (0 <= x1 <= x2 <= width + 1 and 0 <= y1 <= y2 <= height + 1):
            raise KBError(f"{path}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) of {name!r} is outside the "
                          f"{width}x{height} image or inverted")
        x1, y1, x2, y2 = max(x1, 1), max(y1, 1), min(x2, width), min(y2, height)
        objects.boxes.append([(x1 - 1) / width, (y1 - 1) / height, x2 / width, y2 / height])
        objects.names.append(name)
        objects.difficult.append(obj.findtext("difficult", "0").strip() == "1")
    return objects


def parse_voc_xml(path: Path, classes: tuple[str, ...] = VOC_CLASSES) -> tuple[tuple[int, int], Annotation]:
    """Read one VOC annotation file: ((width, height), objects), labels indexing ``classes``."""
    objects = read_voc_xml(path)
    return objects.size, objects.annotation(classes, path)


def _is_voc_folder(folder: Path) -> bool:
    return (folder / "Annotations").is_dir() and (folder / "JPEGImages").is_dir()


def _voc_image(folder: Path, image_id: str) -> Path | None:
    for suffix in IMAGE_SUFFIXES + tuple(s.upper() for s in IMAGE_SUFFIXES):
        path = folder / "JPEGImages" / f"{image_id}{suffix}"
        if path.is_file():
            return path
    return None


@dataclass
class _Split:
    """Images of one VOC split with their parsed annotation files."""

    paths: list[Path]
    objects: list[VOCObjects]
    xmls: list[Path]

    def part(self, classes: tuple[str, ...], config) -> DetectionSet:
        targets = [o.annotation(classes, x) for o, x in zip(self.objects, self.xmls)]
        return DetectionSet(_image_source(self.paths, config.image_size, config), [o.size for o in self.objects],
                            targets, config.image_size, len(classes))

    def __add__(self, other: "_Split") -> "_Split":
        return _Split(self.paths + other.paths, self.objects + other.objects, self.xmls + other.xmls)


def _voc_ids(folder: Path, image_ids: list[str], listing: Path | None = None) -> _Split:
    """Parse the annotation and find the image of each id (``listing`` names the list they came from)."""
    split = _Split([], [], [])
    for image_id in image_ids:
        xml_path = folder / "Annotations" / f"{image_id}.xml"
        image_path = _voc_image(folder, image_id)
        if not xml_path.is_file() or image_path is None:
            missing = [f"Annotations/{image_id}.xml"] * (not xml_path.is_file()) + \
                [f"JPEGImages/{image_id}.jpg"] * (image_path is None)
            lead = f"{listing} lists {image_id}, but" if listing else f"{folder}: {image_id} has an annotation, but"
            raise BadInput(f"{lead} {' and '.join(missing)} is missing")
        split.paths.append(image_path)
        split.objects.append(read_voc_xml(xml_path))
        split.xmls.append(xml_path)
    return split


def _voc_listed(folder: Path, name: str) -> _Split:
    listing = folder / "ImageSets" / "Main" / f"{name}.txt"
    if not listing.is_file():
        hint = " (VOC 2007 test comes in its own archive, VOCtest_06-Nov-2007.tar)" if name == "test" else ""
        raise BadInput(f"{listing} not found: expected the {folder.name} {name} image list of a VOCdevkit{hint}")
    return _voc_ids(folder, listing.read_text().split(), listing)


def voc_data(root: Path, config) -> DetectionData:
    """VOC 2007 + 2012 trainval for training (2012 if present), VOC 2007 test for evaluation."""
    train = _voc_listed(root / "VOC2007", "trainval")
    years = ["2007"]
    if (root / "VOC2012").is_dir():
        train = train + _voc_listed(root / "VOC2012", "trainval")
        years.append("2012")
    test = _voc_listed(root / "VOC2007", "test")
    return DetectionData(
        train=train.part(VOC_CLASSES, config),
        test=test.part(VOC_CLASSES, config),
        classes=VOC_CLASSES,
        name="voc2007-test",
        fingerprint=_fingerprint(train.paths + test.paths, root, [x.read_bytes() for x in train.xmls + test.xmls]),
        synthetic=False,
        detail=f"trained on VOC {'+'.join(years)} trainval ({len(train.paths)} images), evaluated on VOC 2007 test "
               f"({len(test.paths)} images)",
    )


def voc_folder_data(folder: Path, config) -> DetectionData:
    """One VOC-format folder (``Annotations/``, ``JPEGImages/``, optionally ``ImageSets/Main/``).

    The splits are the first pair of image lists found among trainval/test, train/val and train/test;
    without lists every ``holdout_every``-th annotation (sorted by name) is held out. The classes are
    the 20 VOC classes when every object is one of them, else the names found, sorted.
    """
    lists = folder / "ImageSets" / "Main"
    pair = next(((a, b) for a, b in (("trainval", "test"), ("train", "val"), ("train", "test"))
                 if (lists / f"{a}.txt").is_file() and (lists / f"{b}.txt").is_file()), None)
    if pair:
        train, test = _voc_listed(folder, pair[0]), _voc_listed(folder, pair[1])
        how = f"trained on {pair[0]} ({len(train.paths)} images), evaluated on {pair[1]} ({len(test.paths)} images)"
    else:
        ids = sorted(p.stem for p in (folder / "Annotations").glob("*.xml"))
        if not ids:
            raise BadInput(f"{folder / 'Annotations'}: no .xml annotation files")
        held = [i % config.holdout_every == config.holdout_every - 1 for i in range(len(ids))]
        train = _voc_ids(folder, [i for i, h in zip(ids, held) if not h])
        test = _voc_ids(folder, [i for i, h in zip(ids, held) if h])
        how = (f"{len(train.paths)} training, {len(test.paths)} test images (every {config.holdout_every}th "
               "annotation, sorted by name, held out; no ImageSets/Main lists)")
        if not train.paths or not test.paths:
            raise BadInput(f"{folder}: {len(ids)} images are too few to hold out a test split")
    names = {n for o in train.objects + test.objects for n in o.names}
    classes = VOC_CLASSES if names <= set(VOC_CLASSES) else tuple(sorted(names))
    comparable = folder.name == "VOC2007" and pair == ("trainval", "test")
    return DetectionData(
        train=train.part(classes, config),
        test=test.part(classes, config),
        classes=classes,
        name="voc2007-test" if comparable else f"voc-folder:{folder.resolve().name}",
        fingerprint=_fingerprint(train.paths + test.paths, folder, [x.read_bytes() for x in train.xmls + test.xmls]),
        synthetic=False,
        detail=f"{folder}: {how}; {len(classes)} classes",
    )


# -- YOLO-format folders --------------------------------------------------------------------------

def parse_yolo_labels(path: Path, num_classes: int | None) -> Annotation:
    """Read a YOLO label file: one ``class cx cy w h`` row per object, coordinates in [0, 1].

    A missing file means an image without objects. ``num_classes`` None skips the range check.
    """
    if not path.is_file():
        return Annotation(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.bool))
    boxes, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(fields) != 5 or len(values) != 5 or values[0] != int(values[0]):
            raise KBError(f"{path}, line {number}: expected 'class cx cy w h' (an integer and 4 numbers), got {line.strip()!r}")
        label, cx, cy, w, h = int(values[0]), *values[1:]
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise KBError(f"{path}, line {number}: class {label} is out of range (0..{(num_classes or 1) - 1})")
        if not all(0 <= v <= 1 for v in (cx, cy, w, h)) or w <= 0 or h <= 0:
            raise KBError(f"{path}, line {number}: box {cx} {cy} {w} {h} is not a normalised box in [0, 1]")
        boxes.append([max(cx - w / 2, 0), max(cy - h / 2, 0), min(cx + w / 2, 1), min(cy + h / 2, 1)])
        labels.append(label)
    return Annotation(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                      torch.tensor(labels, dtype=torch.long), torch.zeros(len(labels), dtype=torch.bool))


def _split_dirs(folder: Path) -> list[str]:
    """Subfolders laid out as ``<split>/images`` + ``<split>/labels`` (Roboflow and Ultralytics exports)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / "images").is_dir())


def _is_val(split: str) -> bool:
    return split.lower().startswith("val")


def _is_test(split: str) -> bool:
    return split.lower().startswith("test")


def _class_names(folder: Path) -> tuple[str, ...]:
    """Class names from ``classes.txt`` / ``obj.names`` (a name per line) or ``data.yaml`` (``names:``)."""
    for name in ("classes.txt", "obj.names"):
        if (folder / name).is_file():
            return tuple(n.strip() for n in (folder / name).read_text().splitlines() if n.strip())
    for name in ("data.yaml", "dataset.yaml"):
        path = folder / name
        if not path.is_file():
            continue
        import yaml

        try:
            names = (yaml.safe_load(path.read_text()) or {}).get("names")
        except (yaml.YAMLError, AttributeError) as exc:
            raise KBError(f"{path}: not a readable dataset YAML ({str(exc).splitlines()[0]})") from None
        if isinstance(names, dict) and sorted(names) == list(range(len(names))):
            return tuple(str(names[i]) for i in range(len(names)))
        if isinstance(names, list) and names:
            return tuple(str(n) for n in names)
        raise KBError(f"{path}: 'names' should be a list of class names or a mapping 0: name, 1: name, ...")
    return ()


def yolo_folder_data(folder: Path, config) -> DetectionData:
    """A YOLO-format folder: ``images/[split/]x.jpg`` with ``labels/[split/]x.txt``, or ``split/images``
    with ``split/labels``. Evaluated on a ``val*`` split, else a ``test*`` split (a test split is never
    trained on), else on every ``holdout_every``-th image sorted by path."""
    if (folder / "images").is_dir():
        layout = [(folder / "images", folder / "labels")]
    else:
        layout = [(folder / s / "images", folder / s / "labels") for s in _split_dirs(folder)]
    for _, labels_dir in layout:
        if not labels_dir.is_dir():
            raise BadInput(f"{labels_dir.parent}: has images/ but no labels/ folder (YOLO format: labels/<image>.txt)")
    names = _class_names(folder)
    known = len(names) or config.num_classes or None
    files, label_files, splits = [], [], []
    for images_dir, labels_dir in layout:
        for path in sorted(p for p in images_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            inner = path.relative_to(images_dir)
            files.append(path)
            label_files.append((labels_dir / inner).with_suffix(".txt"))
            nested = inner.parts[0] if len(inner.parts) > 1 else ""
            splits.append(images_dir.parent.name if len(layout) > 1 else nested)
    if not files:
        where = " or ".join(str(images.relative_to(folder)) for images, _ in layout)
        raise BadInput(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) under {where}")
    if not any(p.is_file() for p in label_files):
        raise BadInput(f"{folder}: none of the {len(files)} images has a label file "
                       f"(expected e.g. {label_files[0].relative_to(folder)} for {files[0].relative_to(folder)})")
    targets = [parse_yolo_labels(p, known) for p in label_files]
    num_classes = known or max([int(t.labels.max()) + 1 for t in targets if len(t.labels)], default=1)
    ordered = sorted(set(splits))
    held_split = next((s for s in ordered if _is_val(s)), None) or next((s for s in ordered if _is_test(s)), None)
    if held_split is not None:
        role = ["test" if s == held_split else "skip" if _is_test(s) or _is_val(s) else "train" for s in splits]
        unused = sorted({s for s, r in zip(splits, role) if r == "skip"})
        how = f"split {held_split!r} held out for evaluation" + (f" ({', '.join(unused)} not used)" if unused else "")
    else:
        role = ["test" if i % config.holdout_every == config.holdout_every - 1 else "train" for i in range(len(files))]
        how = f"every {config.holdout_every}th image (sorted by path) held out for evaluation"
    if "test" not in role or "train" not in role:
        raise BadInput(f"{folder}: {len(files)} images are too few to hold out a test split")
    parts = {}
    for which in ("train", "test"):
        chosen = [i for i, r in enumerate(role) if r == which]
        paths = [files[i] for i in chosen]
        parts[which] = DetectionSet(_image_source(paths, config.image_size, config),
                                    [image_size_of(p) for p in paths], [targets[i] for i in chosen],
                                    config.image_size, num_classes)
    used = [i for i, r in enumerate(role) if r != "skip"]
    return DetectionData(
        train=parts["train"], test=parts["test"],
        classes=names or tuple(str(i) for i in range(num_classes)),
        name=f"yolo-folder:{folder.resolve().name}",
        fingerprint=_fingerprint([files[i] for i in used], folder,
                                 [label_files[i].read_bytes() if label_files[i].is_file() else b"" for i in used]),
        synthetic=False,
        detail=f"{folder}: {len(parts['train'])} training, {len(parts['test'])} test images; {how}",
    )


# -- generated shapes -----------------------------------------------------------------------------

def _hsv_to_rgb(hue: torch.Tensor, saturation: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """(N,) HSV in [0, 1] -> (N, 3) RGB."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6 * hue[:, None]) % 6
    return value[:, None] * (1 - saturation[:, None] * torch.minimum(k, 4 - k).clamp(0, 1))


def generate_shapes(count: int, size: int, seed: int, max_objects: int = 4) -> tuple[torch.Tensor, list[Annotation]]:
    """``count`` images of 1..max_objects coloured shapes (circle, square, triangle, cross) on textures.

    Each class has its own shape and hue family (red circles, yellow-green squares, cyan triangles,
    purple crosses, hues jittered), saturated against muted striped backgrounds, so that a detector
    trained from scratch learns the set quickly. Each shape fills its box (the triangle's apex touches
    the top edge, its base the bottom); a shape is placed only where at most 10% of the smaller of it
    and an earlier shape is covered. Deterministic in ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)
    images, targets = [], []
    for start in range(0, count, 256):
        n = min(256, count - start)
        # Background: a muted base colour, two random stripe patterns and pixel noise.
        canvas = 0.25 + 0.35 * torch.rand(n, 3, 1, 1, generator=g)
        for _ in range(2):
            angle = torch.rand(n, 1, 1, generator=g) * torch.pi
            freq = 2 + 10 * torch.rand(n, 1, 1, generator=g)
            phase = torch.rand(n, 1, 1, generator=g) * 2 * torch.pi
            wave = torch.sin(2 * torch.pi * freq * (x * angle.cos() + y * angle.sin()) + phase)
            canvas = canvas + 0.12 * wave[:, None] * torch.rand(n, 3, 1, 1, generator=g)
        canvas = canvas + 0.05 * torch.randn(n, 3, size, size, generator=g)
        wanted = torch.randint(1, max_objects + 1, (n,), generator=g)
        placed = torch.zeros(n, max_objects, 4)
        active = torch.zeros(n, max_objects, dtype=torch.bool)
        labels = torch.randint(0, len(SHAPE_CLASSES), (n, max_objects), generator=g)
        for slot in range(max_objects):
            # 8 candidate positions per image; take the first that keeps clear of the shapes so far.
            half = 0.06 + 0.16 * torch.rand(n, 8, generator=g)
            centre = half[..., None] + (1 - 2 * half[..., None]) * torch.rand(n, 8, 2, generator=g)
            candidates = torch.cat([centre - half[..., None], centre + half[..., None]], dim=-1)
            a, b = candidates[:, :, None], placed[:, None]
            inter = ((torch.minimum(a[..., 2:], b[..., 2:]) - torch.maximum(a[..., :2], b[..., :2])).clamp(min=0)).prod(-1)
            smaller = torch.minimum((a[..., 2:] - a[..., :2]).prod(-1), (b[..., 2:] - b[..., :2]).prod(-1))
            ok = ~((inter / smaller.clamp(min=1e-9) * active[:, None]).amax(-1) > 0.1)
            first = ok.float().argmax(-1)
            use = ok.any(-1) & (slot < wanted)
            box = candidates[torch.arange(n), first]
            placed[:, slot], active[:, slot] = box, use
            cx, cy = ((box[:, 0] + box[:, 2]) / 2).view(n, 1, 1), ((box[:, 1] + box[:, 3]) / 2).view(n, 1, 1)
            r = ((box[:, 2] - box[:, 0]) / 2).view(n, 1, 1)
            dx, dy = (x - cx).abs(), y - cy
            shape = labels[:, slot].view(n, 1, 1)
            mask = torch.where(shape == 0, dx**2 + dy**2 <= r**2, torch.zeros(()).bool())
            mask |= (shape == 1) & (dx <= r) & (dy.abs() <= r)
            mask |= (shape == 2) & (dy.abs() <= r) & (dx <= (dy + r) / 2)
            mask |= (shape == 3) & (((dx <= r) & (dy.abs() <= r / 3)) | ((dx <= r / 3) & (dy.abs() <= r)))
            mask &= use.view(n, 1, 1)
            hsv = torch.rand(n, 3, generator=g)
            hue = (labels[:, slot] / len(SHAPE_CLASSES) + 0.12 * (hsv[:, 0] - 0.5)) % 1
            colour = _hsv_to_rgb(hue, 0.7 + 0.3 * hsv[:, 1], 0.75 + 0.25 * hsv[:, 2])
            canvas = torch.where(mask[:, None], colour.view(n, 3, 1, 1), canvas)
        images.append((canvas.clamp(0, 1) * 255).round().to(torch.uint8))
        for i in range(n):
            keep = active[i]
            targets.append(Annotation(placed[i][keep].clone(), labels[i][keep].clone(),
                                      torch.zeros(int(keep.sum()), dtype=torch.bool)))
    return torch.cat(images), targets


def generated_data(config) -> DetectionData:
    """The generated train and test sets at the network's input size (seeds ``generated_seed``, +1)."""
    size = config.image_size
    train_images, train_targets = generate_shapes(config.generated_train, size, config.generated_seed)
    test_images, test_targets = generate_shapes(config.generated_test, size, config.generated_seed + 1)
    digest = hashlib.sha256()
    for images, targets in ((train_images, train_targets), (test_images, test_targets)):
        digest.update(images.numpy().tobytes())
        for t in targets:
            digest.update(t.boxes.numpy().tobytes() + t.labels.numpy().tobytes())
    n = len(SHAPE_CLASSES)
    return DetectionData(
        train=DetectionSet(train_images, [(size, size)] * len(train_targets), train_targets, size, n),
        test=DetectionSet(test_images, [(size, size)] * len(test_targets), test_targets, size, n),
        classes=SHAPE_CLASSES,
        name="generated-shapes",
        fingerprint=digest.hexdigest()[:16],
        synthetic=True,
        detail=f"generated shapes (seed {config.generated_seed}): {len(train_targets)} training, "
               f"{len(test_targets)} test images of {size}x{size}",
    )


# -- augmentation (Sec. 2.2) ----------------------------------------------------------------------

def augment(images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
            *, jitter: float, exposure: float, saturation: float):
    """Random scaling and translation of up to ``jitter`` of the image size, and random exposure and
    saturation by up to a factor ``exposure`` / ``saturation`` in HSV (Sec. 2.2). Runs on the images'
    device; the random numbers come from ``generator`` (CPU) so that they are reproducible.

    Args:
        images: (N, 3, H, W) float in [0, 1].
        boxes: (N, M, 4) corner boxes in [0, 1].
        labels: (N, M), -1 for padding; objects pushed (almost) out of the image become -1.
        generator: the source of randomness.
        jitter: 0.2 in the paper.
        exposure: 1.5 in the paper.
        saturation: 1.5 in the paper.

    Returns:
        The augmented images, boxes and labels.
    """
    draw = augmentation_draws(images.shape[0], generator).to(images.device)
    return apply_augmentation(images, boxes, labels, draw, jitter=jitter, exposure=exposure, saturation=saturation)


def augmentation_draws(n: int, generator: torch.Generator) -> torch.Tensor:
    """The (n, 5) uniform random numbers of ``augment``: scale, x and y shift, exposure, saturation."""
    return torch.rand(n, 5, generator=generator)


def apply_augmentation(images: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor, draw: torch.Tensor, *,
                       jitter: float, exposure: float, saturation: float):
    """``augment`` given its random numbers (``augmentation_draws``, on the images' device). Tensor code
    only, so that torch.compile can fuse it into a few kernels."""
    n, size_y, size_x = images.shape[0], images.shape[2], images.shape[3]
    scale = 1 + jitter * (2 * draw[:, 0] - 1)
    shift = jitter * (2 * draw[:, 1:3] - 1)  # (N, 2) as a fraction of the image
    # Output pixel u (in [0, 1]) shows input pixel (u - 0.5 - shift) / scale + 0.5. In grid_sample's
    # [-1, 1] coordinates of pixel centres (align_corners=False) that is (u' - 2 shift) / scale; built
    # by broadcasting, as affine_grid would with a diagonal matrix but without its batched matmul.
    along_x = (torch.arange(size_x, device=images.device, dtype=images.dtype) * 2 + 1) / size_x - 1
    along_y = (torch.arange(size_y, device=images.device, dtype=images.dtype) * 2 + 1) / size_y - 1
    inverse = (1 / scale).view(n, 1, 1)
    grid_x = ((along_x.view(1, 1, size_x) - 2 * shift[:, 0].view(n, 1, 1)) * inverse).expand(n, size_y, size_x)
    grid_y = ((along_y.view(1, size_y, 1) - 2 * shift[:, 1].view(n, 1, 1)) * inverse).expand(n, size_y, size_x)
    grid = torch.stack([grid_x, grid_y], dim=-1)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    moved = ((boxes - 0.5) * scale.view(n, 1, 1) + 0.5 + shift.repeat(1, 2).view(n, 1, 4)).clamp(0, 1)
    gone = ((moved[..., 2] - moved[..., 0]) < 0.01) | ((moved[..., 3] - moved[..., 1]) < 0.01)
    labels = torch.where(gone, torch.full_like(labels, -1), labels)

    def factor(u: torch.Tensor, most: float) -> torch.Tensor:
        # Uniform in [1, most], inverted half of the time (as Darknet's rand_scale).
        value = 1 + (most - 1) * u.abs()
        return torch.where(u >= 0, value, 1 / value).view(n, 1, 1, 1)

    value_factor = factor(2 * draw[:, 3] - 1, exposure)
    saturation_factor = factor(2 * draw[:, 4] - 1, saturation)
    # HSV without the hue: a pixel is value * (1 - sat * k_c), where k_c = (v - c) / (v - min) depends on
    # the hue only. Scaling V and S and clipping them to [0, 1] leaves k_c and so the hue unchanged.
    value = images.amax(1, keepdim=True)
    spread = value - images.amin(1, keepdim=True)
    sat = torch.where(value > 0, spread / value.clamp(min=1e-6), torch.zeros_like(value))
    hue_profile = torch.where(spread > 0, (value - images) / spread.clamp(min=1e-6), torch.zeros_like(images))
    value = (value * value_factor).clamp(0, 1)
    sat = (sat * saturation_factor).clamp(0, 1)
    images = value * (1 - sat * hue_profile)
    return images, moved, labels
