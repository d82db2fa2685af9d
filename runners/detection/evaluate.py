"""Detection post-processing and the PASCAL VOC evaluation (mAP at IoU 0.5), for any detector.

- ``batched_nms``: greedy per-class non-maximum suppression in torch (torchvision is not a dependency).
- ``select``: decoded boxes and class scores -> per-image detections after thresholding and NMS.
- ``evaluate``: a detector's loss and VOC mAP on a test set; ``measure_fps``: its images per second.
- ``voc_map``: average precision per class as the VOC devkit computes it (VOCevaldet.m): detections
  sorted by score (ties keep their input order, as MATLAB's stable sort does), matched greedily to the
  unmatched ground truth of highest overlap, overlap >= 0.5 counts, "difficult" objects neither help
  nor hurt, a second detection of the same object is a false positive. Boxes are in the devkit's
  inclusive pixel coordinates (width = x2 - x1 + 1). Both the VOC2007 11-point AP (the paper's
  protocol for VOC 2007 test) and the all-point AP (VOC2010 onwards) are returned.
"""

import time
from typing import Callable

import numpy as np
import torch

from runners.detection.boxes import box_iou

# A detector's output (N, ...) -> per image (corner boxes as image fractions, scores, labels), best first.
Detect = Callable[[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression applied separately within each group (class).

    Greedy NMS keeps a box unless a kept box of higher score in its group overlaps it by more than the
    threshold. That rule is a fixed point: starting from "keep all" and re-applying it converges to the
    greedy answer (box k is final once boxes 0..k-1 are), usually in a few rounds, with no loop over boxes.

    Args:
        boxes: (K, 4) corner boxes.
        scores: (K,) scores.
        groups: (K,) group ids; boxes of different groups never suppress each other.
        iou_threshold: overlap above which the lower-scored box is removed.

    Returns:
        Indices of the kept boxes, highest score first (ties in input order).
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    boxes, groups = boxes[order], groups[order]
    same_group = groups[:, None] == groups[None, :]
    # suppresses[i, j]: box i ranks above box j and overlaps it too much.
    suppresses = ((box_iou(boxes[:, None], boxes[None]) > iou_threshold) & same_group).triu(diagonal=1)
    keep = torch.ones(len(order), dtype=torch.bool, device=boxes.device)
    while True:
        updated = ~(suppresses & keep[:, None]).any(0)
        if torch.equal(updated, keep):
            return order[keep]
        keep = updated


def select(corners: torch.Tensor, scores: torch.Tensor, *, score_threshold: float, iou_threshold: float,
           max_detections: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per-image detections: (corner boxes as image fractions, scores, labels), best first.

    Args:
        corners: (N, K, 4) candidate boxes of each image.
        scores: (N, K, C) class-specific score of each candidate.
        score_threshold: candidates scoring at most this are dropped before NMS.
        iou_threshold: NMS overlap within a class.
        max_detections: detections kept per image.

    Only the 10 * ``max_detections`` best (box, class) candidates above the threshold enter NMS, which
    bounds its cost (K*C candidates, 7840 for YOLO with 80 classes, when an untrained model scores
    everything).
    """
    results = []
    for image_boxes, image_scores in zip(corners, scores):
        box_index, label = (image_scores > score_threshold).nonzero(as_tuple=True)
        candidate_scores = image_scores[box_index, label]
        if len(candidate_scores) > 10 * max_detections:
            best = candidate_scores.topk(10 * max_detections).indices
            box_index, label, candidate_scores = box_index[best], label[best], candidate_scores[best]
        keep = batched_nms(image_boxes[box_index], candidate_scores, label, iou_threshold)[:max_detections]
        results.append((image_boxes[box_index[keep]], candidate_scores[keep], label[keep]))
    return results


def to_devkit_pixels(corners: np.ndarray, width: int, height: int) -> np.ndarray:
    """Image-fraction corner boxes -> the devkit's 1-based inclusive pixel boxes (x1, y1, x2, y2).

    A box covering pixels x1..x2 (1-based, inclusive) spans [x1 - 1, x2] in continuous coordinates.
    """
    scale = np.array([width, height, width, height], dtype=np.float64)
    return corners.astype(np.float64) * scale + np.array([1.0, 1.0, 0.0, 0.0])


def _devkit_iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Overlap of one box with each of ``others`` as VOCevaldet.m computes it; -inf where they do not meet."""
    iw = np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]) + 1
    ih = np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]) + 1
    union = ((box[2] - box[0] + 1) * (box[3] - box[1] + 1)
             + (others[:, 2] - others[:, 0] + 1) * (others[:, 3] - others[:, 1] + 1) - iw * ih)
    meets = (iw > 0) & (ih > 0)
    return np.where(meets, iw * ih / np.where(meets, union, 1.0), -np.inf)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> tuple[float, float]:
    """(11-point AP of VOC2007, all-point AP of VOC2010+) from a precision/recall curve."""
    # 11-point: mean over t in {0, 0.1, ..., 1} of the best precision at recall >= t. np.arange gives the
    # same thresholds (0.30000000000000004 ...) as the devkit's 0:0.1:1 and the common Python ports.
    eleven = 0.0
    for t in np.arange(0.0, 1.1, 0.1):
        above = precision[recall >= t]
        eleven += (above.max() if above.size else 0.0) / 11
    # All-point: area under the precision envelope (precision made monotonically decreasing).
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(eleven), float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def voc_map(detections, ground_truths, num_classes: int, iou_threshold: float = 0.5) -> dict:
    """VOC average precision per class and its mean.

    Args:
        detections: per image, (boxes (K, 4) devkit pixels, scores (K,), labels (K,)) numpy arrays.
        ground_truths: per image, (boxes (G, 4) devkit pixels, labels (G,), difficult (G,) bool).
        num_classes: number of classes.
        iou_threshold: minimum overlap of a true positive (0.5).

    Returns:
        ``map`` and ``map_allpoint`` (percent, mean over the classes that have at least one
        non-difficult object) and ``ap`` / ``ap_allpoint``: class index -> percent for those classes.
    """
    ap11, apall = {}, {}
    for c in range(num_classes):
        gt = [(boxes[labels == c], difficult[labels == c]) for boxes, labels, difficult in ground_truths]
        positives = sum(int((~difficult).sum()) for _, difficult in gt)
        if positives == 0:
            continue
        image_ids, scores, boxes = [], [], []
        for i, (det_boxes, det_scores, det_labels) in enumerate(detections):
            mine = det_labels == c
            image_ids.append(np.full(int(mine.sum()), i))
            scores.append(det_scores[mine])
            boxes.append(det_boxes[mine])
        image_ids, scores, boxes = np.concatenate(image_ids), np.concatenate(scores), np.concatenate(boxes)
        order = np.argsort(-scores, kind="stable")
        matched = [np.zeros(len(g_boxes), dtype=bool) for g_boxes, _ in gt]
        tp, fp = np.zeros(len(order)), np.zeros(len(order))
        for rank, d in enumerate(order):
            g_boxes, g_difficult = gt[image_ids[d]]
            overlap = _devkit_iou(boxes[d], g_boxes) if len(g_boxes) else np.array([-np.inf])
            best = int(np.argmax(overlap))
            if overlap[best] < iou_threshold:
                fp[rank] = 1
            elif g_difficult[best]:
                continue
            elif matched[image_ids[d]][best]:
                fp[rank] = 1
            else:
                tp[rank] = 1
                matched[image_ids[d]][best] = True
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        recall = tp / positives
        precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
        ap11[c], apall[c] = (100 * v for v in average_precision(recall, precision))
    return {
        "map": float(np.mean(list(ap11.values()))) if ap11 else 0.0,
        "map_allpoint": float(np.mean(list(apall.values()))) if apall else 0.0,
        "ap": ap11,
        "ap_allpoint": apall,
    }


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda")


