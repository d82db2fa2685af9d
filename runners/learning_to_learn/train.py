"""Meta-train the coordinatewise LSTM optimizer, keep the best on validation problems, and compare it with
tuned SGD, RMSprop, ADAM and NAG on fresh test problems.

Learning to learn by gradient descent by gradient descent, arXiv:1606.04474. Sec. 2: the optimizer's
parameters φ are trained with ADAM on the sum of the optimizee's losses over its trajectory (Eq. 3 with
w_t = 1), back-propagated through the unrolled optimisation, truncated every 20 steps of a 100-step run,
with the gradient fed to the optimizer treated as a constant (no second derivatives). Sec. 3: the best
optimizer by final validation loss is kept; each baseline's learning rate is the one with the best final
loss on the problem family; everyone is judged on the same freshly drawn test problems.
"""

import copy
import hashlib
import math

import torch

from kb.errors import BadInput
from runners.learning_to_learn.baselines import BASELINES
from runners.learning_to_learn.config import Config
from runners.learning_to_learn.model import CoordinatewiseLSTM
from runners.learning_to_learn.optimizee import MnistMLP, Quadratics
from runners.mnist import data as mnist

SPLITS = {"train": 0, "validation": 1, "test": 2}


def generator(seed: int, split: str, index: int) -> torch.Generator:
    """The random stream of one problem (or batch of problems): a function of the run's seed, the split and
    the index only, so a resumed run and every optimizer draw exactly the same problems."""
    return torch.Generator().manual_seed(seed * 1_000_003 + SPLITS[split] * 100_003 + index)


def problems_digest(problems: Quadratics) -> str:
    """Short sha256 of quadratics' W, y and θ0."""
    digest = hashlib.sha256()
    for tensor in (problems.weights, problems.targets, problems.theta0):
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()[:16]


