"""YOLOv1 network, loss and output decoding.

Paper: Redmon, Divvala, Girshick, Farhadi, "You Only Look Once: Unified, Real-Time Object Detection",
arXiv 1506.02640 (CVPR 2016).

- Network: Sec. 2.1 and Fig. 3 (24 conv layers with 1x1 reductions, then 2 fully connected layers);
  Fast YOLO: 9 conv layers with fewer filters (Sec. 2.1).
- Output: an S x S x (B*5 + C) tensor; each cell has B boxes (x, y, sqrt w, sqrt h, confidence) and
  C class probabilities (Sec. 2, Fig. 2). x, y are offsets inside the cell, w, h fractions of the image.
- Loss: the multi-part sum-squared error of Sec. 2.2.
- Detection: class-specific scores (Eq. 1), thresholded, then non-maximum suppression (Sec. 2.3).
"""

import torch
from torch import nn

from runners.detection.boxes import box_iou, to_corners
from runners.detection.data import VOC_CLASSES
from runners.detection.evaluate import select

# Fig. 3, row by row: (kernel, filters, stride) for a conv layer, "M" for a 2x2 max-pool of stride 2.
YOLO_LAYERS = (
    (7, 64, 2), "M",
    (3, 192, 1), "M",
    (1, 128, 1), (3, 256, 1), (1, 256, 1), (3, 512, 1), "M",
    *((1, 256, 1), (3, 512, 1)) * 4, (1, 512, 1), (3, 1024, 1), "M",
    *((1, 512, 1), (3, 1024, 1)) * 2, (3, 1024, 1), (3, 1024, 2),
    (3, 1024, 1), (3, 1024, 1),
)

# Fast YOLO: the paper gives only "9 instead of 24" conv layers "and fewer filters"; the filter counts
# are those of the authors' Darknet configuration of 2015 (yolo-tiny.cfg).
FAST_LAYERS = (
    (3, 16, 1), "M", (3, 32, 1), "M", (3, 64, 1), "M", (3, 128, 1), "M",
    (3, 256, 1), "M", (3, 512, 1), "M", (3, 1024, 1), (3, 1024, 1), (3, 1024, 1),
)

ARCHS = {"yolo": YOLO_LAYERS, "fast": FAST_LAYERS}


class YOLO(nn.Module):
    """The detection network: conv features, then two fully connected layers (Fig. 3).

    Both architectures divide the input by 64, so the last conv map is (image_size / 64)^2 cells; the
    fully connected head maps it to the S x S grid whatever the input size.
    """

    def __init__(self, config, num_classes: int) -> None:
        super().__init__()
        if config.arch not in ARCHS:
            raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {config.arch!r}")
        self.grid, self.boxes, self.num_classes = config.grid, config.boxes, num_classes
        layers, channels = [], 3
        for spec in ARCHS[config.arch]:
            if spec == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            kernel, filters, stride = spec
            filters = max(1, round(filters * config.width))
            layers.append(nn.Conv2d(channels, filters, kernel, stride, kernel // 2, bias=not config.batch_norm))
            if config.batch_norm:
                layers.append(nn.BatchNorm2d(filters))
            # Leaky rectified linear activation with slope 0.1 for x < 0 (Sec. 2.2, Eq. 2).
            layers.append(nn.LeakyReLU(0.1))
            channels = filters
        self.features = nn.Sequential(*layers)
        side = config.image_size // 64
        outputs = config.grid * config.grid * (config.boxes * 5 + num_classes)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, config.hidden),
            nn.LeakyReLU(0.1),
            # Dropout after the first connected layer (Sec. 2.2).
            nn.Dropout(config.dropout),
            # The last layer is linear (Sec. 2.2).
            nn.Linear(config.hidden, outputs),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, a=0.1, nonlinearity="leaky_relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # Start the linear output near zero: no confidence, no box, no class.
        nn.init.normal_(self.head[-1].weight, std=1e-3)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) images in [0, 1] -> (N, S, S, B*5 + C) predictions."""
        out = self.head(self.features(images))
        return out.view(-1, self.grid, self.grid, self.boxes * 5 + self.num_classes)


def split_prediction(pred: torch.Tensor, boxes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the output tensor into image-space boxes, raw box parameters and class scores.

    Args:
        pred: (N, S, S, B*5 + C) network output.
        boxes: B.

    Returns:
        cxcywh: (N, S, S, B, 4) boxes as fractions of the image: centre = (cell + offset) / S,
            size = predicted square root squared (Sec. 2.2).
        raw: (N, S, S, B, 5) the predicted (x, y, sqrt w, sqrt h, confidence).
        classes: (N, S, S, C) conditional class probabilities Pr(Class_i | Object).
    """
    n, s = pred.shape[0], pred.shape[1]
    raw = pred[..., : boxes * 5].reshape(n, s, s, boxes, 5)
    cells = torch.arange(s, device=pred.device, dtype=pred.dtype)
    cx = (raw[..., 0] + cells.view(1, 1, s, 1)) / s  # dim 2 is the column
    cy = (raw[..., 1] + cells.view(1, s, 1, 1)) / s  # dim 1 is the row
    cxcywh = torch.stack([cx, cy, raw[..., 2] ** 2, raw[..., 3] ** 2], dim=-1)
    return cxcywh, raw, pred[..., boxes * 5 :]


