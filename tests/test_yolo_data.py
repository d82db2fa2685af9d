"""Data loaders and augmentation of the YOLOv1 runner, on small files made here."""

import colorsys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kb.errors import KBError
from runners.detection.data import (
    apply_augmentation,
    augment,
    generate_shapes,
    load_data,
    parse_voc_xml,
    parse_yolo_labels,
)
from runners.yolo.config import PRESETS

CONFIG = replace(PRESETS["smoke"], workers=1)
COCO128 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco128"


def _jpeg(path: Path, width: int, height: int, colour=(200, 30, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), colour).save(path)


def _voc_xml(objects, width=200, height=100) -> str:
    body = "".join(
        f"<object><name>{name}</name><difficult>{int(difficult)}</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, difficult, (x1, y1, x2, y2) in objects
    )
    return f"<annotation><size><width>{width}</width><height>{height}</height><depth>3</depth></size>{body}</annotation>"


def _vocdevkit(root: Path, splits: dict[str, dict[str, str]]) -> Path:
    """splits: year -> {split name -> ' '.join(ids)}; every id gets an image and an annotation."""
    devkit = root / "VOCdevkit"
    for year, lists in splits.items():
        main = devkit / f"VOC{year}" / "ImageSets" / "Main"
        main.mkdir(parents=True)
        for split, ids in lists.items():
            (main / f"{split}.txt").write_text(ids.replace(" ", "\n") + "\n")
            for image_id in ids.split():
                _jpeg(devkit / f"VOC{year}" / "JPEGImages" / f"{image_id}.jpg", 200, 100)
                xml = _voc_xml([("dog", False, (1, 1, 100, 50)), ("person", True, (101, 51, 200, 100))])
                (devkit / f"VOC{year}" / "Annotations").mkdir(parents=True, exist_ok=True)
                (devkit / f"VOC{year}" / "Annotations" / f"{image_id}.xml").write_text(xml)
    return devkit


def test_voc_xml_boxes_classes_and_difficult(tmp_path):
    path = tmp_path / "a.xml"
    path.write_text(_voc_xml([("dog", False, (1, 1, 100, 50)), ("person", True, (51, 26, 150, 75))]))
    size, target = parse_voc_xml(path)
    assert size == (200, 100)
    # 1-based inclusive pixels 1..100 of 200 -> [0, 0.5]; 51..150 -> [0.25, 0.75].
    np.testing.assert_allclose(target.boxes, [[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 0.75, 0.75]], atol=1e-6)
    assert target.labels.tolist() == [11, 14]  # dog, person in the VOC class order
    assert target.difficult.tolist() == [False, True]


@pytest.mark.parametrize("text, complaint", [
    ("<annotation><size><width>10", "not a readable VOC annotation XML"),
    (_voc_xml([("unicorn", False, (1, 1, 5, 5))]), "'unicorn' is not one of the 20 VOC classes"),
    (_voc_xml([("dog", False, (1, 1, 5, 5))]).replace("<xmax>5</xmax>", "<xmax>five</xmax>"), "<xmax> is 'five'"),
    (_voc_xml([("dog", False, (1, 1, 500, 5))]), "outside the 200x100 image"),
    ("<annotation><object/></annotation>", "no <size> element"),
])
def test_malformed_voc_xml_names_the_file(tmp_path, text, complaint):
    path = tmp_path / "broken.xml"
    path.write_text(text)
    with pytest.raises(KBError) as caught:
        parse_voc_xml(path)
    message = str(caught.value)
    assert str(path) in message and complaint in message and "\n" not in message


