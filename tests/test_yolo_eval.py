"""NMS and the VOC mAP of the YOLOv1 runner, against hand-computed cases and the independent
``mean-average-precision`` package (bes-dev, PyPI), which implements the VOC PASCAL protocol."""

import numpy as np
import pytest
import torch
from mean_average_precision import MetricBuilder

from runners.detection.evaluate import batched_nms, to_devkit_pixels, voc_map
from runners.yolo.model import decode, detect


def _dets(*rows):
    """rows of (x1, y1, x2, y2, score, label) for one image."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return a[:, :4], a[:, 4], a[:, 5].astype(int)


def _gts(*rows):
    """rows of (x1, y1, x2, y2, label, difficult) for one image."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return a[:, :4], a[:, 4].astype(int), a[:, 5].astype(bool)


def test_nms_is_greedy_per_class():
    boxes = torch.tensor([
        [0.0, 0.0, 10.0, 10.0],   # A, 0.9
        [1.0, 0.0, 11.0, 10.0],   # B, 0.8: IoU(A) = 90/110 -> removed by A
        [2.0, 0.0, 12.0, 10.0],   # C, 0.7: IoU(A) = 80/120 -> removed by A
        [6.0, 0.0, 16.0, 10.0],   # D, 0.6: IoU with A 0.25, B 0.33, C 0.43 -> kept
        [0.0, 0.0, 10.0, 10.0],   # E, 0.95 but another class -> kept, suppresses nothing of class 0
    ])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.95])
    classes = torch.tensor([0, 0, 0, 0, 1])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [4, 0, 3]


def test_nms_chain_needs_the_greedy_order():
    # A suppresses B; B would suppress C, but B is gone, so C stays (a one-pass "any higher box" rule
    # would wrongly drop C).
    boxes = torch.tensor([[0.0, 0, 10, 10], [4.0, 0, 14, 10], [8.0, 0, 18, 10]])
    keep = batched_nms(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3, dtype=torch.long), 0.4)
    assert keep.tolist() == [0, 2]


def test_detect_thresholds_and_suppresses_duplicates():
    pred = torch.zeros(1, 2, 2, 2 * 5 + 2)  # S = 2, B = 2, C = 2
    pred[0, 0, 0, 0:5] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.9])
    pred[0, 0, 0, 5:10] = torch.tensor([0.5, 0.5, 0.52, 0.52, 0.5])  # nearly the same box: suppressed
    pred[0, 0, 0, 10:12] = torch.tensor([1.0, 0.0])
    boxes, scores, labels = detect(pred, boxes=2, score_threshold=0.1, iou_threshold=0.5, max_detections=10)[0]
    assert scores.tolist() == pytest.approx([0.9]) and labels.tolist() == [0]
    assert boxes[0].tolist() == pytest.approx([0.125, 0.125, 0.375, 0.375])


def test_devkit_pixel_convention():
    # Pixels 1..100 of a 100-pixel-wide image are the whole [0, 1] range.
    assert to_devkit_pixels(np.array([[0.0, 0.0, 1.0, 0.5]]), 100, 50).tolist() == [[1.0, 1.0, 100.0, 25.0]]


def test_duplicate_detection_is_a_false_positive():
    gts = [_gts((1, 1, 10, 10, 0, 0), (21, 21, 30, 30, 0, 0))]
    dets = [_dets((1, 1, 10, 10, 0.9, 0), (1, 1, 10, 10, 0.8, 0), (21, 21, 30, 30, 0.7, 0))]
    result = voc_map(dets, gts, num_classes=1)
    # TP, FP, TP: recall 0.5, 0.5, 1; precision 1, 0.5, 2/3.
    # 11-point: t <= 0.5 -> 1 (6 points), t >= 0.6 -> 2/3 (5 points). All-point: 0.5 * 1 + 0.5 * 2/3.
    assert result["ap"][0] == pytest.approx(100 * (6 + 5 * 2 / 3) / 11)
    assert result["ap_allpoint"][0] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))


def test_tied_scores_keep_their_input_order():
    # One object; a miss and a hit with equal scores. Miss first: precision 0 then 1/2 -> AP 0.5.
    gts = [_gts((1, 1, 10, 10, 0, 0))]
    miss_first = [_dets((50, 50, 60, 60, 0.5, 0), (1, 1, 10, 10, 0.5, 0))]
    hit_first = [_dets((1, 1, 10, 10, 0.5, 0), (50, 50, 60, 60, 0.5, 0))]
    assert voc_map(miss_first, gts, 1)["ap"][0] == pytest.approx(50.0)
    assert voc_map(miss_first, gts, 1)["ap_allpoint"][0] == pytest.approx(50.0)
    assert voc_map(hit_first, gts, 1)["ap"][0] == pytest.approx(100.0)
    # Across images too: the earlier image's detection ranks first.
    two_images = [_dets((50, 50, 60, 60, 0.5, 0)), _dets((1, 1, 10, 10, 0.5, 0))]
    assert voc_map(two_images, [_gts(), gts[0]], 1)["ap"][0] == pytest.approx(50.0)


