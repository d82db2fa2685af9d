"""Packed bits and XNOR-popcount arithmetic on the CPU, for binarized networks (+-1 weights and
activations; the BNN runner's run-time path).

Binarized Neural Networks (arXiv:1602.02830): a dot product of two +-1 vectors of length n is
2 * popcount(xnor(a, w)) - n (the XNOR-count of the paper's run-time kernel), the input layer's
8-bit pixels are handled bit plane by bit plane (Sec. 1.6), and a batch norm followed by sign is a
comparison of the integer pre-activation with a per-unit threshold, so run-time inference needs no
floating point except the final 10-class batch norm whose argmax is the prediction.

Bits are stored with 1 for +1, ``np.packbits`` little bit order, padded with zeros to whole uint64
words; the padding is subtracted from the match counts.
"""

import numpy as np
import torch
from torch import nn

WORD_BITS = 64
CHUNK_ELEMENTS = 1 << 22  # words processed at once in one xor/popcount, bounding memory to 32 MB


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool (rows, n) -> uint64 (rows, ceil(n / 64)), bit i of the row in word i // 64."""
    packed = np.packbits(bits, axis=1, bitorder="little")
    pad = -packed.shape[1] % (WORD_BITS // 8)
    packed = np.pad(packed, ((0, 0), (0, pad)))
    return np.ascontiguousarray(packed).view("<u8")


def xnor_dot(inputs: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """Dot products of +-1 vectors from their packed bits: 2 * popcount(xnor) - n, int64 (B, O)."""
    padding = inputs.shape[1] * WORD_BITS - n
    out = np.empty((inputs.shape[0], weights.shape[0]), dtype=np.int64)
    rows = max(1, CHUNK_ELEMENTS // (weights.shape[0] * weights.shape[1]))
    for start in range(0, inputs.shape[0], rows):
        xnor = ~(inputs[start:start + rows, None, :] ^ weights[None, :, :])
        matches = np.bitwise_count(xnor).sum(axis=2, dtype=np.int64) - padding
        out[start:start + rows] = 2 * matches - n
    return out


def xnor_dot_masked(inputs: np.ndarray, masks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Dot products of +-1 vectors over the positions a mask keeps, int64 (B, O).

    For a convolution's zero padding (XNOR-Net, arXiv 1603.05279 Sec. 3.2: the binary input is padded with
    zeros, which one bit cannot hold): position i counts only where bit i of ``masks`` is set, so the dot is
    2 * popcount(xnor(a, w) & m) - popcount(m). ``inputs`` and ``masks`` are packed (B, words), ``weights``
    (O, words); bits outside the mask, padding words included, may hold anything.
    """
    out = np.empty((inputs.shape[0], weights.shape[0]), dtype=np.int64)
    valid = np.bitwise_count(masks).sum(axis=1, dtype=np.int64)
    rows = max(1, CHUNK_ELEMENTS // (weights.shape[0] * weights.shape[1]))
    for start in range(0, inputs.shape[0], rows):
        xnor = ~(inputs[start:start + rows, None, :] ^ weights[None, :, :]) & masks[start:start + rows, None, :]
        out[start:start + rows] = 2 * np.bitwise_count(xnor).sum(axis=2, dtype=np.int64) - valid[start:start + rows,
                                                                                                   None]
    return out


def pixel_dot(pixels: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    """sum_i (2 p_i - 255) w_i for uint8 pixels (B, n) and +-1 weights as bits, int64 (B, O).

    sum_i p_i w_i = sum_b 2^b (popcount(plane_b & w+) - popcount(plane_b & w-)) over the eight bit
    planes of the pixels (Sec. 1.6); sum_i w_i = 2 popcount(w+) - n.
    """
    weight_sum = 2 * np.bitwise_count(weights).sum(axis=1, dtype=np.int64) - n
    negative = ~weights  # padding bits become 1 here but meet zero padding in the planes
    total = np.zeros((pixels.shape[0], weights.shape[0]), dtype=np.int64)
    rows = max(1, CHUNK_ELEMENTS // (weights.shape[0] * weights.shape[1]))
    for plane_index in range(8):
        plane = pack_bits((pixels >> plane_index) & 1 == 1)
        for start in range(0, plane.shape[0], rows):
            chunk = plane[start:start + rows, None, :]
            plus = np.bitwise_count(chunk & weights[None]).sum(axis=2, dtype=np.int64)
            minus = np.bitwise_count(chunk & negative[None]).sum(axis=2, dtype=np.int64)
            total[start:start + rows] += (plus - minus) << plane_index
    return 2 * total - 255 * weight_sum[None, :]


@torch.no_grad()
def fold_threshold(norm: nn.BatchNorm1d) -> tuple[np.ndarray, np.ndarray]:
    """Directions f (+-1) and integer thresholds t with sign(norm(s)) = +1 <=> f * s >= t.

    norm(s) = gamma (s - mean) / sqrt(var + eps) + beta is monotone in s, so it is >= 0 on one
    side of tau = mean - beta sqrt(var + eps) / gamma. The analytic ceiling is then checked against
    the batch norm itself on the integers around it, so rounding in float32 cannot make the packed
    path disagree with the float simulation.
    """
    gamma, beta = norm.weight.double(), norm.bias.double()
    sigma = torch.sqrt(norm.running_var.double() + norm.eps)
    flip = torch.where(gamma >= 0, 1, -1).long()
    safe_gamma = torch.where(gamma == 0, 1.0, gamma)
    tau = (norm.running_mean.double() - beta * sigma / safe_gamma).clamp(-2.0 ** 40, 2.0 ** 40)
    threshold = torch.ceil(flip * tau).long()
    offsets = torch.arange(-2, 3)[:, None]
    candidates = threshold[None, :] + offsets  # (5, units) values of f * s
    was_training = norm.training
    norm.eval()
    fires = norm((flip * candidates).to(norm.weight.dtype)) >= 0
    norm.train(was_training)
    first = torch.argmax(fires.int(), dim=0)  # first offset where the unit fires
    constant = gamma == 0  # norm(s) = beta for every s
    if not bool(((~fires[0] & fires[-1]) | constant).all()):
        raise RuntimeError("batch norm threshold not found within 2 of its analytic value")
    threshold = torch.where(constant, torch.where(beta >= 0, -(2 ** 40), 2 ** 40), threshold + first - 2)
    return flip.numpy().astype(np.int8), threshold.numpy()
