"""MNIST as the WANN search sees it: 28x28 digits resized to 16x16 and deskewed (released code,
``domain/classify_gym.py``: ``cv2.resize`` with bilinear interpolation, then a shear that removes the
skew measured by the image moments, ``mu11 / mu02``), flattened to 256 inputs in [0, 1].

Written with torch and numpy instead of OpenCV (not installed here): the resize is torch's bilinear
interpolation without antialiasing (OpenCV's sampling grid), the shear a linear interpolation along
each row with zeros outside; OpenCV interpolates in 1/32 steps, so pixels differ in the last digits.
"""

import numpy as np
import torch
import torch.nn.functional as F


def resize(images: torch.Tensor, size: int) -> np.ndarray:
    """(N, 28, 28) uint8 -> (N, size, size) float64 in [0, 1], bilinear (half-pixel centres)."""
    scaled = images.float().div(255).unsqueeze(1)
    return F.interpolate(scaled, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=False)[:, 0].double().numpy()


def deskew(images: np.ndarray) -> np.ndarray:
    """Shear each (H, W) image so that its rows' centre of mass no longer drifts with height.

    With image moments about the centroid, skew = mu11 / mu02; the output pixel (row y, column x)
    is read from column x + skew * y - skew * H / 2 of the same row (OpenCV's warpAffine with
    WARP_INVERSE_MAP, as in the released code). Images with mu02 below 1e-2 are left as they are.
    """
    n, height, width = images.shape
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float64)
    mass = images.sum(axis=(1, 2))
    safe = np.where(mass > 0, mass, 1.0)
    row_mean = (images * rows).sum(axis=(1, 2)) / safe
    col_mean = (images * cols).sum(axis=(1, 2)) / safe
    dy = rows[None] - row_mean[:, None, None]
    dx = cols[None] - col_mean[:, None, None]
    mu02 = (images * dy * dy).sum(axis=(1, 2))
    mu11 = (images * dx * dy).sum(axis=(1, 2))
    skew = np.where(np.abs(mu02) < 1e-2, 0.0, mu11 / np.where(np.abs(mu02) < 1e-2, 1.0, mu02))
    source = cols[None] + skew[:, None, None] * (rows[None] - 0.5 * height)     # (N, H, W) columns to read
    left = np.floor(source).astype(np.int64)
    frac = source - left
    padded = np.pad(images, ((0, 0), (0, 0), (1, 1)))                           # zeros outside the image

    def take(columns: np.ndarray) -> np.ndarray:
        return np.take_along_axis(padded, np.clip(columns + 1, 0, width + 1), axis=2)

    out = (1 - frac) * take(left) + frac * take(left + 1)
    return np.where(np.abs(mu02)[:, None, None] < 1e-2, images, out)


def inputs(images: torch.Tensor, size: int, unskew: bool) -> np.ndarray:
    """(N, 28, 28) uint8 digits -> (N, size * size) float32 network inputs."""
    small = resize(images, size)
    if unskew:
        small = deskew(small)
    return small.reshape(len(small), -1).astype(np.float32)
