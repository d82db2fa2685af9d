"""The learning-to-learn runner (arXiv:1606.04474): Appendix A's preprocessing by hand, the baselines against
torch.optim (and NAG's look-ahead against PyTorch's Nesterov form), the optimizees against nn.Modules and
closed forms, the truncated meta-gradient without second derivatives by hand, and the runs end to end:
every optimizer sees the same problems, minibatches and step budget (interrupt and resume:
tests/test_runner_registry.py)."""

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from kb.errors import BadInput
from kb.runs.config import resolve
from runners.learning_to_learn import RUNNER
from runners.learning_to_learn.baselines import NAG, SGD, Adam, RMSprop
from runners.learning_to_learn.model import CoordinatewiseLSTM, architecture, preprocess
from runners.learning_to_learn.optimizee import MnistMLP, Quadratics
from runners.learning_to_learn.train import horizon_log_loss, main, meta_train_epoch, value_and_grad
from tests.test_mnist_data import smoke_through_cli, write_mnist
from tests.test_runner_registry import new_run

REAL_MNIST = Path(__file__).parents[1].parent / "shared/datasets/mnist"


def test_preprocessing_matches_appendix_a_by_hand():
    p = 10.0
    g = torch.tensor([1.0, -math.exp(-5.0), math.exp(-10.0), -math.exp(-20.0), 0.0, 3e-5])
    expected = torch.tensor([[0.0, 1.0], [-0.5, -1.0], [-1.0, 1.0], [-1.0, -math.exp(-10.0)], [-1.0, 0.0],
                             [-1.0, 3e-5 * math.exp(10.0)]])
    # 3e-5 < e^-10 = 4.54e-5: the small-gradient branch (-1, e^p g); e^-10 itself is the log branch.
    assert torch.allclose(preprocess(g, p), expected, atol=1e-6)


def test_the_optimizer_is_one_two_layer_lstm_shared_by_every_coordinate():
    torch.manual_seed(0)
    lstm = CoordinatewiseLSTM(hidden=20, layers=2, use_preprocess=True, p=10.0, scale=0.1)
    # 2 layers of 4 gates: (2 + 20 + 1) x 80 and (20 + 20 + 1) x 80 weights and biases, then 20 + 1 out
    assert sum(p.numel() for p in lstm.parameters()) == 23 * 80 + 41 * 80 + 21
    gradients = torch.randn(7)
    together = lstm(gradients)
    one_by_one = []
    for g in gradients:
        lstm.reset_state()
        one_by_one.append(lstm(g.reshape(1)))
    assert torch.allclose(together, torch.cat(one_by_one), atol=1e-6)
    model, example = architecture(resolve(RUNNER, "cpu")[1])
    assert model(example).shape == (1,)


def test_the_lstm_layer_is_an_lstm():
    """Against nn.LSTMCell with the same weights (PyTorch's gate order is input, forget, cell, output)."""
    torch.manual_seed(1)
    lstm = CoordinatewiseLSTM(hidden=5, layers=1, use_preprocess=False, scale=1.0)
    layer, cell = lstm.cells[0], nn.LSTMCell(1, 5)
    weight, bias = layer.gates.weight, layer.gates.bias        # rows (input, forget, output, cell)
    i, f, o, g = weight.split(5)
    bi, bf, bo, bg = bias.split(5)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.cat([i, f, g, o])[:, :1])
        cell.weight_hh.copy_(torch.cat([i, f, g, o])[:, 1:])
        cell.bias_ih.copy_(torch.cat([bi, bf, bg, bo]))
        cell.bias_hh.zero_()
    x = torch.randn(3, 1)
    h, c = torch.randn(3, 5), torch.randn(3, 5)
    expected = cell(x, (h, c))
    got = layer(x, h, c)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got, expected))