def test_vocdevkit_trains_on_07_plus_12_trainval_and_tests_on_07_test(tmp_path):
    _vocdevkit(tmp_path, {"2007": {"trainval": "000005 000007", "test": "000001"}, "2012": {"trainval": "2008_000002"}})
    data = load_data(tmp_path, CONFIG)  # the folder above VOCdevkit works too
    assert data.name == "voc2007-test" and not data.synthetic
    assert (len(data.train), len(data.test)) == (3, 1)
    assert data.train.num_classes == 20 and data.classes[11] == "dog"
    assert data.test.sizes == [(200, 100)]
    images, _, labels = data.train[[0, 2]]
    assert images.shape == (2, 3, 64, 64) and images.dtype == torch.uint8
    assert labels.tolist() == [[11], [11]]  # the difficult person is not trained on
    assert data.test.targets[0].difficult.tolist() == [False, True]  # ... but is kept for evaluation
    assert load_data(tmp_path / "VOCdevkit", CONFIG).fingerprint == data.fingerprint


def test_vocdevkit_without_test_list_is_a_clear_error(tmp_path):
    _vocdevkit(tmp_path, {"2007": {"trainval": "000005"}, "2012": {"trainval": "2008_000002"}})
    with pytest.raises(KBError, match=r"VOC2007/ImageSets/Main/test.txt not found.*VOCtest_06-Nov-2007.tar"):
        load_data(tmp_path, CONFIG)


def test_a_home_made_voc2007_folder_without_test_list_holds_out_images(tmp_path):
    devkit = _vocdevkit(tmp_path, {"2007": {"train": "a b c d e f"}})
    data = load_data(tmp_path, CONFIG)
    assert data.name == "voc-folder:VOC2007" and (len(data.train), len(data.test)) == (5, 1)
    assert load_data(devkit / "VOC2007", CONFIG).fingerprint == data.fingerprint


def test_wrong_data_path(tmp_path):
    with pytest.raises(KBError, match="no such folder"):
        load_data(tmp_path / "missing", CONFIG)
    with pytest.raises(KBError, match="expected a VOCdevkit folder"):
        load_data(tmp_path, CONFIG)


def _yolo_folder(root: Path, count: int, split: str | None = "train2017") -> Path:
    sub = Path(split) if split else Path()
    for i in range(count):
        _jpeg(root / "images" / sub / f"{i:03d}.jpg", 80, 40)
        label = root / "labels" / sub / f"{i:03d}.txt"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(f"{i % 3} 0.5 0.5 0.25 0.5\n\n1 0.1 0.2 0.2 0.4\n")
    return root


@pytest.mark.parametrize("split", ["train2017", None])
def test_yolo_folder_layouts_and_deterministic_holdout(tmp_path, split):
    folder = _yolo_folder(tmp_path / "shapes", 10, split)
    (folder / "labels" / Path(split or "") / "004.txt").unlink()  # an image without objects
    data = load_data(folder, CONFIG)
    assert data.name == "yolo-folder:shapes"
    assert (len(data.train), len(data.test)) == (8, 2)  # images 4 and 9 (every 5th) are held out
    assert "every 5th image" in data.detail
    assert data.test.targets[0].labels.tolist() == [] and data.test.targets[1].labels.tolist() == [0, 1]
    assert data.train.num_classes == 3  # largest label + 1 without a names file
    np.testing.assert_allclose(data.train.targets[0].boxes, [[0.375, 0.25, 0.625, 0.75], [0.0, 0.0, 0.2, 0.4]], atol=1e-6)
    assert data.test.sizes == [(80, 40), (80, 40)]
    assert load_data(folder, CONFIG).fingerprint == data.fingerprint


def test_yolo_folder_val_split_and_names_file(tmp_path):
    folder = _yolo_folder(tmp_path / "d", 4, "train")
    _yolo_folder(folder, 2, "val")
    (folder / "classes.txt").write_text("a\nb\nc\nd\n")
    data = load_data(folder, CONFIG)
    assert (len(data.train), len(data.test)) == (4, 2) and data.classes == ("a", "b", "c", "d")


