"""Bit packing, XNOR-popcount dot products, folded batch-norm thresholds, and packed inference
against the float simulation."""

import numpy as np
import pytest
import torch
from torch import nn

from runners.bnn.model import BinaryMLP, PackedMLP, as_input
from runners.common.packed import fold_threshold, pack_bits, pixel_dot, xnor_dot


def test_pack_bits_layout():
    bits = np.zeros((2, 70), dtype=bool)
    bits[0, [0, 3, 64]] = True
    bits[1, 69] = True
    packed = pack_bits(bits)
    assert packed.dtype == np.uint64 and packed.shape == (2, 2)
    assert packed[0].tolist() == [0b1001, 1] and packed[1].tolist() == [0, 1 << 5]


@pytest.mark.parametrize("n", [5, 64, 70, 784])
def test_xnor_popcount_equals_integer_dot_product(n):
    rng = np.random.default_rng(n)
    a = rng.integers(0, 2, (9, n)).astype(bool)
    w = rng.integers(0, 2, (7, n)).astype(bool)
    signs_a, signs_w = np.where(a, 1, -1), np.where(w, 1, -1)
    assert np.array_equal(xnor_dot(pack_bits(a), pack_bits(w), n), signs_a @ signs_w.T)


@pytest.mark.parametrize("n", [7, 784])
def test_bit_plane_dot_equals_integer_dot_product(n):
    rng = np.random.default_rng(n)
    pixels = rng.integers(0, 256, (6, n)).astype(np.uint8)
    pixels[0] = 255
    pixels[1] = 0
    w = rng.integers(0, 2, (5, n)).astype(bool)
    expected = (2 * pixels.astype(np.int64) - 255) @ np.where(w, 1, -1).T
    assert np.array_equal(pixel_dot(pixels, pack_bits(w), n), expected)


def norm_with(mean, var, gamma, beta, eps=1e-4):
    norm = nn.BatchNorm1d(len(mean), eps=eps)
    with torch.no_grad():
        norm.running_mean.copy_(torch.tensor(mean))
        norm.running_var.copy_(torch.tensor(var) - eps)  # so that sqrt(var + eps) is the value given
        norm.weight.copy_(torch.tensor(gamma))
        norm.bias.copy_(torch.tensor(beta))
    return norm


def test_folded_thresholds_by_hand():
    # unit 0: 2 (s - 3) / 2 + 1 = s - 2 >= 0  <=>  s >= 2 (sign(0) = +1, so s = 2 fires)
    # unit 1: -(s - 0) / 1 + 0.5 >= 0  <=>  s <= 0.5  <=>  -s >= 0 for integers
    # unit 2: 0.5 (s + 10) / 4 - 1 >= 0  <=>  s >= -2
    # unit 3: gamma = 0: always beta = 0.25 >= 0
    # unit 4: gamma = 0, beta < 0: never
    norm = norm_with([3.0, 0.0, -10.0, 5.0, 5.0], [4.0, 1.0, 16.0, 1.0, 1.0],
                     [2.0, -1.0, 0.5, 0.0, 0.0], [1.0, 0.5, -1.0, 0.25, -0.25])
    flip, threshold = fold_threshold(norm)
    assert flip.tolist()[:3] == [1, -1, 1]
    assert threshold.tolist()[:3] == [2, 0, -2]
    s = np.arange(-50, 51)
    fires = flip[None, :] * s[:, None] >= threshold[None, :]
    assert fires[:, 3].all() and not fires[:, 4].any()
    with torch.no_grad():
        expected = norm.eval()(torch.from_numpy(s).float()[:, None].expand(-1, 5).contiguous()) >= 0
    assert np.array_equal(fires, expected.numpy())


def random_trained_looking_mlp(hidden: int, seed: int) -> BinaryMLP:
    """A BinaryMLP whose batch-norm statistics sit inside the spread of its pre-activations, as a
    trained one's do (pixels 2p - 255 have std ~147; +-1 products of n terms have std sqrt(n))."""
    torch.manual_seed(seed)
    model = BinaryMLP(hidden=hidden, layers=3)
    with torch.no_grad():
        for norm, spread in zip([*model.norms, model.output_norm], [147 * 28, *[hidden ** 0.5] * 3]):
            norm.running_mean.uniform_(-spread / 2, spread / 2)
            norm.running_var.uniform_(0.5 * spread ** 2, 2 * spread ** 2)
            norm.weight.uniform_(-1.5, 1.5)
            norm.bias.uniform_(-0.5, 0.5)
        model.norms[1].weight[:3] = 0
    return model.eval()


@pytest.mark.parametrize("hidden", [100, 256])
def test_packed_inference_equals_float_simulation(hidden):
    model = random_trained_looking_mlp(hidden, seed=hidden)
    pixels = torch.randint(0, 256, (400, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    captured = []
    model.output.register_forward_hook(lambda module, inputs, output: captured.append(output))
    with torch.no_grad():
        simulated = model(as_input(pixels)).argmax(1).numpy()
    packed = PackedMLP.from_model(model)
    flat = pixels.reshape(400, -1).numpy()
    assert np.array_equal(packed.integer_scores(flat), captured[0].numpy().astype(np.int64))
    predicted = packed.predict(flat)
    assert np.array_equal(predicted, simulated)
    assert len(set(predicted.tolist())) > 3  # a non-degenerate comparison


def test_packed_arrays_are_about_32_times_smaller():
    model = random_trained_looking_mlp(256, seed=0)
    arrays = PackedMLP.from_model(model).arrays()
    # rows padded to whole 64-bit words: 784 bits -> 13 words, 256 bits -> 4 words
    assert [arrays[f"weights_{i}"].nbytes for i in range(4)] == [256 * 13 * 8, 256 * 4 * 8, 256 * 4 * 8, 10 * 4 * 8]
    packed_bytes = sum(a.nbytes for a in arrays.values())
    float_bytes = 4 * sum(t.numel() for n, t in model.state_dict().items() if not n.endswith("num_batches_tracked"))
    assert 25 < float_bytes / packed_bytes < 32