def _trajectory(make, reference, lr: float, steps: int = 5):
    """Rows of θ under our optimizer and under ``reference`` (a torch.optim class) on f(θ) = Σ a θ²."""
    a = torch.tensor([[0.5, 2.0, 4.0]])
    theta = torch.tensor([[1.0, -1.0, 0.5]])
    ours = make(torch.full((1, 1), lr))
    points = []
    for _ in range(steps):
        point = ours.point(theta)
        points.append(point)
        theta = ours.step(theta, 2 * a * point)
    param = torch.tensor([[1.0, -1.0, 0.5]], requires_grad=True)
    optimizer = reference([param])
    theirs = []
    for _ in range(steps):
        theirs.append(param.detach().clone())
        optimizer.zero_grad()
        (a * param * param).sum().backward()
        optimizer.step()
    return points, theirs, theta, param.detach()


def test_baselines_follow_torch_optim_with_torch7_defaults():
    _, _, theta, ref = _trajectory(SGD, lambda p: torch.optim.SGD(p, lr=0.1), 0.1)
    assert torch.allclose(theta, ref)
    _, _, theta, ref = _trajectory(RMSprop, lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.99, eps=1e-8), 0.01)
    assert torch.allclose(theta, ref, atol=1e-6)
    # torch.optim.Adam adds ε after the bias correction, Torch7 before: the same for ε = 1e-8 and these gradients.
    _, _, theta, ref = _trajectory(Adam, lambda p: torch.optim.Adam(p, lr=0.05, betas=(0.9, 0.999), eps=1e-8), 0.05)
    assert torch.allclose(theta, ref, atol=1e-6)
    # PyTorch's Nesterov SGD keeps the look-ahead point θ + μv as its parameters: our gradient points.
    points, theirs, _, _ = _trajectory(NAG, lambda p: torch.optim.SGD(p, lr=0.02, momentum=0.9, nesterov=True), 0.02)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(points, theirs))


def test_quadratic_loss_and_gradient_in_closed_form():
    generator = torch.Generator().manual_seed(0)
    problems = Quadratics.sample(3, 4, 0.01, generator)
    theta = torch.randn(3, 4, generator=generator)
    loss, gradient = value_and_grad(problems, theta, None)
    for row in range(3):
        w, y = problems.weights[row].double(), problems.targets[row].double()
        residual = w @ theta[row].double() - y
        assert loss[row].item() == pytest.approx(float(residual @ residual), rel=1e-5)
        assert torch.allclose(gradient[row].double(), 2 * w.T @ residual, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("sizes, activation", [((784, 6, 10), nn.Sigmoid), ((784, 5, 4, 10), nn.ReLU)])
def test_mlp_optimizee_matches_nn_sequential(sizes, activation):
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.rand(50, 784, generator=generator), torch.randint(10, (50,), generator=generator)
    name = "sigmoid" if activation is nn.Sigmoid else "relu"
    problems = MnistMLP.sample(images, labels, sizes, name, count=2, steps=3, batch_size=16, init_std=0.5,
                               generator=generator)
    assert problems.theta0.shape == (2, sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:])))
    batch = problems.batch(1)
    losses = problems.loss(problems.theta0, batch)
    for row in range(2):
        layers, offset = [], 0
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            linear = nn.Linear(n_in, n_out)
            with torch.no_grad():
                linear.weight.copy_(problems.theta0[row, offset:offset + n_in * n_out].reshape(n_in, n_out).T)
                offset += n_in * n_out
                linear.bias.copy_(problems.theta0[row, offset:offset + n_out])
                offset += n_out
            layers += [linear, activation()]
        net = nn.Sequential(*layers[:-1])
        expected = nn.functional.cross_entropy(net(images[batch[row]]), labels[batch[row]])
        assert losses[row].item() == pytest.approx(expected.item(), rel=1e-5)


class ScaledGradient(nn.Module):
    """A one-parameter stand-in for the LSTM: update = φ · g, in the LSTM's interface."""

    def __init__(self, phi: float) -> None:
        super().__init__()
        self.phi = nn.Parameter(torch.tensor(phi))

    def reset_state(self) -> None:
        pass

    def detach_state(self) -> None:
        pass

    def forward(self, gradients: torch.Tensor) -> torch.Tensor:
        return self.phi * gradients