def test_difficult_objects_are_ignored():
    gts = [_gts((1, 1, 10, 10, 0, 1), (21, 21, 30, 30, 0, 0))]
    # The hit on the difficult object is neither TP nor FP; the one positive is found first.
    dets = [_dets((1, 1, 10, 10, 0.9, 0), (21, 21, 30, 30, 0.8, 0), (60, 60, 70, 70, 0.1, 0))]
    result = voc_map(dets, gts, 1)
    assert result["ap"][0] == pytest.approx(100.0) and result["ap_allpoint"][0] == pytest.approx(100.0)
    # Missing the difficult object costs nothing either.
    assert voc_map([_dets((21, 21, 30, 30, 0.8, 0))], gts, 1)["ap"][0] == pytest.approx(100.0)
    # A class whose only objects are difficult has no AP and stays out of the mean.
    only_difficult = voc_map([_dets((1, 1, 10, 10, 0.9, 1))], [_gts((1, 1, 10, 10, 1, 1), (21, 21, 30, 30, 0, 0))], 2)
    assert 1 not in only_difficult["ap"] and only_difficult["map"] == pytest.approx(0.0)


def test_no_detections_and_overlap_threshold():
    gts = [_gts((1, 1, 10, 10, 0, 0), (1, 1, 10, 10, 1, 0))]
    # Class 0 has no detection -> AP 0. Class 1: box 1..10 x 1..5 covers 50 of 100 pixels: IoU exactly
    # 0.5, which counts (the devkit tests ov >= 0.5).
    result = voc_map([_dets((1, 1, 10, 5, 0.9, 1))], gts, 2)
    assert result["ap"] == {0: 0.0, 1: pytest.approx(100.0)}
    assert result["map"] == pytest.approx(50.0) and result["map_allpoint"] == pytest.approx(50.0)
    # A wrong-class detection does not count for the other class.
    assert voc_map([_dets((1, 1, 10, 10, 0.9, 1))], [_gts((1, 1, 10, 10, 0, 0))], 2)["map"] == 0.0


def _random_case(seed: int, images: int = 40, classes: int = 3):
    rng = np.random.default_rng(seed)
    dets, gts, theirs = [], [], []
    for _ in range(images):
        n = rng.integers(1, 5)
        xy = rng.uniform(0, 300, (n, 2))
        g_boxes = np.concatenate([xy, xy + rng.uniform(20, 150, (n, 2))], 1)
        g_labels = rng.integers(0, classes, n)
        # Detections: jittered copies of some objects (hits, near misses, duplicates) plus random boxes.
        copies = rng.integers(0, n, rng.integers(0, 2 * n + 1))
        jittered = g_boxes[copies] + rng.normal(0, 12, (len(copies), 4))
        k = rng.integers(0, 4)
        xy = rng.uniform(0, 300, (k, 2))
        noise = np.concatenate([xy, xy + rng.uniform(20, 150, (k, 2))], 1)
        d_boxes = np.concatenate([jittered, noise])
        d_labels = np.concatenate([np.where(rng.random(len(copies)) < 0.8, g_labels[copies], rng.integers(0, classes, len(copies))),
                                   rng.integers(0, classes, k)])
        d_scores = rng.random(len(d_boxes))
        dets.append((d_boxes, d_scores, d_labels))
        gts.append((g_boxes, g_labels, np.zeros(n, dtype=bool)))
        theirs.append((np.column_stack([d_boxes, d_labels, d_scores]),
                       np.column_stack([g_boxes, g_labels, np.zeros(n), np.zeros(n)])))
    return dets, gts, theirs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_the_mean_average_precision_package(seed):
    dets, gts, theirs = _random_case(seed)
    assert all(any((g[1] == c).any() for g in gts) for c in range(3))  # every class has objects
    metric = MetricBuilder.build_evaluation_metric("map_2d", async_mode=False, num_classes=3)
    for preds, truth in theirs:
        metric.add(preds, truth)
    eleven = metric.value(iou_thresholds=0.5, recall_thresholds=np.arange(0.0, 1.1, 0.1))
    allpoint = metric.value(iou_thresholds=0.5)
    ours = voc_map(dets, gts, num_classes=3)
    for c in range(3):
        assert ours["ap"][c] / 100 == pytest.approx(eleven[0.5][c]["ap"], abs=1e-4)
        assert ours["ap_allpoint"][c] / 100 == pytest.approx(allpoint[0.5][c]["ap"], abs=1e-4)
    assert ours["map"] / 100 == pytest.approx(eleven["mAP"], abs=1e-4)
    assert ours["map_allpoint"] / 100 == pytest.approx(allpoint["mAP"], abs=1e-4)
    assert 5 < ours["map"] < 95  # the case is neither trivial nor hopeless


@pytest.mark.parametrize(("images", "threshold", "max_detections"), [(5, 0.05, 100), (3, 0.0, 4), (2, 2.0, 10)])
def test_batched_detect_equals_per_image_greedy_nms(images, threshold, max_detections):
    """Detection over a batch (ranked and suppressed together) equals thresholding, ranking and NMS
    image by image; with a tiny max_detections the candidate cut (10x) and the final cut both bind."""
    pred = torch.rand(images, 7, 7, 2 * 5 + 6, generator=torch.Generator().manual_seed(3))
    got = detect(pred, boxes=2, score_threshold=threshold, iou_threshold=0.5, max_detections=max_detections)
    corners, scores = decode(pred, 2)
    assert len(got) == images
    for (boxes, kept_scores, labels), image_boxes, image_scores in zip(got, corners, scores):
        box_index, label = (image_scores > threshold).nonzero(as_tuple=True)
        candidate_scores = image_scores[box_index, label]
        best = torch.sort(candidate_scores, descending=True, stable=True).indices[: 10 * max_detections]
        box_index, label, candidate_scores = box_index[best], label[best], candidate_scores[best]
        keep = batched_nms(image_boxes[box_index], candidate_scores, label, 0.5)[:max_detections]
        assert torch.equal(labels, label[keep]) and torch.equal(kept_scores, candidate_scores[keep])
        assert torch.equal(boxes, image_boxes[box_index[keep]])
        assert len(labels) <= max_detections
