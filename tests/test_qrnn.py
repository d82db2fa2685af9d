"""The QRNN runner: fo-pooling against a per-step reference, the masked convolution's causality and
streaming state, zoneout on the forget gate, the paper's parameter count by hand, the speed comparison,
and the CLI's one line for a PTB folder without its test file."""

import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from runners.qrnn.config import PRESETS
from runners.qrnn.model import QRNNLayer, build, fo_pool_chunked, fo_pool_loop
from runners.qrnn.train import speed_comparison
from tests.conftest import ROOT
from tests.test_language_model_data import write_ptb


def reference_fo_pool(f, z, o, c0):
    """Eq. 4 of the paper written out element by element: c_t = f_t c_{t-1} + (1 - f_t) z_t, h_t = o_t c_t."""
    batch, steps, hidden = f.shape
    h = torch.zeros(batch, steps, hidden, dtype=torch.float64)
    for b in range(batch):
        for j in range(hidden):
            c = float(c0[b, j])
            for t in range(steps):
                c = float(f[b, t, j]) * c + (1 - float(f[b, t, j])) * float(z[b, t, j])
                h[b, t, j] = float(o[b, t, j]) * c
    return h


@pytest.mark.parametrize("chunk", [1, 4, 7, 64])
def test_fo_pooling_matches_the_per_step_reference_and_its_gradient(chunk):
    torch.manual_seed(0)
    f = torch.rand(2, 13, 3, dtype=torch.float64) * 0.98 + 0.01
    f[0, 5] = 1.0                       # a zoned-out gate: the cell keeps its value
    z, o, c0 = torch.randn(2, 13, 3, dtype=torch.float64), torch.rand(2, 13, 3, dtype=torch.float64), \
        torch.randn(2, 3, dtype=torch.float64)
    expected = reference_fo_pool(f, z, o, c0)
    assert torch.allclose(o * fo_pool_loop(f, z, c0), expected, atol=1e-12)
    assert torch.allclose(o * fo_pool_chunked(f, z, c0, chunk), expected, atol=1e-10)
    leaves = [t.clone().requires_grad_() for t in (f, z, c0)]
    grads_loop = torch.autograd.grad(fo_pool_loop(*leaves).square().sum(), leaves)
    grads_chunked = torch.autograd.grad(fo_pool_chunked(*leaves, chunk).square().sum(), leaves)
    for a, b in zip(grads_loop, grads_chunked):
        assert torch.allclose(a, b, atol=1e-9)


def test_the_scan_stays_finite_where_running_products_underflow():
    f = torch.full((1, 300, 2), 1e-3)                 # prod f over 300 steps is 1e-900
    z = torch.ones(1, 300, 2)
    c = fo_pool_chunked(f, z, torch.zeros(1, 2), chunk=300)
    assert torch.isfinite(c).all() and torch.allclose(c, fo_pool_loop(f, z, torch.zeros(1, 2)), atol=1e-6)


def test_the_masked_convolution_sees_no_future_and_segments_continue_the_stream():
    torch.manual_seed(0)
    layer = QRNNLayer(5, 4, window=3, zoneout=0.0, scan_chunk=4).eval()
    x = torch.randn(2, 10, 5)
    whole, _ = layer(x)
    changed = x.clone()
    changed[:, 6:] += 1.0                              # only inputs from t = 6 on
    assert torch.allclose(layer(changed)[0][:, :6], whole[:, :6])
    first, state = layer(x[:, :4])
    second, _ = layer(x[:, 4:], state)
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)


def test_zoneout_only_acts_on_the_forget_gate_while_training():
    torch.manual_seed(0)
    layer = QRNNLayer(3, 8, window=2, zoneout=0.5, scan_chunk=4)
    x = torch.randn(1, 6, 3)
    layer.eval()
    assert torch.equal(layer(x)[0], layer(x)[0])
    layer.train()
    assert not torch.equal(layer(x)[0], layer(x)[0])   # a different set of frozen units each pass


def test_the_papers_network_has_the_parameters_of_table_2_counted_by_hand():
    config = PRESETS["paper"]
    embedding = 10000 * 640
    qrnn_layer = 3 * 640 * (2 * 640) + 3 * 640        # Z, F, O filters over a window of k = 2 inputs, biases
    softmax = 640 * 10000 + 10000
    with torch.device("meta"):                        # shapes only: no 70 MB of weights to initialise
        qrnn, lstm = build(config), build(replace(config, model="lstm"))
    assert sum(p.numel() for p in qrnn.parameters()) == embedding + 2 * qrnn_layer + softmax == 17_729_040
    lstm_layer = 4 * 640 * (640 + 640) + 2 * 4 * 640  # PyTorch's LSTM keeps two bias vectors
    assert sum(p.numel() for p in lstm.parameters()) == embedding + 2 * lstm_layer + softmax


def test_the_speed_comparison_times_both_layers_on_one_input():
    config = replace(PRESETS["smoke"], speed_batch=2, speed_length=16, speed_hidden=8, speed_repeats=2)
    measured = speed_comparison(config, torch.device("cpu"))
    assert measured["qrnn_layer_ms"] > 0 and measured["lstm_layer_ms"] > 0
    assert measured["speedup_over_lstm"] == pytest.approx(measured["lstm_layer_ms"] / measured["qrnn_layer_ms"])


def test_a_ptb_folder_without_its_test_file_is_one_line(kb, kb_env, tmp_path):
    folder = write_ptb(tmp_path / "ptb", files=("train", "valid"))
    # The runner refuses the folder before training: bad input (exit 2), one error line, no run left.
    for args, says in ((["--data", str(folder)], f"Penn Treebank folder {folder} lacks ptb.test.txt"),
                       ([], "pass --data with the folder holding them")):
        result = kb("reproduce", "qrnn", "--config", "smoke", "--device", "cpu", *args)
        errors = [line for line in result.err.splitlines() if "error" in line]
        assert result.code == 2 and "Traceback" not in result.err and "failed and is recorded" not in result.err
        assert len(errors) == 1 and errors[0].startswith("kb: error: ") and says in errors[0]


def test_the_speed_benchmark_still_runs_tiny_on_a_cpu():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "benchmarks" / "bench_language_model.py"), "--device", "cpu",
         "--hidden", "16", "--bptt", "8", "--batch", "2", "--steps", "1", "--grid", "2x8", "--repeats", "1",
         "--layer-hidden", "8"], check=False, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:]}
    assert float(rows["qrnn"][0]) > 0 and float(rows["lstm"][0]) > 0 and float(rows["2x8"][2]) > 0
