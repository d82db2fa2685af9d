"""The family's input pipeline: normalisation and the papers' augmentations.

- CIFAR "+" (He et al. 2016, arXiv 1512.03385 Sec. 4.2, followed by DenseNet, ResNeXt, Stochastic Depth,
  RoR): 4 pixels of zero padding on each side, a random 32x32 crop, and a horizontal flip with
  probability 1/2. Applied to a whole batch at once on the batch's device (one gather), after
  normalisation, so the padding is zero in normalised units (the channel mean), as in fb.resnet.torch,
  which the DenseNet and Stochastic Depth code build on. The random numbers are drawn on the CPU from a
  generator seeded per epoch (``fit`` moves an epoch's draws to the device once), so a resumed run redraws them exactly.
- ImageNet (fb.resnet.torch / torchvision references, the recipe of the family's ImageNet tables):
  training images are a random-resized crop (8%..100% of the area, aspect 3/4..4/3) resized to 224 and
  flipped with probability 1/2; evaluation images are resized so the short side is 256 and centre-cropped
  to 224. These run on the CPU in loader workers, at decode time (the files have every size), drawn from
  a generator seeded by (seed, epoch, image), the same in any worker.
"""

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from kb.errors import KBError

CIFAR_PAD = 4
EVAL_RESIZE = 256 / 224  # short side before the centre crop, relative to the crop (256 for 224)
CROP_SCALE = (0.08, 1.0)
CROP_RATIO = (3 / 4, 4 / 3)


def normalise(images: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float (pixel - mean) / std per channel; ``mean``, ``std`` (3,) on the same device."""
    return (images.float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def crop_flip_draws(count: int, generator: torch.Generator, pad: int = CIFAR_PAD) -> torch.Tensor:
    """(count, 3) int64: the crop's top and left offsets in 0..2 pad of the padded image, and 1 to flip."""
    offsets = torch.randint(0, 2 * pad + 1, (count, 2), generator=generator)
    flips = torch.randint(0, 2, (count, 1), generator=generator)
    return torch.cat([offsets, flips], dim=1)


def crop_flip(images: torch.Tensor, draws: torch.Tensor, pad: int = CIFAR_PAD) -> torch.Tensor:
    """The CIFAR augmentation of a batch given its random numbers (``crop_flip_draws``, on the images' device).

    Output pixel (i, j) of image b is pixel (i + top - pad, j + left - pad) of the input (mirrored in j when
    flipped), or 0 where that falls in the padding. Tensor code only, so torch.compile can fuse it.

    Args:
        images: (B, C, H, W) float, normalised.
        draws: (B, 3) top, left, flip.
        pad: the zero padding on each side.
    """
    n, channels, height, width = images.shape
    padded = F.pad(images, (pad, pad, pad, pad))
    top, left, flip = draws[:, 0:1], draws[:, 1:2], draws[:, 2:3].bool()
    rows = top + torch.arange(height, device=images.device)  # (B, H) rows of the padded image
    along = torch.arange(width, device=images.device)
    cols = left + torch.where(flip, width - 1 - along, along)  # (B, W)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(channels, device=images.device).view(1, channels, 1, 1)
    return padded[batch, channel, rows.view(n, 1, height, 1), cols.view(n, 1, 1, width)]


# -- ImageNet crops (PIL, at decode time) ----------------------------------------------------------

def random_resized_box(width: int, height: int, generator: torch.Generator) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a random crop covering 8%..100% of the image with aspect ratio 3/4..4/3,
    area and log-ratio uniform; after 10 misses the largest centred crop within those ratios (torchvision's
    RandomResizedCrop rule)."""
    area = width * height
    log_low, log_high = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    for _ in range(10):
        u = torch.rand(4, generator=generator).tolist()
        target = area * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * u[0])
        aspect = math.exp(log_low + (log_high - log_low) * u[1])
        w, h = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < w <= width and 0 < h <= height:
            top, left = int(u[2] * (height - h + 1)), int(u[3] * (width - w + 1))
            return left, top, left + w, top + h
    aspect = width / height
    w, h = ((round(height * CROP_RATIO[1]), height) if aspect > CROP_RATIO[1] else
            (width, round(width / CROP_RATIO[0])) if aspect < CROP_RATIO[0] else (width, height))
    left, top = (width - w) // 2, (height - h) // 2
    return left, top, left + w, top + h


def decode(path: Path, size: int, generator: torch.Generator | None) -> torch.Tensor:
    """An image file as (3, size, size) uint8 RGB: the training crop and flip when ``generator`` is given,
    else the evaluation resize and centre crop.

    Raises:
        KBError: the file cannot be read as an image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if generator is not None:
                box = random_resized_box(image.width, image.height, generator)
                image = image.resize((size, size), Image.BILINEAR, box=box)
                if torch.rand(1, generator=generator).item() < 0.5:
                    image = image.transpose(Image.FLIP_LEFT_RIGHT)
            else:
                short = round(size * EVAL_RESIZE)
                scale = short / min(image.width, image.height)
                resized = (max(short, round(image.width * scale)), max(short, round(image.height * scale)))
                image = image.resize(resized, Image.BILINEAR)
                left, top = (resized[0] - size) // 2, (resized[1] - size) // 2
                image = image.crop((left, top, left + size, top + size))
            pixels = np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise KBError(f"{path}: cannot be read as an image ({exc})") from None
    return torch.from_numpy(pixels.copy()).permute(2, 0, 1)


class FileBatches(torch.utils.data.Dataset):
    """Batches of decoded image files for a DataLoader whose sampler yields lists of indices.

    Args:
        files: the image files (``data.ImageFiles``).
        size: the crop side.
        train: draw the training crop and flip of (seed, epoch, image), else the evaluation crop.
        seed, epoch: the run's seed and the epoch, for the training crops.
    """

    def __init__(self, files, size: int, *, train: bool, seed: int = 0, epoch: int = 0) -> None:
        self.files, self.size, self.train, self.seed, self.epoch = files, size, train, seed, epoch

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        images = []
        for i in indices:
            generator = (torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
                         if self.train else None)
            images.append(decode(self.files.paths[i], self.size, generator))
        return torch.stack(images), self.files.labels[torch.as_tensor(indices)]