def assign_targets(gt_boxes: torch.Tensor, gt_labels: torch.Tensor, grid: int):
    """Put each object in the cell that holds its centre (Sec. 2).

    A cell predicts one set of class probabilities, so it can hold one object: when several centres
    fall in the same cell, the first in annotation order keeps it (as Darknet does).

    Args:
        gt_boxes: (N, M, 4) corner boxes in [0, 1].
        gt_labels: (N, M) class indices, -1 for padding.
        grid: S.

    Returns:
        has_object: (N, S, S) bool.
        target: (N, S, S, 4) the cell's object as (cx, cy, w, h) fractions of the image (zeros elsewhere).
        label: (N, S, S) its class (0 elsewhere).
    """
    n, m = gt_labels.shape
    centre = (gt_boxes[..., :2] + gt_boxes[..., 2:]) / 2
    size = gt_boxes[..., 2:] - gt_boxes[..., :2]
    col = (centre[..., 0] * grid).floor().clamp(0, grid - 1).long()
    row = (centre[..., 1] * grid).floor().clamp(0, grid - 1).long()
    flat_cell = torch.arange(n, device=gt_labels.device).view(n, 1) * grid * grid + row * grid + col
    # Lowest object index per cell; m marks an empty cell, and padding (label -1) bids m, so never wins.
    # No boolean indexing: shapes stay fixed, so torch.compile traces the whole loss as one graph.
    order = torch.where(gt_labels >= 0, torch.arange(m, device=gt_labels.device).expand(n, m), m)
    winner = torch.full((n * grid * grid,), m, dtype=torch.long, device=gt_labels.device)
    winner = winner.scatter_reduce(0, flat_cell.reshape(-1), order.reshape(-1), reduce="amin")
    has_object = (winner < m).view(n, grid, grid)
    index = winner.clamp(max=m - 1).view(n, grid * grid)
    cxcywh = torch.cat([centre, size], dim=-1).gather(1, index[..., None].expand(-1, -1, 4))
    target = cxcywh.view(n, grid, grid, 4) * has_object[..., None]
    label = gt_labels.gather(1, index).view(n, grid, grid).clamp(min=0) * has_object
    return has_object, target, label


