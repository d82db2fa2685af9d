"""Binarization, straight-through gradients and the squared hinge loss on hand-computed cases."""

import torch

from runners.bnn.model import BinaryLinear, BinaryMLP, binarize, squared_hinge_loss


def test_sign_is_plus_one_at_zero_and_gradient_is_cancelled_outside_unit_interval():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5], requires_grad=True)
    y = binarize(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]
    (y * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])).sum().backward()
    # g_r = g_q * 1_{|r| <= 1}: the upstream gradient passes only where |x| <= 1 (both ends included)
    assert x.grad.tolist() == [0, 2, 3, 4, 5, 6, 0]


def test_binary_linear_uses_signs_and_passes_gradients_straight_through():
    layer = BinaryLinear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[0.2, -0.7, 0.0], [-0.1, 0.9, -1.0]]))
    x = torch.tensor([[1.0, 2.0, 3.0]], requires_grad=True)
    out = layer(x)
    # signs [[1, -1, 1], [-1, 1, -1]]: 1 - 2 + 3 = 2 and -1 + 2 - 3 = -2
    assert out.tolist() == [[2.0, -2.0]]
    out.backward(torch.tensor([[1.0, 10.0]]))
    # d out / d W_b = x for each row, scaled by the upstream gradient; |W| <= 1 so nothing is cancelled
    assert layer.weight.grad.tolist() == [[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]]
    # d out / d x = W_b^T upstream = [1 - 10, -1 + 10, 1 - 10]
    assert x.grad.tolist() == [[-9.0, 9.0, -9.0]]


def test_squared_hinge_loss_by_hand():
    scores = torch.tensor([[0.5, -2.0, 0.0], [2.0, 1.5, -0.5]])
    labels = torch.tensor([0, 2])
    # row 0: (1 - 0.5)^2 + max(0, 1 - 2)^2 + (1 - 0)^2 = 0.25 + 0 + 1
    # row 1: (1 + 2)^2 + (1 + 1.5)^2 + (1 + 0.5)^2 = 9 + 6.25 + 2.25
    expected = (1.25 + 17.5) / 6
    assert abs(squared_hinge_loss(scores, labels).item() - expected) < 1e-6


def test_mlp_shape_and_binary_values_inside():
    model = BinaryMLP(hidden=32, layers=3, dropout_in=0.0, dropout_hidden=0.0).eval()
    seen = []
    model.norms[1].register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    out = model(torch.randint(-255, 256, (4, 784)).float())
    assert out.shape == (4, 10)
    # the second layer's pre-activations are sums of 32 products of +-1 values: even integers
    assert torch.equal(seen[0], seen[0].round()) and bool((seen[0] % 2 == 0).all())
    assert all(layer.weight.abs().max() <= 1 for layer in model.binary_linears())
