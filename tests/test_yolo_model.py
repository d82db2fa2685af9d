"""YOLOv1 network, loss and decoding against hand-computed values (arXiv 1506.02640, Fig. 3, Sec. 2.2)."""

from dataclasses import replace

import pytest
import torch

from runners.yolo.config import PAPER
from runners.yolo.model import YOLO, assign_targets, decode, yolo_loss

# Parameter counts worked out by hand from Fig. 3 (k*k*c_in*c_out + c_out per conv layer):
#   conv 7x7x64 s2: 9472; 3x3x192: 110784; 1x1x128: 24704; 3x3x256: 295168; 1x1x256: 65792;
#   3x3x512: 1180160; 4 x {1x1x256 + 3x3x512}: 5245952; 1x1x512: 262656; 3x3x1024: 4719616;
#   2 x {1x1x512 + 3x3x1024}: 10488832; 4 x 3x3x1024: 37752832                 -> 60,155,968
#   Fast YOLO, 3x3 convs 3-16-32-64-128-256-512-1024-1024-1024                  -> 25,168,800
#   FC 7*7*1024 -> 4096: 205,524,992; FC 4096 -> 7*7*30: 6,022,590
FC_PARAMS = 205_524_992 + 6_022_590


@pytest.mark.parametrize("arch, conv_params, conv_layers", [("yolo", 60_155_968, 24), ("fast", 25_168_800, 9)])
def test_paper_network_shapes_and_parameter_counts(arch, conv_params, conv_layers):
    model = YOLO(replace(PAPER, arch=arch), num_classes=20)
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == conv_layers
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == 2
    assert sum(p.numel() for p in model.features.parameters()) == conv_params
    assert sum(p.numel() for p in model.parameters()) == conv_params + FC_PARAMS
    activations = [m for m in model.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert activations and all(m.negative_slope == 0.1 for m in activations)
    assert [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)] == [0.5]
    # The conv stack divides 448 by 64 down to 7x7x1024 (Fig. 3).
    with torch.no_grad():
        features = model.features(torch.zeros(1, 3, 448, 448))
    assert features.shape == (1, 1024, 7, 7)


@pytest.mark.parametrize("arch", ["yolo", "fast"])
def test_output_is_s_by_s_by_b5_plus_c_for_small_configs(arch):
    config = replace(PAPER, arch=arch, image_size=128, width=0.0625, hidden=32, grid=5, boxes=3, batch_norm=True)
    model = YOLO(config, num_classes=4)
    assert model(torch.rand(2, 3, 128, 128)).shape == (2, 5, 5, 3 * 5 + 4)


def _pred(grid=2, boxes=2, classes=2):
    return torch.zeros(1, grid, grid, boxes * 5 + classes)


def _loss(pred, boxes, labels):
    return yolo_loss(pred, torch.tensor(boxes, dtype=torch.float32)[None], torch.tensor(labels)[None],
                     boxes=2, lambda_coord=5.0, lambda_noobj=0.5)


def test_loss_hand_case_perfect_box_wins():
    # One object: centre (0.25, 0.25), w = h = 0.25, class 1, in cell (0, 0) at offsets (0.5, 0.5).
    pred = _pred()
    pred[0, 0, 0, 0:5] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.8])  # exact box, IoU 1 -> responsible
    pred[0, 0, 0, 5:10] = torch.tensor([0.5, 0.5, 0.3, 0.3, 0.4])  # 0.09 x 0.09 box, IoU 0.1296
    pred[0, 0, 0, 10:12] = torch.tensor([0.3, 0.6])
    pred[0, 1, 1, 4] = 0.6  # an empty cell's confidence
    pred[0, 1, 1, 10:12] = torch.tensor([0.9, 0.9])  # class scores of an empty cell: not penalised
    loss, parts = _loss(pred, [[0.125, 0.125, 0.375, 0.375]], [1])
    # coord 0; obj (0.8 - 1)^2 = 0.04; noobj 0.5 * (0.4^2 + 0.6^2) = 0.26; class 0.3^2 + 0.4^2 = 0.25
    assert parts["coord"].item() == pytest.approx(0.0, abs=1e-7)
    assert parts["obj"].item() == pytest.approx(0.04, abs=1e-6)
    assert parts["noobj"].item() == pytest.approx(0.26, abs=1e-6)
    assert parts["class"].item() == pytest.approx(0.25, abs=1e-6)
    assert loss.item() == pytest.approx(0.55, abs=1e-6)


def test_loss_responsible_predictor_is_the_highest_iou_one():
    # Same object. Predictor 0: centre x 0.1 -> IoU 0.25. Predictor 1: centre x 0.3 -> IoU 2/3.
    pred = _pred()
    pred[0, 0, 0, 0:5] = torch.tensor([0.2, 0.5, 0.5, 0.5, 0.3])
    pred[0, 0, 0, 5:10] = torch.tensor([0.6, 0.5, 0.5, 0.5, 0.9])
    pred[0, 0, 0, 10:12] = torch.tensor([0.0, 1.0])
    loss, parts = _loss(pred, [[0.125, 0.125, 0.375, 0.375]], [1])
    # coord 5 * 0.1^2 (predictor 1 only); obj (0.9 - 2/3)^2; predictor 0 is "noobj": 0.5 * 0.3^2
    assert parts["coord"].item() == pytest.approx(0.05, abs=1e-6)
    assert parts["obj"].item() == pytest.approx((0.9 - 2 / 3) ** 2, abs=1e-6)
    assert parts["noobj"].item() == pytest.approx(0.045, abs=1e-6)
    assert loss.item() == pytest.approx(0.05 + (0.9 - 2 / 3) ** 2 + 0.045, abs=1e-6)