def yolo_loss(pred: torch.Tensor, gt_boxes: torch.Tensor, gt_labels: torch.Tensor, *, boxes: int,
              lambda_coord: float, lambda_noobj: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The sum-squared multi-part loss of Sec. 2.2 (Eq. 3), summed over cells and averaged over images.

    In a cell holding an object, the predictor "responsible" for it is the one whose current box has
    the highest IoU with the object; when none overlaps it, the one with the smallest squared error of
    its box (a tie rule the paper leaves open, taken from Darknet). The responsible predictor gets the
    coordinate terms (x, y and square roots of w, h, weighted by lambda_coord) and a confidence target
    equal to that IoU; every other predictor gets a confidence target of 0 weighted by lambda_noobj.
    Class probabilities are penalised only in cells holding an object.

    Args:
        pred: (N, S, S, B*5 + C) float32 network output.
        gt_boxes: (N, M, 4) corner boxes in [0, 1].
        gt_labels: (N, M) class indices, -1 for padding.
        boxes: B.
        lambda_coord: weight of the coordinate terms (5).
        lambda_noobj: weight of the no-object confidence terms (0.5).

    Returns:
        The scalar loss and its four parts (coord, obj, noobj, class), each already weighted.
    """
    n, s = pred.shape[0], pred.shape[1]
    num_classes = pred.shape[-1] - boxes * 5
    has_object, target, label = assign_targets(gt_boxes, gt_labels, s)
    cxcywh, raw, classes = split_prediction(pred, boxes)

    with torch.no_grad():
        iou = box_iou(to_corners(cxcywh), to_corners(target)[..., None, :])  # (N, S, S, B)
        sq_error = ((cxcywh - target[..., None, :]) ** 2).sum(-1)
        overlaps = (iou > 0).any(-1, keepdim=True)
        best = torch.where(overlaps, iou, -sq_error).argmax(-1)  # first of equals
        responsible = nn.functional.one_hot(best, boxes).bool() & has_object[..., None]

    cells = torch.arange(s, device=pred.device, dtype=pred.dtype)
    offset_x = target[..., 0] * s - cells.view(1, 1, s)
    offset_y = target[..., 1] * s - cells.view(1, s, 1)
    coord_target = torch.stack([offset_x, offset_y, target[..., 2].sqrt(), target[..., 3].sqrt()], dim=-1)
    coord_error = ((raw[..., :4] - coord_target[..., None, :]) ** 2).sum(-1)
    confidence = raw[..., 4]
    parts = {
        "coord": lambda_coord * (coord_error * responsible).sum(),
        "obj": ((confidence - iou) ** 2 * responsible).sum(),
        "noobj": lambda_noobj * (confidence**2 * ~responsible).sum(),
        "class": (((classes - nn.functional.one_hot(label, num_classes)) ** 2).sum(-1) * has_object).sum(),
    }
    parts = {name: value / n for name, value in parts.items()}
    return sum(parts.values()), parts


def decode(pred: torch.Tensor, boxes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn predictions into boxes and class-specific confidence scores (Sec. 2, Eq. 1).

    The score of box j for class i is Pr(Class_i | Object) * confidence_j. The last layer is linear,
    so both factors can come out negative; they are clamped at 0 first, so that two negatives do not
    make a positive score.

    Args:
        pred: (N, S, S, B*5 + C) network output.
        boxes: B.

    Returns:
        corners: (N, S*S*B, 4) boxes clipped to the image, as fractions of it.
        scores: (N, S*S*B, C) class-specific confidence scores.
    """
    n = pred.shape[0]
    cxcywh, raw, classes = split_prediction(pred, boxes)
    corners = to_corners(cxcywh).clamp(0, 1).reshape(n, -1, 4)
    scores = raw[..., 4, None].clamp(min=0) * classes[..., None, :].clamp(min=0)
    return corners, scores.reshape(n, corners.shape[1], -1)


def detect(pred: torch.Tensor, *, boxes: int, score_threshold: float, iou_threshold: float,
           max_detections: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per-image detections of the network output: (corner boxes as image fractions, scores, labels)."""
    return select(*decode(pred.float(), boxes), score_threshold=score_threshold, iou_threshold=iou_threshold,
                  max_detections=max_detections)


def architecture(config) -> tuple[nn.Module, torch.Tensor]:
    """The preset's network for the 20 VOC classes of Table 1 (or ``num_classes`` when set), in eval mode,
    and one image of the preset's input size, for counting parameters and operations without data."""
    model = YOLO(config, config.num_classes or len(VOC_CLASSES)).eval()
    return model, torch.zeros(1, 3, config.image_size, config.image_size)
