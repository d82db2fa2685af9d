"""The MNIST family's base configuration: the fields every MNIST runner has.

A runner's ``Config`` extends it (redeclaring a field changes only its default), so ``--set`` stays
flat and type-checked. No torch here: kb imports config modules to list presets.
"""

from dataclasses import dataclass

from kb.runs.config import check


@dataclass(frozen=True)
class Config:
    batch_size: int = 100
    epochs: int = 10
    train_limit: int = 0               # use only the first N training images (0 = all 60000)
    test_limit: int = 0                # evaluate on the first N test images (0 = all 10000: "mnist-test")
    eval_batch_size: int = 1000
    download: bool = False             # fetch MNIST with torchvision into --data when it is not there

    def __post_init__(self) -> None:
        check(self, at_least={"batch_size": 1, "epochs": 1, "eval_batch_size": 1, "train_limit": 0, "test_limit": 0})
