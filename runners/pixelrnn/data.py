"""Binary MNIST for the PixelRNN runner: the family's genuine MNIST, binarized here with a fixed seed.

The paper uses the standard binarized MNIST (Salakhutdinov & Murray, 2008: one fixed stochastic
binarization, 50k/10k/10k), whose files are not on this machine. Here every pixel becomes 1 with
probability intensity / 255, drawn once per split from numpy's PCG64 seeded with
``SeedSequence([binarize_seed, split])`` (split 0 = train, 1 = test), one uniform number per pixel in the
files' order. A draw never depends on ``train_limit`` / ``test_limit``: a subset is the first images of
the whole binarized split. Because the binarization is not the standard file's, the run's dataset is
named after it (``mnist-test-bernoulli-seed0``), never the claims' ``binarized-mnist-test``.
"""

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kb.errors import BadInput
from runners.mnist import data as mnist

TRAIN, TEST = 0, 1
METHOD = ("Bernoulli(intensity / 255) per pixel, numpy PCG64 seeded with SeedSequence([binarize_seed, split]), "
          "split 0 = train, 1 = test, one uniform per pixel in file order")


def binarize(images: torch.Tensor, seed: int, split: int) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float zeros and ones (N, 1, 28, 28): 1 where U[0, 1) < intensity / 255."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, split]))
    uniform = rng.random(tuple(images.shape))
    bits = uniform < images.numpy() / 255.0
    return torch.from_numpy(bits).float()[:, None]


@dataclass(frozen=True)
class BinaryMnist:
    """Binarized MNIST: train (N, 1, 28, 28) and test (M, 1, 28, 28) float tensors of zeros and ones."""

    train: torch.Tensor
    test: torch.Tensor
    source: mnist.Mnist
    seed: int

    @property
    def dataset_name(self) -> str:
        whole = len(self.test) == mnist.FULL_TEST_SIZE
        return f"mnist-test-bernoulli-seed{self.seed}" + ("" if whole else "-subset")

    def fingerprint(self) -> str:
        """Short sha256 of the binary pixels actually used."""
        digest = hashlib.sha256()
        for split in (self.train, self.test):
            digest.update(np.packbits(split.numpy().astype(np.uint8)).tobytes())
        return digest.hexdigest()[:16]


def load(config, data_dir: Path | None) -> BinaryMnist:
    """The family's MNIST (cut to ``train_limit`` / ``test_limit``) binarized with ``config.binarize_seed``,
    checked to leave training images once ``validation_size`` is held out."""
    data = mnist.load(config, data_dir)
    if not 0 < config.validation_size < len(data.train_labels):
        raise BadInput(f"validation_size={config.validation_size} must be between 0 and the "
                       f"{len(data.train_labels)} training images")
    return BinaryMnist(binarize(data.train_images, config.binarize_seed, TRAIN),
                       binarize(data.test_images, config.binarize_seed, TEST), data, config.binarize_seed)


def record_dataset(run, data: BinaryMnist, validation_size: int) -> None:
    """Tell the run which data it uses, and how they were binarized and split."""
    fit = len(data.train) - validation_size
    run.set_dataset(data.dataset_name, fingerprint=data.fingerprint(),
                    detail=f"MNIST from {data.source.folder} binarized by kb with seed {data.seed} ({METHOD}), "
                           f"not the standard binarized MNIST; {fit} train / {validation_size} validation (the last "
                           f"training images) / {len(data.test)} test images")
    run.record(binarization=METHOD, binarize_seed=data.seed, mnist_fingerprint=data.source.fingerprint(),
               train_images=fit, validation_images=validation_size, test_images=len(data.test),
               validation_split=f"the last {validation_size} of the {len(data.train)} training images, never trained on")