def value_and_grad(problem, theta: torch.Tensor, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's loss (B,) and gradient (B, P) at ``theta``, outside any meta-graph."""
    with torch.enable_grad():
        theta = theta.detach().requires_grad_()
        loss = problem.loss(theta, batch)
        (gradient,) = torch.autograd.grad(loss.sum(), theta)
    return loss.detach(), gradient


class Learned:
    """The meta-trained LSTM in the baselines' interface (no meta-gradient: evaluation only)."""

    def __init__(self, lstm: CoordinatewiseLSTM) -> None:
        self.lstm = lstm
        lstm.reset_state()

    def point(self, theta: torch.Tensor) -> torch.Tensor:
        return theta

    def step(self, theta: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
        return theta + self.lstm(gradient.flatten()).view_as(theta)


def optimize(problem, optimizer, steps: int) -> tuple[torch.Tensor, list[str]]:
    """Run ``optimizer`` for ``steps`` steps on every row of ``problem``.

    Returns:
        the loss of each row at θ_0 .. θ_steps, (B, steps + 1), each on the minibatch of its step; and a
        fingerprint per row of everything its losses read (θ_0, the problem's constants, each step's
        minibatch indices), so that who saw which problem can be checked afterwards.
    """
    theta = problem.theta0.clone()
    digests = [hashlib.sha256(theta[row].numpy().tobytes()) for row in range(len(theta))]
    for constant in problem.constants():
        for row, digest in enumerate(digests):
            digest.update(constant[row].numpy().tobytes())
    losses = []
    with torch.no_grad():
        for t in range(steps + 1):
            batch = problem.batch(t)
            if batch is not None:
                for row, digest in enumerate(digests):
                    digest.update(batch[row].numpy().tobytes())
            if t == steps:
                losses.append(problem.loss(theta, batch))
                break
            point = optimizer.point(theta)
            loss, gradient = value_and_grad(problem, point, batch)
            if point is not theta:          # NAG: the curve is the loss at θ_t, the gradient at the look-ahead
                loss = problem.loss(theta, batch)
            losses.append(loss)
            theta = optimizer.step(theta, gradient)
    return torch.stack(losses, 1), [d.hexdigest()[:16] for d in digests]


def meta_train_epoch(lstm: CoordinatewiseLSTM, meta_optimizer: torch.optim.Optimizer, problem, config: Config) -> float:
    """One optimisation of ``problem`` by the LSTM, with an ADAM step on φ after every ``unroll`` steps.

    The meta-loss of a truncation is the sum of the mean (over rows) optimizee loss at each θ it produced,
    θ_{s+1} .. θ_{s+unroll}; the gradient input is detached (Sec. 2: second derivatives dropped), and θ and
    the LSTM state are cut from the graph between truncations. Returns the mean of those losses.
    """
    lstm.reset_state()
    theta, total = problem.theta0, 0.0
    for start in range(0, config.steps, config.unroll):
        theta = theta.detach().requires_grad_()
        lstm.detach_state()
        meta_loss = 0.0
        for t in range(start, start + config.unroll):
            loss = problem.loss(theta, problem.batch(t))
            if t > start:
                meta_loss = meta_loss + loss.mean()
            (gradient,) = torch.autograd.grad(loss.sum(), theta, retain_graph=t > start)
            theta = theta + lstm(gradient.detach().flatten()).view_as(theta)
        meta_loss = meta_loss + problem.loss(theta, problem.batch(start + config.unroll)).mean()
        meta_optimizer.zero_grad(set_to_none=True)
        meta_loss.backward()
        meta_optimizer.step()
        total += meta_loss.item()
    return total / config.steps


def horizon_log_loss(losses: torch.Tensor, first: int, last: int) -> float:
    """Mean over steps first..last of log10 of the loss averaged over the test problems: the height of a
    curve in the paper's log-scale loss plots. A diverged run counts as a loss of 1e30."""
    curve = torch.nan_to_num(losses[:, first:last + 1].double().mean(0), nan=1e30, posinf=1e30).clamp_min(1e-30)
    return float(curve.log10().mean())


def final_loss(losses: torch.Tensor, step: int) -> float:
    value = float(losses[:, step].double().mean())
    return value if math.isfinite(value) else math.inf


def compare(name: str, lstm_run: tuple, baseline_runs: dict, grid: tuple[float, ...], first: int, last: int,
            run) -> float:
    """The LSTM against each baseline at its best rate, over steps first..last; records the table, the
    curves and who saw which problems. Returns the margin: the best baseline's ``horizon_log_loss`` minus
    the LSTM's (decades; positive when the learned optimizer's curve lies below every baseline's)."""
    lstm_losses, lstm_prints = lstm_run
    lstm_height = horizon_log_loss(lstm_losses, first, last)
    table = {"LSTM": {"horizon_log10_loss": lstm_height, "final_loss": final_loss(lstm_losses, last)}}
    curves = {"LSTM": lstm_losses}
    seen = {"LSTM": lstm_prints}
    for optimizer, (losses, prints) in baseline_runs.items():
        finals = [final_loss(block, last) for block in losses]          # the paper's tuning: best final loss
        best = min(range(len(grid)), key=lambda i: finals[i])
        table[optimizer] = {"lr": grid[best], "horizon_log10_loss": horizon_log_loss(losses[best], first, last),
                            "final_loss": finals[best]}
        curves[f"{optimizer} (lr {grid[best]:g})"] = losses[best]
        seen[optimizer] = prints[best]
    strongest = min((o for o in table if o != "LSTM"), key=lambda o: table[o]["horizon_log10_loss"])
    margin = table[strongest]["horizon_log10_loss"] - lstm_height
    steps = list(range(first, last + 1))
    run.plot(f"{name}: mean loss over the test problems", xlabel="optimizee step", ylabel="loss", log=True,
             series={label: (steps, [float(v) for v in losses[:, first:last + 1].double().mean(0)])
                     for label, losses in curves.items()})
    results = dict(run.info.get("comparisons", {}))
    results[name] = {"steps": [first, last], "optimizers": table, "strongest_baseline": strongest, "margin": margin,
                     "problems_seen": seen}
    run.record(comparisons=results)
    return margin


def run_all(problem, lstm: CoordinatewiseLSTM, grid: tuple[float, ...], steps: int) -> tuple[tuple, dict]:
    """The LSTM and every baseline under every rate of ``grid`` on the same problems for ``steps`` steps:
    ((losses, prints), {baseline: (losses per rate (R, B, steps + 1), prints per rate)})."""
    count = len(problem.theta0)
    lstm_run = optimize(problem, Learned(lstm), steps)
    repeated = problem.repeat(len(grid))
    rates = torch.tensor(grid, dtype=torch.float32).repeat_interleave(count).unsqueeze(1)
    baseline_runs = {}
    for optimizer, make in BASELINES.items():
        losses, prints = optimize(repeated, make(rates), steps)
        per_rate = [prints[i * count:(i + 1) * count] for i in range(len(grid))]
        if any(p != lstm_run[1] for p in per_rate):
            raise RuntimeError(f"{optimizer} did not see the LSTM's problems")  # a bug, never the user's input
        baseline_runs[optimizer] = (losses.view(len(grid), count, steps + 1), per_rate)
    return lstm_run, baseline_runs


def mnist_tensors(config: Config, run) -> tuple:
    """Images in [0, 1] as (N, 784) floats and labels: the training images the optimizer is meta-trained
    on, the held-out ones its validation problems read, and the test images its test problems read (as
    the released evaluate.py trains the test networks on MNIST's test set)."""
    data = mnist.load(config, run.data_dir)
    mnist.record_dataset(run, data)
    fit = len(data.train_labels) - config.validation_size
    if fit <= 0:
        raise BadInput(f"validation_size={config.validation_size} must be below the {len(data.train_labels)} "
                       "training images")
    images = data.train_images.reshape(len(data.train_labels), -1).float() / 255
    labels = data.train_labels.long()
    test_images = data.test_images.reshape(len(data.test_labels), -1).float() / 255
    return ((images[:fit], labels[:fit]), (images[fit:], labels[fit:]), (test_images, data.test_labels.long()))


def main(config: Config, run) -> dict[str, float]:
    if config.task == "mnist":
        train_set, validation_set, test_set = mnist_tensors(config, run)
        sizes = (784, *[config.mlp_hidden] * config.mlp_layers, 10)

        def problems(split: str, index: int, count: int, steps: int, images_labels, **change) -> MnistMLP:
            shape = {"hidden": config.mlp_hidden, "layers": config.mlp_layers, "activation": config.activation,
                     **change}
            net = (784, *[shape["hidden"]] * shape["layers"], 10)
            return MnistMLP.sample(*images_labels, net, shape["activation"], count=count, steps=steps,
                                   batch_size=config.batch_size, init_std=config.init_std,
                                   generator=generator(run.seed, split, index))

        def train_problem(epoch: int) -> MnistMLP:
            return problems("train", epoch, 1, config.steps, train_set)

        validation = problems("validation", 0, config.validation_problems, config.steps, validation_set)
        run.record(optimizee=f"MLP {'-'.join(map(str, sizes))} ({config.activation}), "
                             f"{MnistMLP.parameter_count(sizes)} parameters, minibatches of {config.batch_size}")
    else:
        def quadratics(split: str, index: int, count: int) -> Quadratics:
            return Quadratics.sample(count, config.quadratic_dims, config.init_std, generator(run.seed, split, index))

        def train_problem(epoch: int) -> Quadratics:
            return quadratics("train", epoch, config.quadratic_batch)

        validation = quadratics("validation", 0, config.validation_problems)
        test = quadratics("test", 0, config.test_problems)
        # The data is the task family, the same for every seed (as MNIST's files are): its fingerprint is
        # that of the first test problem seed 0 draws, which changes only with the generator or the family.
        reference = Quadratics.sample(1, config.quadratic_dims, config.init_std, generator(0, "test", 0))
        run.set_dataset(f"quadratic-{config.quadratic_dims}d", fingerprint=problems_digest(reference),
                        detail=f"f(θ) = ||Wθ - y||², W, y ~ N(0, 1); this seed's {config.test_problems} test problems: "
                               f"{problems_digest(test)}")
        run.record(optimizee=f"{config.quadratic_dims}-d quadratics, {config.quadratic_batch} per meta-training epoch")

    lstm = CoordinatewiseLSTM.from_config(config)
    meta_optimizer = torch.optim.Adam(lstm.parameters(), lr=config.meta_lr)
    run.record(optimizer_parameters=sum(p.numel() for p in lstm.parameters()),
               meta_training=f"{config.epochs} epochs x {config.steps // config.unroll} truncations of "
                             f"{config.unroll} steps, ADAM lr {config.meta_lr}",
               baseline_lr_grid=list(config.lr_grid),
               differs_from_paper=differences(config))

    epoch0, history = 0, []
    best = {"validation_loss": math.inf, "epoch": 0, "lstm": copy.deepcopy(lstm.state_dict())}
    state = run.resume_state()
    if state is not None:
        lstm.load_state_dict(state["lstm"])
        meta_optimizer.load_state_dict(state["meta_optimizer"])
        epoch0, history, best = state["epoch"], state["history"], state["best"]

    def snapshot(epoch: int) -> dict:
        return {"epoch": epoch, "history": history, "best": best, "lstm": lstm.state_dict(),
                "meta_optimizer": meta_optimizer.state_dict()}

    rows = config.quadratic_batch if config.task == "quadratic" else 1
    run.start(total_steps=config.epochs, epochs=config.epochs // config.eval_every, step=epoch0)
    for epoch in range(epoch0, config.epochs):
        run.check_interrupt(lambda: snapshot(epoch))
        mean_loss = meta_train_epoch(lstm, meta_optimizer, train_problem(epoch), config)
        run.log(epoch + 1, samples=rows * config.steps, meta_loss=mean_loss)
        if (epoch + 1) % config.eval_every == 0:
            validation_losses, _ = optimize(validation, Learned(lstm), config.steps)
            validation_loss = final_loss(validation_losses, config.steps)
            if validation_loss < best["validation_loss"]:
                best = {"validation_loss": validation_loss, "epoch": epoch + 1,
                        "lstm": copy.deepcopy(lstm.state_dict())}
            history.append({"epoch": epoch + 1, "validation_loss": validation_loss})
            run.log_epoch((epoch + 1) // config.eval_every, validation_final_loss=validation_loss,
                          best_validation_final_loss=best["validation_loss"])
            run.checkpoint(snapshot(epoch + 1))

    lstm.load_state_dict(best["lstm"])
    lstm.eval()
    run.record(best_epoch=best["epoch"], validation_history=history)
    final = {"best_validation_final_loss": best["validation_loss"]}
    grid = tuple(config.lr_grid)
    if config.task == "quadratic":
        final["margin_quadratic"] = compare("quadratic", *run_all(test, lstm, grid, config.steps), grid,
                                            1, config.steps, run)
        return final

    longer = 2 * config.steps if config.variants else config.steps
    lstm_run, baseline_runs = run_all(problems("test", 0, config.test_problems, longer, test_set), lstm, grid, longer)
    final["margin_mnist"] = compare("mnist", lstm_run, baseline_runs, grid, 1, config.steps, run)
    if not config.variants:
        return final
    final["margin_mnist_continued"] = compare(f"mnist, steps {config.steps + 1}-{longer}", lstm_run, baseline_runs,
                                              grid, config.steps + 1, longer, run)
    variants = {"mnist_40_units": {"hidden": 40}, "mnist_2_layers": {"layers": 2}, "mnist_relu": {"activation": "relu"}}
    for name, change in variants.items():
        test = problems("test", 0, config.test_problems, config.steps, test_set, **change)
        final[f"margin_{name}"] = compare(name, *run_all(test, lstm, grid, config.steps), grid, 1, config.steps, run)
    return final


def differences(config: Config) -> list[str]:
    """What this run does otherwise than the paper's recipe, in words, for the run record."""
    said = ["baselines' learning rates: the best final test loss over the grid (the paper tuned them per problem "
            "family, its grid unstated)",
            "test problems train on MNIST's test images, validation problems on the last training images "
            "(the released evaluate.py / train.py)"]
    if config.meta_lr != 0.001:
        said.append(f"meta-training ADAM learning rate {config.meta_lr} (released code: 0.001)")
    if config.epochs < 10000:
        said.append(f"meta-training budget: {config.epochs} epochs, validated every {config.eval_every} on "
                    f"{config.validation_problems} problems (released code: 10000, every 1000, on 20)")
    return said
