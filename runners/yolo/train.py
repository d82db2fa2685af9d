"""YOLOv1 on the detection family's training loop (``runners/detection/train.py``): the network, the loss
of Sec. 2.2 and the detection of Sec. 2.3, and the ImageNet-pretrained conv layers the paper starts from.
"""

import functools
import pickle
import zipfile
from pathlib import Path

import torch

from kb.errors import BadInput
from runners.detection.train import Detector, train
from runners.yolo.model import YOLO, detect, yolo_loss


def load_backbone(model: YOLO, path: str) -> bool:
    """Load conv weights (e.g. ImageNet-pretrained, Sec. 2.2) into ``model.features``; True if loaded.

    The file is a state_dict whose keys are those of ``model.features`` (a prefix of its layers is
    fine: the paper pretrains the first 20 conv layers).
    """
    if not path:
        return False
    file = Path(path).expanduser()
    if not file.is_file():
        raise BadInput(f"backbone_weights={path}: no such file (expected a state_dict saved with torch.save)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise BadInput(f"backbone_weights={path}: cannot be loaded as a state_dict ({type(exc).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BadInput(f"backbone_weights={path}: expected a dict of tensors (a state_dict)")
    own = model.features.state_dict()
    unknown = sorted(set(state) - set(own))
    if unknown or not state:
        raise BadInput(f"backbone_weights={path}: keys {unknown[:3] or '(none)'} are not conv-layer keys "
                       f"of this model (expected names like {next(iter(own))!r})")
    for key, value in state.items():
        if value.shape != own[key].shape:
            raise BadInput(f"backbone_weights={path}: {key} has shape {tuple(value.shape)}, "
                           f"this model needs {tuple(own[key].shape)} (check arch and width)")
    model.features.load_state_dict(state, strict=False)
    return True


def as_detector(model: YOLO, config) -> Detector:
    """The family loop's view of a YOLOv1 network: the loss of Sec. 2.2 and the detection of Sec. 2.3,
    bound to the config's settings."""
    loss = functools.partial(yolo_loss, boxes=config.boxes, lambda_coord=config.lambda_coord,
                             lambda_noobj=config.lambda_noobj)
    detections = functools.partial(detect, boxes=config.boxes, score_threshold=config.score_threshold,
                                   iou_threshold=config.nms_iou, max_detections=config.max_detections)
    return Detector(model, loss, detections)


def build(config, classes: tuple[str, ...], run) -> Detector:
    """YOLOv1 for ``classes``, with its backbone loaded when ``backbone_weights`` names one."""
    model = YOLO(config, len(classes))
    pretrained = load_backbone(model, config.backbone_weights)
    if not pretrained and not config.batch_norm and not config.clip_grad:
        run.note("no backbone_weights: the paper's recipe starts from ImageNet-pretrained conv layers; from scratch, "
                 "without batch norm or gradient clipping, it usually diverges in the first hundred steps "
                 "(--set backbone_weights=PATH, or --set batch_norm=true --set clip_grad=10)")
    run.record(backbone_pretrained=pretrained)
    return as_detector(model, config)


def main(config, run) -> dict[str, float]:
    """Train YOLOv1 per ``config`` and return the final VOC mAP, speeds and test loss."""
    return train(config, run, build)