def test_meta_gradient_is_truncated_and_drops_second_derivatives():
    """f(θ) = θ² from θ0 = 1, updates θ += φ g with g = 2θ, 2 steps per truncation of a 4-step run.

    With g treated as a constant (Sec. 2), the first truncation's meta-loss f(θ1) + f(θ2) has
    d/dφ = 2θ1 g0 + 2θ2 (g0 + g1); the second starts from θ2 with no memory of φ's earlier effect."""
    problem = Quadratics(torch.ones(1, 1, 1), torch.zeros(1, 1), torch.ones(1, 1))
    config = replace(resolve(RUNNER, "smoke")[1], steps=4, unroll=2)
    phi, lr = -0.1, 1.0
    optimizer_net = ScaledGradient(phi)
    meta_optimizer = torch.optim.SGD(optimizer_net.parameters(), lr=lr)
    mean = meta_train_epoch(optimizer_net, meta_optimizer, problem, config)

    theta0 = 1.0
    g0 = 2 * theta0
    theta1 = theta0 + phi * g0
    g1 = 2 * theta1
    theta2 = theta1 + phi * g1
    first = 2 * theta1 * g0 + 2 * theta2 * (g0 + g1)
    phi2 = phi - lr * first
    g2 = 2 * theta2
    theta3 = theta2 + phi2 * g2
    g3 = 2 * theta3
    theta4 = theta3 + phi2 * g3
    second = 2 * theta3 * g2 + 2 * theta4 * (g2 + g3)
    assert optimizer_net.phi.item() == pytest.approx(phi2 - lr * second, rel=1e-5)
    assert mean == pytest.approx((theta1 ** 2 + theta2 ** 2 + theta3 ** 2 + theta4 ** 2) / 4, rel=1e-5)


def test_horizon_height_is_the_mean_log_of_the_mean_curve():
    losses = torch.tensor([[9.0, 10.0, 1.0], [9.0, 990.0, 19.0]])   # mean curve 9, 500, 10
    assert horizon_log_loss(losses, 1, 2) == pytest.approx((math.log10(500) + 1) / 2)
    assert horizon_log_loss(torch.tensor([[1.0, float("nan")]]), 1, 1) == pytest.approx(30)


def _curves(run) -> dict[str, dict[str, int]]:
    return {plot["title"]: {label: len(xs) for label, xs, _ in plot["series"]} for plot in run.info["plots"]}


def test_smoke_on_real_mnist_every_optimizer_sees_the_same_problems(tmp_path):
    assert REAL_MNIST.is_dir(), f"{REAL_MNIST}: the shared MNIST copy must sit beside the checkout (../shared)"
    _, config = resolve(RUNNER, "smoke")
    runs = {}
    for seed in (0, 1):
        run = new_run(tmp_path / f"seed{seed}", REAL_MNIST, config)
        run.seed = seed
        final = main(config, run)
        run.close()
        runs[seed] = run
        assert set(final) == {"best_validation_final_loss", "margin_mnist", "margin_mnist_continued",
                              "margin_mnist_40_units", "margin_mnist_2_layers", "margin_mnist_relu"}
        assert all(math.isfinite(v) for v in final.values())
        assert run.dataset.name == "mnist-test-subset" and not run.dataset.synthetic
        comparisons = run.info["comparisons"]
        assert set(comparisons) == {"mnist", "mnist, steps 5-8", "mnist_40_units", "mnist_2_layers", "mnist_relu"}
        for name, result in comparisons.items():
            seen = result["problems_seen"]
            assert set(seen) == {"LSTM", "SGD", "RMSprop", "ADAM", "NAG"}
            assert all(prints == seen["LSTM"] for prints in seen.values()), name      # same θ0 and minibatches
            assert len(set(seen["LSTM"])) == config.test_problems                     # distinct problems
            assert final[f"margin_{name}" if "steps" not in name else "margin_mnist_continued"] == result["margin"]
        # The 40-unit and 2-layer networks start elsewhere (other sizes) but read the base problems' minibatches
        # ... and every optimizer's curve covers the same steps: the same budget.
        for title, lengths in _curves(run).items():
            assert len(set(lengths.values())) == 1 and len(lengths) == 5, title
        assert _curves(run)["mnist: mean loss over the test problems"]["LSTM"] == config.steps
        assert all(p["log"] is True for p in run.info["plots"])
        assert len(run.epoch_metrics) == config.epochs // config.eval_every
    # Another seed, other test problems.
    assert set(runs[0].info["comparisons"]["mnist"]["problems_seen"]["LSTM"]).isdisjoint(
        runs[1].info["comparisons"]["mnist"]["problems_seen"]["LSTM"])


