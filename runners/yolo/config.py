"""Configuration of the YOLOv1 runner. Defaults are the paper's settings (arXiv 1506.02640, Sec. 2).

No torch here: kb imports this module to list presets.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check


@dataclass(frozen=True)
class Config:
    """One YOLOv1 training run.

    Attributes:
        arch: "yolo" (24 conv + 2 FC, Fig. 3) or "fast" (Fast YOLO, 9 conv, Sec. 2.1).
        image_size: network input side in pixels (448 in the paper); a multiple of 64.
        grid: S, the side of the output grid (7).
        boxes: B, boxes predicted per cell (2).
        width: multiplier on every conv layer's filter count (1.0 = the paper's network).
        hidden: units of the first fully connected layer (4096, Fig. 3).
        batch_norm: add batch normalization after each conv. Not in the paper (it came with YOLOv2);
            used by the presets that train from scratch, since ImageNet pretraining is not available here.
        dropout: dropout rate after the first fully connected layer (Sec. 2.2).
        lambda_coord: weight of the box coordinate terms (Sec. 2.2).
        lambda_noobj: weight of the confidence term of boxes without an object (Sec. 2.2).
        epochs: training epochs (about 135 in Sec. 2.2).
        batch_size: images per SGD step (64).
        lr: learning rate after warm-up (1e-2).
        warmup_lr: learning rate at step 0; raised linearly to ``lr`` over the warm-up (1e-3).
        warmup_fraction: share of training spent warming up. The paper says "for the first epochs"; we
            take 5 of 135.
        decay_fractions: points of training (as shares of all steps) where the rate drops tenfold: after
            75 and 105 of 135 epochs (1e-2 for 75, 1e-3 for 30, 1e-4 for 30). Fractions, so the schedule
            scales with ``epochs``.
        momentum: SGD momentum (0.9).
        weight_decay: L2 weight decay on conv and FC weights (5e-4).
        clip_grad: clip the gradient norm to this value; 0 = off (the paper). The presets that train from
            scratch use it: without a pretrained backbone the fully connected head makes lr 1e-2 diverge.
        jitter: maximum random scaling and translation, as a fraction of the image size (20%).
        exposure: maximum factor on HSV value (1.5), drawn in [1/1.5, 1.5].
        saturation: maximum factor on HSV saturation (1.5), drawn in [1/1.5, 1.5].
        score_threshold: class-specific confidence below which detections are dropped before NMS.
        nms_iou: IoU above which non-maximum suppression removes a lower-scored box of the same class.
        max_detections: detections kept per image after NMS.
        eval_every: evaluate mAP every this many epochs (and always after the last one).
        num_classes: YOLO-format folders without a names file (classes.txt, obj.names, data.yaml): the
            number of classes (0 = the largest label + 1). Ignored for VOC and the generated set.
        holdout_every: YOLO-format folders without a val or test split, and VOC-format folders without
            ImageSets lists: every n-th image (sorted by path) is held out for evaluation.
        generated_train: images in the generated training set (used when no ``--data`` is given).
        generated_test: images in the generated test set.
        generated_seed: seed of the generated set (fixed, so runs with different seeds see the same data).
        backbone_weights: path to a state_dict for the conv layers (ImageNet pretraining, Sec. 2.2); "" = none.
        amp: bfloat16 autocast on CUDA.
        channels_last: NHWC memory format on CUDA.
        compile: torch.compile the model.
        workers: DataLoader processes for datasets decoded from files on the fly.
        data_on_gpu: keep a pre-decoded dataset in GPU memory when it takes at most half the free memory
            (batches are then gathered on the GPU: no per-step host copy, pinning or transfer).
        cache_gb: pre-decode the whole dataset into memory when it fits in this many GB.
        log_every: log the training loss every this many steps.
        checkpoint_minutes: the longest time between checkpoints. One is saved at the end of an epoch
            once this many minutes, or 50 times the last save's duration, have passed since the last
            (at most ~2% of the time goes to saving: Fast YOLO's 1.9 GB took 4 s of each 6.5 s epoch on
            an H100 when saved every epoch; a small model still saves every epoch), and after the last
            epoch. Ctrl-C and SIGTERM always save one at the step they stop.
        speed_iters: timed iterations for the inference speed measurement.
    """

    arch: str = "yolo"
    image_size: int = 448
    grid: int = 7
    boxes: int = 2
    width: float = 1.0
    hidden: int = 4096
    batch_norm: bool = False
    dropout: float = 0.5
    lambda_coord: float = 5.0
    lambda_noobj: float = 0.5
    epochs: int = 135
    batch_size: int = 64
    lr: float = 1e-2
    warmup_lr: float = 1e-3
    warmup_fraction: float = 5 / 135
    decay_fractions: tuple[float, ...] = (75 / 135, 105 / 135)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    clip_grad: float = 0.0
    jitter: float = 0.2
    exposure: float = 1.5
    saturation: float = 1.5
    score_threshold: float = 0.001
    nms_iou: float = 0.5
    max_detections: int = 100
    eval_every: int = 15
    num_classes: int = 0
    holdout_every: int = 5
    generated_train: int = 4000
    generated_test: int = 500
    generated_seed: int = 2016
    backbone_weights: str = ""
    amp: bool = True
    channels_last: bool = True
    compile: bool = False
    workers: int = 8
    data_on_gpu: bool = True
    cache_gb: float = 4.0
    log_every: int = 10
    checkpoint_minutes: float = 10.0
    speed_iters: int = 50

    def __post_init__(self) -> None:
        check(self, choices={"arch": ("yolo", "fast")},
              at_least={"image_size": 64, "grid": 1, "boxes": 1, "hidden": 1, "epochs": 1, "batch_size": 1,
                        "eval_every": 1, "log_every": 1, "speed_iters": 1, "generated_train": 1, "generated_test": 1,
                        "holdout_every": 2, "max_detections": 1, "exposure": 1, "saturation": 1, "momentum": 0,
                        "weight_decay": 0, "clip_grad": 0, "checkpoint_minutes": 0, "workers": 0, "cache_gb": 0,
                        "num_classes": 0, "lambda_coord": 0, "lambda_noobj": 0, "dropout": 0, "jitter": 0,
                        "warmup_fraction": 0, "score_threshold": 0, "warmup_lr": 0},
              above={"width": 0, "lr": 0, "nms_iou": 0, "decay_fractions": 0},
              at_most={"nms_iou": 1, "decay_fractions": 1},
              below={"dropout": 1, "jitter": 1, "warmup_fraction": 1, "score_threshold": 1})
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