@pytest.mark.parametrize("line, complaint", [
    ("0 0.5 0.5 0.2", "expected 'class cx cy w h'"),
    ("0 0.5 0.5 0.2 0.2 7", "expected 'class cx cy w h'"),
    ("cat 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
    ("1.5 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
    ("5 0.5 0.5 0.2 0.2", "class 5 is out of range (0..3)"),
    ("-1 0.5 0.5 0.2 0.2", "class -1 is out of range"),
    ("0 0.5 0.5 1.2 0.2", "not a normalised box"),
])
def test_malformed_yolo_label_names_file_and_line(tmp_path, line, complaint):
    path = tmp_path / "x.txt"
    path.write_text("0 0.5 0.5 0.1 0.1\n" + line + "\n")
    with pytest.raises(KBError) as caught:
        parse_yolo_labels(path, num_classes=4)
    message = str(caught.value)
    assert f"{path}, line 2" in message and complaint in message


def test_yolo_folder_bad_image_and_class_out_of_names(tmp_path):
    folder = _yolo_folder(tmp_path / "d", 5, None)
    (folder / "classes.txt").write_text("only\n")
    with pytest.raises(KBError, match=r"000\.txt, line 3: class 1 is out of range \(0\.\.0\)"):
        load_data(folder, CONFIG)
    (folder / "classes.txt").unlink()
    (folder / "images" / "002.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(KBError, match=r"002\.jpg: cannot be read as an image"):
        load_data(folder, CONFIG)


def test_coco128_layout_loads():
    assert COCO128.is_dir(), f"{COCO128}: shared/datasets/coco128 must sit beside the checkout (../shared)"
    data = load_data(COCO128, replace(CONFIG, num_classes=80))
    assert data.name == "yolo-folder:coco128"
    assert (len(data.train), len(data.test)) == (103, 25)
    # 941 label rows, but two label files (000000000656, 000000000659) have no image and two images
    # (000000000250, 000000000508) no label file: 929 objects, as YOLOv5's coco128 logs say.
    assert sum(len(t.labels) for t in data.train.targets + data.test.targets) == 929
    assert data.train.images.shape == (103, 3, 64, 64)


def test_generated_shapes_are_deterministic_and_valid():
    images, targets = generate_shapes(20, 64, seed=3)
    again, targets_again = generate_shapes(20, 64, seed=3)
    other, _ = generate_shapes(20, 64, seed=4)
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert all(torch.equal(a.boxes, b.boxes) for a, b in zip(targets, targets_again))
    counts = [len(t.labels) for t in targets]
    assert min(counts) >= 1 and max(counts) <= 4
    boxes = torch.cat([t.boxes for t in targets])
    assert (boxes >= 0).all() and (boxes <= 1).all() and (boxes[:, 2:] > boxes[:, :2]).all()
    # A square fills its box: its centre pixel and its corners have the object's colour.
    for image, target in zip(images, targets):
        for box, label in zip(target.boxes, target.labels):
            if label == 1:
                x1, y1, x2, y2 = (box * 64).tolist()
                inside = image[:, int(y1) + 1 : int(y2) - 1, int(x1) + 1 : int(x2) - 1].flatten(1)
                assert (inside == inside[:, :1]).float().mean() > 0.9  # uniform, except where a later shape overlaps


def test_augment_moves_boxes_with_the_pixels():
    image = torch.zeros(1, 3, 64, 64)
    image[:, :, 16:32, 24:48] = 1.0  # a white block: x in [24, 48), y in [16, 32)
    boxes = torch.tensor([[[24 / 64, 16 / 64, 48 / 64, 32 / 64]]])
    out, moved, labels = augment(image, boxes, torch.tensor([[0]]), torch.Generator().manual_seed(5),
                                 jitter=0.2, exposure=1.0, saturation=1.0)
    ys, xs = (out[0].mean(0) > 0.5).nonzero(as_tuple=True)
    found = torch.tensor([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]) / 64
    assert labels.tolist() == [[0]]
    assert moved[0, 0].tolist() == pytest.approx(found.tolist(), abs=1.5 / 64)
    assert moved[0, 0].tolist() != pytest.approx(boxes[0, 0].tolist(), abs=1 / 64)  # it did move


def test_augment_drops_boxes_pushed_out_and_keeps_hue():
    image = torch.rand(4, 3, 8, 8)
    out, _, labels = augment(image, torch.tensor([[[0.0, 0.0, 0.005, 0.005]]] * 4), torch.zeros(4, 1, dtype=torch.long),
                                 torch.Generator().manual_seed(0), jitter=0.0, exposure=1.5, saturation=1.5)
    assert labels.tolist() == [[-1]] * 4  # under 1% of the image wide
    for before, after in zip(image, out):
        hsv_in = np.array([colorsys.rgb_to_hsv(*p) for p in before.flatten(1).T.tolist()])
        hsv_out = np.array([colorsys.rgb_to_hsv(*p) for p in after.flatten(1).T.tolist()])
        np.testing.assert_allclose(hsv_out[:, 0], hsv_in[:, 0], atol=1e-4)  # hue unchanged
        for channel in (1, 2):  # one factor in [1/1.5, 1.5] per image for S and for V, then clipped
            unclipped = hsv_out[:, channel] < 1 - 1e-6
            ratio = hsv_out[unclipped, channel] / hsv_in[unclipped, channel]
            assert np.ptp(ratio) < 1e-3 and 1 / 1.5 - 1e-4 <= ratio[0] <= 1.5 + 1e-4


def _voc_folder(folder: Path, objects_of: dict[str, list], lists: dict[str, str] | None = None) -> Path:
    """A single VOC-format folder: Annotations/ + JPEGImages/ (+ ImageSets/Main lists)."""
    (folder / "Annotations").mkdir(parents=True)
    for image_id, objects in objects_of.items():
        _jpeg(folder / "JPEGImages" / f"{image_id}.jpg", 200, 100)
        (folder / "Annotations" / f"{image_id}.xml").write_text(_voc_xml(objects))
    for split, ids in (lists or {}).items():
        (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
        (folder / "ImageSets" / "Main" / f"{split}.txt").write_text(ids.replace(" ", "\n") + "\n")
    return folder


def test_labelimg_style_voc_folder_without_lists_and_with_own_classes(tmp_path):
    # LabelImg writes 0-based corners and one-past-the-end maxima; custom class names.
    objects = {f"img{i}": [("widget", False, (0, 0, 201, 50)), ("gadget", i == 3, (100, 50, 200, 100))] for i in range(5)}
    data = load_data(_voc_folder(tmp_path / "parts", objects), CONFIG)
    assert data.name == "voc-folder:parts" and data.classes == ("gadget", "widget")
    assert (len(data.train), len(data.test)) == (4, 1) and "no ImageSets/Main lists" in data.detail
    np.testing.assert_allclose(data.train.targets[0].boxes[0], [0.0, 0.0, 1.0, 0.5], atol=1e-6)  # clipped
    assert data.train.targets[0].labels.tolist() == [1, 0] and data.train.num_classes == 2


def test_voc_year_folder_given_directly_or_2012_alone(tmp_path):
    devkit = _vocdevkit(tmp_path, {"2007": {"trainval": "000005 000007", "test": "000001"}})
    data = load_data(devkit / "VOC2007", CONFIG)
    assert data.name == "voc2007-test" and (len(data.train), len(data.test)) == (2, 1)
    assert data.classes[11] == "dog" and len(data.classes) == 20

    only_2012 = _vocdevkit(tmp_path / "b", {"2012": {"train": "2008_000002 2008_000003", "val": "2008_000004"}})
    for given in (tmp_path / "b", only_2012, only_2012 / "VOC2012"):
        data = load_data(given, CONFIG)
        assert data.name == "voc-folder:VOC2012" and (len(data.train), len(data.test)) == (2, 1)
        assert "trained on train (2 images), evaluated on val (1 images)" in data.detail


@pytest.mark.parametrize("box, complaint", [((50, 10, 40, 20), "inverted"), ((1, 1, 203, 50), "outside the 200x100")])
def test_voc_boxes_far_outside_or_inverted_are_errors(tmp_path, box, complaint):
    path = tmp_path / "a.xml"
    path.write_text(_voc_xml([("dog", False, box)]))
    with pytest.raises(KBError, match=complaint):
        parse_voc_xml(path)


def test_voc_folder_missing_image_is_named(tmp_path):
    folder = _voc_folder(tmp_path / "v", {f"{i}": [("cat", False, (1, 1, 9, 9))] for i in range(6)})
    (folder / "JPEGImages" / "3.jpg").unlink()
    with pytest.raises(KBError, match=r"v: 3 has an annotation, but JPEGImages/3\.jpg is missing"):
        load_data(folder, CONFIG)


def _split_folder(root: Path, split: str, count: int, label: int = 0) -> None:
    for i in range(count):
        _jpeg(root / split / "images" / f"{split}{i}.jpg", 64, 64)
        (root / split / "labels").mkdir(parents=True, exist_ok=True)
        (root / split / "labels" / f"{split}{i}.txt").write_text(f"{label} 0.5 0.5 0.3 0.3\n")


def test_roboflow_layout_evaluates_on_valid_and_never_trains_on_test(tmp_path):
    root = tmp_path / "export"
    _split_folder(root, "train", 6)
    _split_folder(root, "valid", 2, label=1)
    _split_folder(root, "test", 3, label=2)
    (root / "data.yaml").write_text("train: train/images\nval: valid/images\nnc: 3\nnames: {0: ant, 1: bee, 2: cow}\n")
    data = load_data(root, CONFIG)
    assert data.name == "yolo-folder:export" and data.classes == ("ant", "bee", "cow")
    assert (len(data.train), len(data.test)) == (6, 2)
    assert "split 'valid' held out" in data.detail and "test not used" in data.detail
    assert {int(t.labels[0]) for t in data.train.targets} == {0}


def test_flat_layout_with_train_and_test_splits_evaluates_on_test(tmp_path):
    folder = _yolo_folder(tmp_path / "d", 4, "train")
    _yolo_folder(folder, 3, "test")
    (folder / "data.yaml").write_text("names: [a, b, c]\n")
    data = load_data(folder, CONFIG)
    assert (len(data.train), len(data.test)) == (4, 3) and data.classes == ("a", "b", "c")


def test_yolo_folder_without_any_label_file_or_with_a_broken_yaml(tmp_path):
    folder = _yolo_folder(tmp_path / "d", 5, None)
    for label in (folder / "labels").glob("*.txt"):
        label.rename(label.with_suffix(".TXT.bak"))
    with pytest.raises(KBError, match=r"none of the 5 images has a label file \(expected e\.g\. labels/000\.txt"):
        load_data(folder, CONFIG)
    folder = _yolo_folder(tmp_path / "e", 5, None)
    (folder / "data.yaml").write_text("names: [a, b\n")
    with pytest.raises(KBError, match=r"data\.yaml: not a readable dataset YAML"):
        load_data(folder, CONFIG)
    (folder / "data.yaml").write_text("names: 3\n")
    with pytest.raises(KBError, match=r"'names' should be a list"):
        load_data(folder, CONFIG)


def test_augment_warps_as_affine_grid_would():
    """The broadcast sampling grid equals affine_grid's for the same scale and shift (x and y differ)."""
    images = torch.rand(3, 3, 24, 40, generator=torch.Generator().manual_seed(1))
    boxes, labels = torch.tensor([[[0.2, 0.3, 0.6, 0.7]]] * 3), torch.zeros(3, 1, dtype=torch.long)
    draw = torch.rand(3, 5, generator=torch.Generator().manual_seed(2))
    draw[:, 3:] = 0.5  # exposure and saturation factors of 1: the warp alone
    out, _, _ = apply_augmentation(images, boxes, labels, draw, jitter=0.2, exposure=1.5, saturation=1.5)
    scale, shift = 1 + 0.2 * (2 * draw[:, 0] - 1), 0.2 * (2 * draw[:, 1:3] - 1)
    theta = torch.zeros(3, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / scale
    theta[:, :, 2] = -2 * shift / scale[:, None]
    grid = torch.nn.functional.affine_grid(theta, [3, 3, 24, 40], align_corners=False)
    expected = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