@torch.no_grad()
def evaluate(model, batches, dataset, device: torch.device, *, amp: bool, channels_last: bool,
             loss: Callable, detect: Detect) -> dict:
    """Loss and VOC mAP of ``model`` on ``dataset``.

    Args:
        model: the (possibly compiled) network.
        batches: iterable of (uint8 images, gt boxes, gt labels) over ``dataset`` in order.
        dataset: the evaluated ``DetectionSet`` (its ``sizes`` and ``targets`` give the ground truth).
        device: where the model lives.
        amp: bfloat16 autocast (CUDA only).
        channels_last: NHWC input.
        loss: the detector's training loss, ``loss(pred, gt_boxes, gt_labels) -> (loss, parts)``.
        detect: the detector's decoding, thresholding and NMS.

    Returns:
        ``voc_map``'s dict plus ``loss`` (mean per image, difficult objects excluded as in training).
    """
    was_training = model.training
    model.eval()
    detections, loss_sum, count = [], 0.0, 0
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    for images, gt_boxes, gt_labels in batches:
        images = (images.to(device).float() / 255).contiguous(memory_format=memory_format)
        with _autocast(device, amp):
            pred = model(images)
        pred = pred.float()
        batch_loss, _ = loss(pred, gt_boxes.to(device), gt_labels.to(device))
        loss_sum += batch_loss.item() * len(images)
        count += len(images)
        detections += detect(pred)
    model.train(was_training)
    dets, gts = [], []
    for (boxes, scores, labels), (width, height), target in zip(detections, dataset.sizes, dataset.targets):
        dets.append((to_devkit_pixels(boxes.cpu().numpy(), width, height), scores.cpu().numpy(), labels.cpu().numpy()))
        gts.append((to_devkit_pixels(target.boxes.numpy(), width, height), target.labels.numpy(),
                    target.difficult.numpy()))
    result = voc_map(dets, gts, dataset.num_classes)
    result["loss"] = loss_sum / max(count, 1)
    return result


@torch.no_grad()
def measure_fps(model, images: torch.Tensor, device: torch.device, *, amp: bool, channels_last: bool, iters: int,
                detect: Detect) -> float:
    """Images per second of the whole detection pipeline (network, decoding, NMS) on ``images``.

    The paper's frame rates are for one image at a time (Sec. 1, Table 1); call with a batch of 1 for
    that, or a larger batch for throughput.
    """
    was_training = model.training
    model.eval()
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    images = (images.to(device).float() / 255).contiguous(memory_format=memory_format)

    def once():
        with _autocast(device, amp):
            pred = model(images)
        detect(pred)

    for _ in range(max(2, iters // 5)):  # warm-up (cuDNN autotuning, compilation)
        once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        once()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    model.train(was_training)
    return iters * len(images) / (time.perf_counter() - start)
