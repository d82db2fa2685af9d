"""MNIST for the kervolution runner (files read by ``runners.mnist_data``)."""

from pathlib import Path

import torch

from runners.mnist_data import Mnist, load_mnist


def load(config, data_dir: Path | None) -> Mnist:
    """MNIST from ``data_dir`` (or ``KB_DATA``; downloaded there with ``download``), cut to the
    config's train/test limits."""
    return load_mnist(data_dir, fetch=config.download).subset(config.train_limit, config.test_limit)


def as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (B, 28, 28) -> float (B, 1, 28, 28) scaled to [0, 1]."""
    return images.unsqueeze(1).float().div_(255)
