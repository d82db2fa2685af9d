"""Configuration of the YOLOv1 runner. Defaults are the paper's settings (arXiv 1506.02640, Sec. 2).

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.detection import config as detection


@dataclass(frozen=True)
class Config(detection.Config):
    """One YOLOv1 training run: the network and loss of the paper, on the detection family's settings
    (``runners/detection/config.py``: data, schedule, augmentation, evaluation), whose defaults are this
    paper's.

    Attributes:
        arch: "yolo" (24 conv + 2 FC, Fig. 3) or "fast" (Fast YOLO, 9 conv, Sec. 2.1).
        grid: S, the side of the output grid (7).
        boxes: B, boxes predicted per cell (2).
        width: multiplier on every conv layer's filter count (1.0 = the paper's network).
        hidden: units of the first fully connected layer (4096, Fig. 3).
        batch_norm: add batch normalization after each conv. Not in the paper (it came with YOLOv2);
            used by the presets that train from scratch, since ImageNet pretraining is not available here.
        dropout: dropout rate after the first fully connected layer (Sec. 2.2).
        lambda_coord: weight of the box coordinate terms (Sec. 2.2).
        lambda_noobj: weight of the confidence term of boxes without an object (Sec. 2.2).
        backbone_weights: path to a state_dict for the conv layers (ImageNet pretraining, Sec. 2.2); "" = none.
    """

    arch: str = "yolo"
    grid: int = 7
    boxes: int = 2
    width: float = 1.0
    hidden: int = 4096
    batch_norm: bool = False
    dropout: float = 0.5
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    backbone_weights: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, choices={"arch": ("yolo", "fast")},
              at_least={"image_size": 64, "grid": 1, "boxes": 1, "hidden": 1, "lambda_coord": 0, "lambda_noobj": 0,
                        "dropout": 0},
              above={"width": 0},
              below={"dropout": 1})
        if self.image_size % 64:
            raise BadInput(f"image_size={self.image_size}: must be a multiple of 64 (the network's stride)")

PAPER = Config()

PRESETS: dict[str, Config] = {
    # Single GPU on the default (generated) data: Fast YOLO (Table 1's second network) at 448 px with the
    # paper's recipe, shortened, plus batch norm and gradient clipping because there is no ImageNet-
    # pretrained backbone to start from. Fast YOLO, not the 24-conv network: from scratch on the CPU-sized
    # version of this run Fast YOLO reached 60-76 mAP (two runs), the 24-conv network 29 at this rate and
    # 67 at lr 3e-3 (README, "Our measurements"); on an H100 this preset reached 94.3.
    # `--set arch=yolo --set lr=0.003` trains the 24-conv network; the `paper` preset is its recipe with
    # ImageNet weights.
    "default": replace(PAPER, arch="fast", batch_norm=True, clip_grad=10.0, epochs=100, eval_every=20,
                       generated_train=8000, compile=True),
    # CPU, well under a minute: every code path (augmentation, loss, eval, fps, checkpoint) on tiny data.
    "smoke": replace(
        PAPER, arch="fast", image_size=64, width=0.125, hidden=64, batch_norm=True, clip_grad=10.0, epochs=2,
        batch_size=16, eval_every=1, generated_train=48, generated_test=16, workers=0,
        log_every=1, speed_iters=2,
    ),
    # Two CPU cores, about half an hour: Fast YOLO at 1/8 of the filters on 256-pixel images of the
    # generated set (the fully connected head maps the 4x4 conv map to the 7x7 grid), long enough for
    # the mAP to mean something. Not the paper's network; for trying kb on a machine without a GPU.
    "cpu": replace(
        PAPER, arch="fast", image_size=256, width=0.125, hidden=2048, batch_norm=True, clip_grad=10.0, epochs=60,
        batch_size=32, eval_every=10, generated_train=2000, generated_test=200, workers=0, speed_iters=5,
    ),
    "paper": PAPER,
}
