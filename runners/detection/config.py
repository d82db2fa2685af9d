"""The detection family's base configuration: data, training schedule, augmentation, evaluation and
the machine settings every detector shares (``runners/detection/train.py`` reads them).

Defaults are YOLOv1's recipe (arXiv 1506.02640, Sec. 2.2), the family's first paper. A detector's
``Config`` extends this one (redeclaring a field changes only its default), so ``--set`` stays flat and
type-checked. No torch here: kb imports config modules to list presets.
"""

from dataclasses import dataclass

from kb.runs.config import check


@dataclass(frozen=True)
class Config:
    """One detector training run: what every detector of the family shares.

    Attributes:
        image_size: network input side in pixels; images are resized to it (448 in YOLOv1).
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

    image_size: int = 448
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
        check(self, at_least={"image_size": 32, "epochs": 1, "batch_size": 1, "eval_every": 1, "log_every": 1,
                              "speed_iters": 1, "generated_train": 1, "generated_test": 1, "holdout_every": 2,
                              "max_detections": 1, "exposure": 1, "saturation": 1, "momentum": 0, "weight_decay": 0,
                              "clip_grad": 0, "checkpoint_minutes": 0, "workers": 0, "cache_gb": 0, "num_classes": 0,
                              "jitter": 0, "warmup_fraction": 0, "score_threshold": 0, "warmup_lr": 0},
              above={"lr": 0, "nms_iou": 0, "decay_fractions": 0},
              at_most={"nms_iou": 1, "decay_fractions": 1},
              below={"jitter": 1, "warmup_fraction": 1, "score_threshold": 1})