def test_quadratic_run_sets_its_own_task_family_as_the_dataset(tmp_path):
    _, config = resolve(RUNNER, "cpu-quadratic", ["epochs=2", "eval_every=1", "steps=4", "unroll=2",
                                                  "validation_problems=4", "test_problems=5"])
    run = new_run(tmp_path / "q", None, config)
    final = main(config, run)
    run.close()
    other = new_run(tmp_path / "q1", None, config)
    other.seed = 1
    main(config, other)
    other.close()
    # One task family for every seed (the seeds of an experiment share it), other test problems per seed.
    assert other.dataset.fingerprint == run.dataset.fingerprint and other.dataset.detail != run.dataset.detail
    assert set(final) == {"best_validation_final_loss", "margin_quadratic"}
    assert run.dataset.name == "quadratic-10d" and not run.dataset.synthetic
    table = run.info["comparisons"]["quadratic"]["optimizers"]
    assert set(table) == {"LSTM", "SGD", "RMSprop", "ADAM", "NAG"}
    assert all(table[o]["lr"] in config.lr_grid for o in table if o != "LSTM")
    strongest = run.info["comparisons"]["quadratic"]["strongest_baseline"]
    assert final["margin_quadratic"] == pytest.approx(table[strongest]["horizon_log10_loss"]
                                                      - table["LSTM"]["horizon_log10_loss"])


def test_bad_settings_and_missing_mnist_are_one_clear_line(tmp_path):
    with pytest.raises(BadInput, match="steps=30 must be a multiple of unroll=20"):
        resolve(RUNNER, "cpu", ["steps=30"])
    with pytest.raises(BadInput, match="task='cifar'"):
        resolve(RUNNER, "cpu", ["task=cifar"])
    _, config = resolve(RUNNER, "smoke")
    with pytest.raises(BadInput, match="t10k-images-idx3-ubyte"):
        main(config, new_run(tmp_path / "a", tmp_path / "nowhere", config))
    write_mnist(tmp_path / "mnist", n_train=50, n_test=10)
    with pytest.raises(BadInput, match="validation_size=100"):
        main(config, new_run(tmp_path / "b", tmp_path / "mnist", config))


def test_cpu_presets_are_the_papers_setting(tmp_path):
    paper, cpu, quadratic = (resolve(RUNNER, name)[1] for name in ("paper", "cpu", "cpu-quadratic"))
    assert (paper.steps, paper.unroll, paper.lstm_hidden, paper.lstm_layers, paper.batch_size, paper.mlp_hidden,
            paper.activation, paper.preprocess_p, paper.output_scale) == (100, 20, 20, 2, 128, 20, "sigmoid", 10.0, 0.1)
    assert (paper.epochs, paper.eval_every, paper.validation_problems) == (10000, 1000, 20)
    differs = {f for f in vars(paper) if getattr(paper, f) != getattr(cpu, f)}
    assert differs <= {"meta_lr", "epochs", "eval_every", "validation_problems", "test_problems"}
    assert (quadratic.task, quadratic.preprocess, quadratic.output_scale, quadratic.quadratic_dims) == (
        "quadratic", False, 1.0, 10)


def test_smoke_through_kb_reproduce_with_the_shipped_claims(kb, kb_env, tmp_path):
    run = smoke_through_cli(kb, kb_env, tmp_path, "learning-to-learn", "learning-to-learn")
    verdicts = run["verdicts"]
    assert {v["metric"] for v in verdicts} >= {"margin_mnist", "margin_mnist_relu"}
    # 4-step problems are not the paper's 100-step ones: shown beside the claims, not judged.
    assert all(v["verdict"] == "not comparable" for v in verdicts)
    assert any("steps=100" in v["reason"] for v in verdicts)