def test_loss_uses_square_roots_of_width_and_height():
    # Object centred at (0.5, 0.5), 0.64 x 0.64 -> cell (1, 1), offsets (0, 0), sqrt sizes 0.8.
    pred = _pred()
    pred[0, 1, 1, 0:5] = torch.tensor([0.1, 0.0, 0.7, 0.8, 1.0])  # box 0.49 x 0.64 at x 0.55
    pred[0, 1, 1, 10:12] = torch.tensor([1.0, 0.0])
    loss, parts = _loss(pred, [[0.18, 0.18, 0.82, 0.82]], [0])
    # coord 5 * (0.1^2 + (0.8 - 0.7)^2) = 0.1, not 5 * (0.1^2 + (0.64 - 0.49)^2) = 0.1625.
    assert parts["coord"].item() == pytest.approx(0.1, abs=1e-6)
    # IoU: [0.305, 0.795] x [0.18, 0.82] against [0.18, 0.82]^2 = 0.3136 / 0.4096.
    assert parts["obj"].item() == pytest.approx((1 - 0.3136 / 0.4096) ** 2, abs=1e-6)
    assert loss.item() == pytest.approx(0.1 + (1 - 0.765625) ** 2, abs=1e-6)


def test_loss_when_no_predictor_overlaps_the_closest_box_is_responsible():
    pred = _pred()
    pred[0, 0, 0, 0:5] = torch.tensor([0.9, 0.9, 0.1, 0.1, 0.0])  # far corner, tiny
    pred[0, 0, 0, 5:10] = torch.tensor([0.1, 0.1, 0.1, 0.1, 0.0])  # near the object's corner, tiny
    pred[0, 0, 0, 10:12] = torch.tensor([0.0, 1.0])
    _, parts = _loss(pred, [[0.125, 0.125, 0.375, 0.375]], [1])
    # Predictor 1: 5 * ((0.1 - 0.5)^2 * 2 + (0.1 - 0.5)^2 * 2) = 3.2 (predictor 0 would give 2.4).
    assert parts["coord"].item() == pytest.approx(3.2, abs=1e-6)


def test_noobj_weight_and_mean_over_images():
    pred = torch.zeros(2, 2, 2, 12)
    pred[..., 4] = pred[..., 9] = 1.0  # every confidence 1, no objects anywhere
    pred[..., 10:] = 5.0  # class scores of empty cells: no loss
    loss, parts = yolo_loss(pred, torch.zeros(2, 1, 4), torch.full((2, 1), -1), boxes=2, lambda_coord=5.0,
                            lambda_noobj=0.5)
    assert loss.item() == pytest.approx(0.5 * 8)  # 0.5 * S*S*B per image, averaged over 2 images
    assert parts["class"].item() == 0


def test_two_centres_in_one_cell_first_object_keeps_it():
    boxes = torch.tensor([[[0.0, 0.0, 0.2, 0.2], [0.05, 0.05, 0.4, 0.3], [0.6, 0.6, 0.9, 0.9]]])
    has_object, target, label = assign_targets(boxes, torch.tensor([[2, 1, 0]]), grid=2)
    assert has_object.tolist() == [[[True, False], [False, True]]]
    assert target[0, 0, 0].tolist() == pytest.approx([0.1, 0.1, 0.2, 0.2])
    assert label[0, 0, 0].item() == 2 and label[0, 1, 1].item() == 0


def test_decode_boxes_and_class_specific_scores():
    pred = torch.zeros(1, 2, 2, 7)  # S = 2, B = 1, C = 2
    pred[0, 1, 0] = torch.tensor([0.5, 0.5, 0.5, 0.5, 0.8, 0.25, 0.75])  # row 1, column 0
    pred[0, 0, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5, -0.5, -0.5, 0.2])  # negative confidence
    pred[0, 0, 0, :4] = torch.tensor([0.0, 0.0, 0.75, 0.75])  # centre (0, 0), 0.5625 wide: crosses the edge
    corners, scores = decode(pred, boxes=1)
    assert corners.shape == (1, 4, 4) and scores.shape == (1, 4, 2)
    # Cells in row-major order: (0, 0), (0, 1), (1, 0), (1, 1).
    assert corners[0, 2].tolist() == pytest.approx([0.125, 0.625, 0.375, 0.875])
    assert scores[0, 2].tolist() == pytest.approx([0.2, 0.6])
    assert scores[0, 1].tolist() == [0.0, 0.0]  # -0.5 * -0.5 must not become a positive score
    assert corners[0, 0].tolist() == pytest.approx([0.0, 0.0, 0.28125, 0.28125])  # clipped to the image
