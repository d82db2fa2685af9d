"""The NAS cell (Zoph & Le 2016, arXiv 1611.01578, appendix Fig. 8) against hand-computed steps, its
weights against TensorFlow's NASCell layout (tf.contrib.rnn: ``kernel`` [input, 8 units] and
``recurrent_kernel`` [units, 8 units], no bias by default), Table 2's parameter counts, and a stream read in
segments as in one piece."""

import math

import pytest
import torch

from runners.nas_cell.config import PRESETS
from runners.nas_cell.model import NASCell, NASLanguageModel, build


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_a_step_with_zero_leaf_inputs_is_the_figures_tree_by_hand():
    # Every leaf sees 0: sigmoid leaves are 1/2, relu and tanh leaves 0. Then b0 = tanh(1/2 * 0) = 0,
    # b1 = tanh(1/2 + 0), b2 = tanh(0 * 1/2) = 0, b3 = sigmoid(0 + 1/2); c = tanh(0 + c_prev) * b1,
    # h = tanh(c * tanh(b2 + b3)).
    c_prev = 1.0
    c = math.tanh(c_prev) * math.tanh(0.5)
    h = math.tanh(c * math.tanh(sigmoid(0.5)))
    got_h, got_c = NASCell.step(torch.zeros(1, 8), torch.zeros(1, 8), torch.tensor([[c_prev]]))
    assert got_c.item() == pytest.approx(c, abs=1e-6) and c == pytest.approx(0.351946, abs=1e-6)
    assert got_h.item() == pytest.approx(h, abs=1e-6) and h == pytest.approx(0.19215, abs=1e-5)


def test_a_step_combines_each_leafs_two_halves_as_the_figure_says():
    # One unit; leaf k gets x_k from the input and m_k from the previous output. Leaf 3 multiplies its
    # halves, the others add them.
    x = [0.3, -0.2, 0.5, 2.0, -0.4, 0.1, 0.7, -0.6]
    m = [0.2, 0.9, -0.1, 0.5, 0.3, -0.5, 0.2, 0.4]
    c_prev = -0.3
    a0, a1 = sigmoid(x[0] + m[0]), max(0.0, x[1] + m[1])
    a2, a3 = sigmoid(x[2] + m[2]), max(0.0, x[3] * m[3])
    a4, a5 = math.tanh(x[4] + m[4]), sigmoid(x[5] + m[5])
    a6, a7 = math.tanh(x[6] + m[6]), sigmoid(x[7] + m[7])
    b0, b1, b2, b3 = math.tanh(a0 * a1), math.tanh(a2 + a3), math.tanh(a4 * a5), sigmoid(a6 + a7)
    c = math.tanh(b0 + c_prev) * b1
    h = math.tanh(c * math.tanh(b2 + b3))
    got_h, got_c = NASCell.step(torch.tensor([x]), torch.tensor([m]), torch.tensor([[c_prev]]))
    assert got_c.item() == pytest.approx(c, abs=1e-6)
    assert got_h.item() == pytest.approx(h, abs=1e-6)


def test_the_cells_weights_have_tensorflows_nascell_layout():
    cell = NASCell(input_size=30, hidden_size=20)
    shapes = sorted(tuple(p.shape) for p in cell.parameters())
    # PyTorch stores (out, in): TF's kernel [30, 160] and recurrent_kernel [20, 160], transposed.
    assert shapes == [(160, 20), (160, 30)]
    assert sum(p.numel() for p in cell.parameters()) == 30 * 8 * 20 + 20 * 8 * 20


@pytest.mark.parametrize(("preset", "hidden", "shared", "table_2_millions"),
                         [("paper", 1150, True, 54), ("paper-25m", 740, True, 25), ("paper-32m", 740, False, 32)])
def test_each_paper_preset_counts_its_table_2_rows_parameters(preset, hidden, shared, table_2_millions):
    with torch.device("meta"):
        model = build(PRESETS[preset])
    cells = 2 * (hidden * 8 * hidden + hidden * 8 * hidden)         # two layers, input = hidden
    embedding = 10000 * hidden
    softmax = (0 if shared else 10000 * hidden) + 10000             # bias always; weight unless shared
    count = sum(p.numel() for p in model.parameters())
    assert count == cells + embedding + softmax
    assert round(count / 1e6) == table_2_millions                     # the table prints whole millions


def test_the_model_reads_a_stream_in_segments_as_in_one_piece():
    torch.manual_seed(0)
    model = NASLanguageModel(vocab_size=13, embedding_size=6, hidden_size=6, layers=2, dropout=0.4,
                             tie_weights=True).eval()
    tokens = torch.randint(0, 13, (3, 9))
    whole, _ = model(tokens)
    first, state = model(tokens[:, :4])
    second, _ = model(tokens[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)
    assert model.decoder.weight is model.embedding.weight
