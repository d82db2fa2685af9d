"""The pointer sentinel mixture (Merity et al. 2016, arXiv 1609.07843, Sec. 2, Eq. 2-4) against a
position-by-position reference written from the paper's equations, its sums over the vocabulary, the
gradient through the gate, the window carried across segments, and the medium model's parameters by hand."""

import math
from dataclasses import replace

import pytest
import torch

from runners.pointer_sentinel.config import PRESETS
from runners.pointer_sentinel.model import PointerSentinel, PointerSentinelLSTM, build


def reference_mixture(head: PointerSentinel, outputs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Eq. 2-4 one stream and one position at a time over the whole stream (no memory, no masks): the
    window of position t is the positions max(0, t - L + 1) .. t."""
    batch, steps, _ = outputs.shape
    vocab = head.decoder.out_features
    result = torch.empty(batch, steps, vocab, dtype=torch.float64)
    with torch.no_grad():
        for b in range(batch):
            for t in range(steps):
                h = outputs[b, t].double()
                p_vocab = torch.softmax(head.decoder.weight.double() @ h + head.decoder.bias.double(), dim=0)
                q = torch.tanh(head.query.weight.double() @ h + head.query.bias.double())
                window = range(max(0, t - head.window + 1), t + 1)
                z = [float(q @ outputs[b, i].double()) for i in window] + [float(q @ head.sentinel.double())]
                top = max(z)
                a = [math.exp(v - top) for v in z]
                a = [v / sum(a) for v in a]
                g = a[-1]
                p_ptr = torch.zeros(vocab, dtype=torch.float64)
                for weight, i in zip(a[:-1], window):
                    p_ptr[tokens[b, i]] += weight / (1 - g)
                result[b, t] = g * p_vocab + (1 - g) * p_ptr
    return result


def random_head(window: int, hidden: int = 4, vocab: int = 7, seed: int = 0) -> PointerSentinel:
    torch.manual_seed(seed)
    head = PointerSentinel(hidden, vocab, window)
    for weight in head.parameters():
        torch.nn.init.normal_(weight)
    return head


def test_the_mixture_matches_the_papers_equations_position_by_position_across_segments():
    head = random_head(window=4)
    # Repeated words inside the window (3 twice, 1 three times) and a word leaving the window.
    tokens = torch.tensor([[3, 1, 3, 5, 1, 0, 1, 6, 2], [0, 0, 0, 0, 2, 2, 4, 4, 4]])
    outputs = torch.randn(2, 9, 4)
    expected = reference_mixture(head, outputs, tokens)
    # The same stream in two segments: the second sees the first's last L - 1 = 3 positions as memory.
    first = head(outputs[:, :5], tokens[:, :5], outputs[:, :0], tokens[:, :0])
    second = head(outputs[:, 5:], tokens[:, 5:], outputs[:, 2:5], tokens[:, 2:5])
    ours = torch.cat([first, second], dim=1).exp().double()
    assert torch.allclose(ours, expected, atol=1e-5)


@pytest.mark.parametrize("window", [1, 3, 50])
def test_the_mixture_sums_to_one_at_every_position_including_the_start_of_a_stream(window):
    head = random_head(window=window)
    tokens = torch.tensor([[2, 2, 2, 2, 2, 2], [1, 4, 1, 4, 1, 4]])   # every window full of repeats
    log_probs = head(torch.randn(2, 6, 4), tokens, torch.zeros(2, 0, 4), tokens[:, :0])
    assert log_probs.shape == (2, 6, 7)
    assert torch.allclose(log_probs.exp().sum(dim=2), torch.ones(2, 6), atol=1e-5)


def test_at_the_start_of_a_stream_the_only_word_to_copy_is_the_current_one():
    head = random_head(window=5)
    tokens = torch.tensor([[4, 0]])
    outputs = torch.randn(1, 2, 4)
    probs = head(outputs, tokens, outputs[:, :0], tokens[:, :0]).exp()[0, 0]
    with torch.no_grad():
        p_vocab = torch.softmax(head.decoder(outputs[0, 0]), dim=0)
        q = torch.tanh(head.query(outputs[0, 0]))
        g = 1 / (1 + math.exp(float(q @ outputs[0, 0] - q @ head.sentinel)))   # two-way softmax
    others = [w for w in range(7) if w != 4]
    assert torch.allclose(probs[others], g * p_vocab[others], atol=1e-6)
    assert probs[4].item() == pytest.approx(g * p_vocab[4].item() + (1 - g), abs=1e-6)


def test_the_gradient_reaches_the_gate_through_the_sentinel_and_the_query():
    head = random_head(window=3)
    tokens = torch.tensor([[1, 2, 1, 2]])
    outputs = torch.randn(1, 4, 4, requires_grad=True)
    log_probs = head(outputs, tokens, outputs[:, :0].detach(), tokens[:, :0])
    log_probs[0, :-1].gather(1, tokens[0, 1:, None]).sum().neg().backward()
    assert head.sentinel.grad.abs().sum() > 0
    assert head.query.weight.grad.abs().sum() > 0
    assert outputs.grad.abs().sum() > 0


def test_the_model_reads_a_stream_in_segments_as_in_one_piece():
    torch.manual_seed(1)
    model = PointerSentinelLSTM(vocab_size=11, embedding_size=5, hidden_size=6, layers=2, dropout=0.3, window=4).eval()
    tokens = torch.randint(0, 11, (2, 10))
    whole, _ = model(tokens)
    first, state = model(tokens[:, :2])      # shorter than the window: the memory holds 2 positions
    second, state = model(tokens[:, 2:7], state)
    third, _ = model(tokens[:, 7:], state)
    assert state[1].shape == (2, 3, 6)
    assert torch.allclose(torch.cat([first, second, third], dim=1), whole, atol=1e-5)


def test_the_baseline_head_is_the_plain_softmax_layer():
    model = build(replace(PRESETS["smoke"], pointer=False))
    logits, _ = model(torch.zeros(1, 3, dtype=torch.long))
    assert logits.shape == (1, 3, 10000)
    assert not torch.allclose(logits.exp().sum(dim=2), torch.ones(1, 3))


def test_the_medium_model_counts_its_parameters_as_the_layers_add_up_by_hand():
    with torch.device("meta"):
        model = build(PRESETS["paper"])
    embedding = 10000 * 650
    lstm = 2 * (4 * 650 * (650 + 650) + 2 * 4 * 650)       # W_ih, W_hh and PyTorch's two bias vectors
    softmax = 650 * 10000 + 10000
    pointer = 650 * 650 + 650 + 650                         # query layer W, b (Eq. 3) and sentinel s
    assert sum(p.numel() for p in model.parameters()) == embedding + lstm + softmax + pointer == 20_204_200
