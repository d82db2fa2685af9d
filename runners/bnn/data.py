"""MNIST for the BNN runner (files read by ``runners.mnist_data``): flat pixels, held-out validation."""

from pathlib import Path

import torch

from kb.errors import BadInput
from runners.mnist_data import Mnist, load_mnist


def load(config, data_dir: Path | None) -> Mnist:
    """MNIST from ``data_dir`` (or ``KB_DATA``; downloaded there with ``download``), cut to the
    config's train/test limits."""
    data = load_mnist(data_dir, fetch=config.download).subset(config.train_limit, config.test_limit)
    if not 0 < config.validation_size < len(data.train_labels):
        raise BadInput(f"validation_size={config.validation_size} must be between 0 and the "
                       f"{len(data.train_labels)} training images")
    return data


def as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, 28, 28) -> float (B, 784) holding 2p - 255, odd integers in [-255, 255].

    This is the authors' [-1, 1] scaling times 255; the first batch norm absorbs the factor, and
    integer inputs keep the first layer's float32 sums exact (see model.py).
    """
    return images.reshape(len(images), -1).float().mul_(2).sub_(255)
