"""The classification family's base configuration: data, the SGD recipe, evaluation and the machine
settings every classification runner shares (``runners/classification/train.py`` reads them).

Defaults are the CIFAR recipe most of the family's papers share (DenseNet, arXiv 1608.06993 Sec. 4.2:
SGD, Nesterov momentum 0.9, weight decay 1e-4, batch 64, 300 epochs, lr 0.1 divided by 10 at 50% and
75% of training). A paper's ``Config`` extends this one (redeclaring a field changes only its default),
so ``--set`` stays flat and type-checked. No torch here: kb imports config modules to list presets.
"""

from dataclasses import dataclass

from kb.runs.config import check

DATASETS = ("cifar10", "cifar100", "svhn", "imagenet", "generated")
SCHEDULES = ("step", "cosine", "poly")


@dataclass(frozen=True)
class Config:
    """One classification training run: what every runner of the family shares.

    Attributes:
        dataset: cifar10, cifar100, svhn, imagenet, or generated (labelled images made from a seed, for
            smoke runs; never comparable with a paper's benchmark).
        augment: the papers' standard augmentation ("+" in their tables): for CIFAR 4-pixel zero-padded
            random crops and horizontal flips; for ImageNet random-resized crops and flips. SVHN: none.
        svhn_extra: also train on SVHN's ``extra_32x32.mat`` (the papers' 604k-image setting).
        coarse: CIFAR-100's 20 coarse (superclass) labels instead of its 100 fine labels.
        validation_size: hold out this many training images (the last ones, the same on every run) and
            report the test error at the best validation epoch (0 = no validation split).
        train_limit: use only the first N training images (0 = all; ImageNet: N images evenly spaced over the
            sorted file list, so that every class keeps its share).
        test_limit: evaluate on the first N test images (0 = all; a claim needs all).
        image_size: ImageNet crop side (224); CIFAR and SVHN are 32.
        generated_classes, generated_train, generated_test, generated_size, generated_seed: the generated set.
        epochs, batch_size: training length and SGD batch.
        lr, momentum, nesterov, weight_decay: SGD.
        schedule: ``step`` (lr times lr_decay at each of ``lr_milestones``, fractions of training),
            ``cosine`` (to 0 over training) or ``poly`` (linear to 0).
        lr_milestones: shares of training (0..1) where the step schedule drops the rate.
        lr_decay: the factor at each milestone.
        warmup_epochs: linear warm-up from lr / 10 (0 = none).
        dropout: dropout rate where the paper's network has it (0 = none).
        eval_batch_size: images per evaluation batch.
        log_every: log the mean training loss every this many steps (and at each epoch's end); each log
            waits for the device, so a fast GPU should not do it every step.
        amp: bfloat16 autocast on CUDA.
        channels_last: NHWC memory format on CUDA.
        compile: torch.compile the model on CUDA.
        data_on_gpu: keep the decoded uint8 dataset on the GPU when it fits (augmentation then runs there).
        workers: loader processes for ImageNet (decoded from JPEG on the fly).
        checkpoint_minutes: the longest time between checkpoints (one is also saved after the last epoch).
    """

    dataset: str = "cifar10"
    augment: bool = True
    svhn_extra: bool = False
    coarse: bool = False
    validation_size: int = 0
    train_limit: int = 0
    test_limit: int = 0
    image_size: int = 32
    generated_classes: int = 10
    generated_train: int = 512
    generated_test: int = 256
    generated_size: int = 32
    generated_seed: int = 0
    epochs: int = 300
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: str = "step"
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_decay: float = 0.1
    warmup_epochs: int = 0
    dropout: float = 0.0
    eval_batch_size: int = 500
    log_every: int = 50
    amp: bool = True
    channels_last: bool = True
    compile: bool = True
    data_on_gpu: bool = True
    workers: int = 8
    checkpoint_minutes: float = 10.0

    def __post_init__(self) -> None:
        check(self, choices={"dataset": DATASETS, "schedule": SCHEDULES},
              at_least={"epochs": 1, "batch_size": 1, "eval_batch_size": 1, "train_limit": 0, "test_limit": 0,
                        "validation_size": 0, "momentum": 0, "weight_decay": 0, "warmup_epochs": 0,
                        "generated_classes": 2, "generated_train": 1, "log_every": 1, "generated_test": 1, "workers": 0,
                        "dropout": 0},
              above={"lr": 0, "lr_decay": 0, "image_size": 0, "generated_size": 0, "checkpoint_minutes": 0,
                     "lr_milestones": 0},
              below={"dropout": 1, "lr_milestones": 1})

    @property
    def num_classes(self) -> int:
        """Classes of the dataset (CIFAR-100: 100 fine or 20 coarse labels)."""
        cifar100 = 20 if self.coarse else 100
        return {"cifar10": 10, "cifar100": cifar100, "svhn": 10, "imagenet": 1000}.get(self.dataset,
                                                                                       self.generated_classes)

    @property
    def input_size(self) -> int:
        """The network's input side."""
        return self.image_size if self.dataset == "imagenet" else self.generated_size if self.dataset == "generated" else 32
