"""The WANN runner: a hand-built genome's forward pass by hand, the vectorised evaluation against a
plain node-by-node loop, the operators keep networks feed-forward, the ranking on a hand-made
population, the preprocessing, and a smoke search end to end on the real MNIST (interrupt and
resume: tests/test_runner_registry.py)."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from kb.runs.config import resolve
from runners.wann import RUNNER
from runners.wann import data as wann_data
from runners.wann import genome as genes
from runners.wann import network, search
from runners.wann.config import ACTIVATIONS
from runners.wann.model import WannNet
from tests.test_runner_registry import new_run

MNIST = Path(__file__).parents[1].parent / "shared/datasets/mnist"
A = {name: i for i, name in enumerate(ACTIVATIONS)}


def hand_built() -> genes.Genome:
    """2 inputs (+ bias node 0), 2 outputs (nodes 3, 4), hidden node 5 (tanh) and 6 (Gaussian):
    x1 -> 5, x2 -> 5, 5 -> 6, 6 -> out3, bias -> out3, x1 -> out4, 5 -> out4, and a disabled x2 -> out4."""
    activation = np.array([0, 0, 0, 0, 0, A["tanh"], A["gaussian"]])
    source = np.array([1, 2, 5, 6, 0, 1, 5, 2])
    target = np.array([5, 5, 6, 3, 3, 4, 4, 4])
    enabled = np.array([1, 1, 1, 1, 1, 1, 1, 0], dtype=bool)
    return genes.Genome(2, 2, activation, source, target, enabled)


def test_hand_built_genome_forward_pass_by_hand():
    genome = hand_built()
    assert genome.layer.tolist() == [0, 0, 0, 3, 3, 1, 2] and genome.connections == 7
    x1, x2 = 0.5, -0.25
    inputs = network.with_bias(np.array([[x1, x2]]))
    got = network.forward(network.stack([genome]), inputs, np.array([2.0, -1.0]))[0]
    for i, w in enumerate((2.0, -1.0)):
        h5 = math.tanh(w * (x1 + x2))
        h6 = math.exp(-(w * h5) ** 2 / 2)
        out3, out4 = w * (h6 + 1.0), w * (x1 + h5)   # linear outputs; the disabled x2 -> out4 is left out
        assert got[i, 0].tolist() == pytest.approx([out3, out4], rel=1e-6)


def test_log_likelihood_is_the_negative_cross_entropy():
    logits = np.array([[[1.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])      # 1 weight, 2 images, 3 classes
    labels = np.array([1, 2])
    first = 2.0 - math.log(math.e + math.e ** 2 + 1.0)
    assert network.log_likelihood(logits, labels)[0] == pytest.approx((first + math.log(1 / 3)) / 2)


def plain_loop(genome: genes.Genome, pixels: np.ndarray, weight: float) -> np.ndarray:
    """A second implementation: one image, one weight, nodes one at a time in any topological order,
    every input summed from the enabled connection genes."""
    functions = {"linear": lambda x: x, "step": lambda x: float(x > 0), "sin": lambda x: math.sin(math.pi * x),
                 "gaussian": lambda x: math.exp(-x * x / 2), "tanh": math.tanh,
                 "sigmoid": lambda x: 1 / (1 + math.exp(-x)), "inverse": lambda x: -x, "abs": abs,
                 "relu": lambda x: max(x, 0.0), "cos": lambda x: math.cos(math.pi * x)}
    value = {0: 1.0, **{i + 1: float(p) for i, p in enumerate(pixels)}}
    pending = list(range(genome.n_in, genome.n_nodes))
    while pending:
        for node in pending:
            incoming = [int(s) for s, t, e in zip(genome.source, genome.target, genome.enabled) if t == node and e]
            if all(s in value for s in incoming):
                value[node] = functions[ACTIVATIONS[genome.activation[node]]](weight * sum(value[s] for s in incoming))
                pending.remove(node)
                break
        else:
            raise AssertionError("no node could be evaluated: not feed-forward")
    return np.array([value[genome.n_in + k] for k in range(genome.n_outputs)])


def grown_population(size: int, steps: int, seed: int) -> list[genes.Genome]:
    """Small random networks (4x4 inputs) grown by the operators, all kinds of change mixed."""
    from runners.wann.config import Config

    config = Config(activations=ACTIVATIONS, prob_add_connection=0.3, prob_add_node=0.3, prob_enable=0.1,
                    prob_change_activation=0.3)
    rng = np.random.RandomState(seed)
    population = []
    for _ in range(size):
        genome = genes.minimal(16, 10, 0.2, rng)
        for _ in range(rng.randint(steps)):
            genome = genes.mutate(genome, config, rng)
        population.append(genome)
    return population


def test_vectorised_population_evaluation_equals_a_plain_loop():
    population = grown_population(6, 25, seed=1)
    assert any(len(g.hidden) >= 3 for g in population)
    rng = np.random.RandomState(2)
    pixels = rng.random_sample((5, 16))
    weights = np.array([-2.0, -0.5, 1.0, 2.0])
    stacked = network.forward(network.stack(population), network.with_bias(pixels), weights)
    for genome, got in zip(population, stacked):
        for w_index, w in enumerate(weights):
            for image in range(len(pixels)):
                expected = plain_loop(genome, pixels[image], w)
                np.testing.assert_allclose(got[w_index, image], expected, rtol=2e-4, atol=2e-4)
    # Split over two worker processes, the population's scores are the same numbers.
    labels = rng.randint(10, size=len(pixels))
    alone = search.population_fitness(population, network.with_bias(pixels), labels, weights)
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(2) as pool:
        split = search.population_fitness(population, network.with_bias(pixels), labels, weights, pool, 2)
    np.testing.assert_array_equal(alone, split)
    # Stacked one network at a time (the smallest groups), the numbers agree too.
    one_by_one = np.concatenate([network.log_likelihood(network.forward(network.stack(g), network.with_bias(pixels),
                                                                        weights), labels)
                                 for g in network.groups(population, max_nodes=1)])
    np.testing.assert_allclose(one_by_one, alone, rtol=1e-6)
    # The torch module with every weight at w computes the same outputs (it is what trained weights start from).
    net = WannNet(population[0], -0.5)
    with torch.no_grad():
        torch_out = net(torch.from_numpy(pixels.astype(np.float32))).numpy()
    numpy_out = network.forward(network.stack(population[:1]), network.with_bias(pixels), np.array([-0.5]))[0, 0]
    np.testing.assert_allclose(torch_out, numpy_out, rtol=1e-5, atol=1e-5)


def is_acyclic(genome: genes.Genome) -> bool:
    """Kahn's algorithm over every connection gene (enabled or not)."""
    indegree = np.bincount(genome.target, minlength=genome.n_nodes)
    ready = [n for n in range(genome.n_nodes) if indegree[n] == 0]
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for t in genome.target[genome.source == node]:
            indegree[t] -= 1
            if indegree[t] == 0:
                ready.append(int(t))
    return seen == genome.n_nodes


def test_operators_keep_the_network_feed_forward_with_inputs_and_outputs_intact():
    population = grown_population(20, 60, seed=3)
    for genome in population:
        assert is_acyclic(genome)
        assert genome.n_nodes >= genome.n_in + genome.n_outputs
        assert not np.isin(genome.target, np.arange(genome.n_in)).any()          # nothing feeds an input
        outputs = np.arange(genome.n_in, genome.n_in + genome.n_outputs)
        assert not np.isin(genome.source, outputs).any()                         # outputs feed nothing
        assert (genome.activation[:genome.n_in + genome.n_outputs] == 0).all()   # inputs, outputs stay linear
        pairs = list(zip(genome.source.tolist(), genome.target.tolist()))
        assert len(pairs) == len(set(pairs))                                     # no duplicate connection
    # Re-enabling every disabled gene keeps it acyclic too (layers count disabled genes).
    genome = max(population, key=lambda g: len(g.hidden))
    everything = genes.Genome(genome.n_inputs, genome.n_outputs, genome.activation, genome.source, genome.target,
                              np.ones_like(genome.enabled))
    assert is_acyclic(everything) and len(network.stack([everything]).kinds) == everything.n_nodes - everything.n_in


def test_insert_node_splits_a_connection_and_add_connection_goes_forward():
    genome = hand_built()
    rng = np.random.RandomState(0)
    split = genes.insert_node(genome, np.array([A["relu"]]), rng)
    new = genome.n_nodes
    (was,) = np.flatnonzero(genome.enabled & ~split.enabled[:len(genome.enabled)])
    a, b = genome.source[was], genome.target[was]
    assert split.activation[new] == A["relu"]
    assert [(int(s), int(t)) for s, t in zip(split.source[-2:], split.target[-2:])] == [(a, new), (new, b)]
    assert split.connections == genome.connections + 1
    for seed in range(20):
        added = genes.add_connection(genome, np.random.RandomState(seed))
        s, t = added.source[-1], added.target[-1]
        assert genome.layer[t] > genome.layer[s] and (s, t) not in set(zip(genome.source, genome.target))


def test_ranking_of_a_hand_made_population():
    # mean, best, connections of six networks
    mean = np.array([-1.0, -2.0, -1.0, -3.0, -0.5, -2.0])
    best = np.array([-0.5, -0.1, -0.8, -2.5, -0.4, -1.0])
    connections = np.array([10, 2, 4, 1, 40, 0])
    # (mean, 1/connections), with net 5's 0 connections counted as 1 (the released code's rule):
    #   0 (-1, 1/10), 1 (-2, 1/2), 2 (-1, 1/4), 3 (-3, 1), 4 (-0.5, 1/40), 5 (-2, 1).
    #   2 dominates 0; 5 dominates 1 and 3; nothing dominates 4, 2 or 5: front 1 = {2, 4, 5}.
    #   Among 0, 1, 3 each trades mean against connections: front 2 = {0, 1, 3}.
    #   Crowding, front 1 sorted by mean 5, 2, 4 (and by 1/connections 4, 2, 5): 5 and 4 are ends
    #   (infinite, by index: 4 then 5), then 2. Front 2 sorted by mean 3, 1, 0: ends 0 and 3, then 1.
    order = search.rank(search.objectives(mean, best, connections, complexity=True))
    assert order.tolist() == [4, 5, 2, 0, 3, 1]
    # (mean, best): 4 (-0.5, -0.4) dominates 0, 2, 3, 5; 1 keeps the best max (-0.1): front 1 = {1, 4}
    # (both ends: by index). Then 0 (-1, -0.5) dominates 2, 5, 3; then 2 dominates 5 and 3; then 5, then 3.
    order = search.rank(search.objectives(mean, best, connections, complexity=False))
    assert order.tolist() == [1, 4, 0, 2, 5, 3]


def test_crowding_distance_by_hand():
    front = np.array([[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]])
    # interior points: (next - previous) / range on each objective: (3 - 0) / 4 + (4 - 1) / 4 = 1.5 for both
    distance = search.crowding_distance(front)
    assert distance.tolist() == [math.inf, 1.5, 1.5, math.inf]


def test_next_generation_keeps_elites_and_draws_children_from_the_pool():
    from runners.wann.config import Config

    config = Config(population=10, cull_ratio=0.2, elite_ratio=0.25, tournament=3)
    population = [genes.minimal(4, 10, 0.5, np.random.RandomState(i)) for i in range(10)]
    order = np.array([3, 1, 4, 0, 5, 9, 2, 6, 8, 7])
    children = search.next_generation(population, order, config, np.random.RandomState(0))
    # 2 culled (floor 0.2 * 10) leave a pool of 8; floor(0.25 * 8) = 2 elites passed unchanged
    assert len(children) == 10 and children[0] is population[3] and children[1] is population[1]
    culled = {id(population[8]), id(population[7])}
    assert all(id(c) not in culled for c in children)


def test_deskew_straightens_a_slanted_bar():
    image = np.zeros((1, 16, 16))
    for row in range(2, 14):             # one pixel a row, drifting right by half a pixel per row going down
        column = 4 + 0.5 * row
        left = int(column)
        image[0, row, left] += 1 - (column - left)
        image[0, row, left + 1] += column - left
    straight = wann_data.deskew(image)[0]
    rows, cols = np.mgrid[0:16, 0:16]
    centres = [(straight[r] * cols[r]).sum() / straight[r].sum() for r in range(2, 14)]
    assert max(centres) - min(centres) < 0.05 and straight.sum() == pytest.approx(image.sum(), rel=1e-6)


def test_resize_samples_at_half_pixel_centres_like_opencv():
    images = torch.zeros(1, 28, 28, dtype=torch.uint8)
    images[0, :, 13:] = 255                      # columns 13.. white
    small = wann_data.resize(images, 16)[0]
    # output column c reads source column 28 / 16 * (c + 0.5) - 0.5: c = 6 -> 10.875 (black),
    # c = 7 -> 12.625 (0.625 of the way from black column 12 to white 13), c = 8 -> 14.375 (white)
    assert (small[:, :7] == 0).all() and np.allclose(small[:, 7], 0.625) and (small[:, 8:] == 1).all()


def test_smoke_search_on_the_real_mnist(tmp_path):
    _, config = resolve(RUNNER, "smoke")
    run = new_run(tmp_path / "run", MNIST, config)
    final = main_of_runner()(config, run)
    run.close()
    assert run.dataset.name == "mnist-test-subset"
    for key in ("random_weight_accuracy", "ensemble_accuracy", "tuned_weight_accuracy", "trained_weights_accuracy"):
        assert 0 <= final[key] <= 100
    plots = {p["title"]: p for p in run.info["plots"]}
    (label, xs, ys), _ = plots["Champion's test accuracy against the shared weight"]["series"]
    assert len(xs) == config.test_weights and np.mean(ys) == pytest.approx(final["random_weight_accuracy"])
    assert xs == pytest.approx([-2 + 4 * (i + 0.5) / config.test_weights for i in range(config.test_weights)])
    # The champion saved with the run, run by the torch module (a second implementation) at the tuned
    # weight on the same 100 test images, scores the reported tuned-weight accuracy.
    import json

    from runners.mnist import data as mnist

    champion = genes.Genome.from_state(json.loads((tmp_path / "run" / "champion.json").read_text()))
    assert champion.connections == final["champion_connections"]
    test = mnist.load(config, MNIST)
    pixels = torch.from_numpy(wann_data.inputs(test.test_images, 16, True))
    with torch.no_grad():
        predicted = WannNet(champion, run.info["tuned_weight"])(pixels).argmax(1)
    assert 100.0 * (predicted == test.test_labels.long()).double().mean().item() == pytest.approx(
        final["tuned_weight_accuracy"])


def main_of_runner():
    from runners.wann.train import main

    return main


def test_cpu_preset_is_not_comparable_and_the_paper_preset_meets_every_claim():
    import yaml

    from kb.runs.config import to_dict
    from kb.runs.verdict import applies, judge_all

    claims = yaml.safe_load((Path(__file__).parents[1] / "papers/wann/paper.yaml").read_text())["claims"]
    assert {c["metric"]: c["value"] for c in claims} == {
        "ensemble_accuracy": 91.6, "random_weight_accuracy": 82.0, "random_weight_accuracy_sd": 18.7,
        "tuned_weight_accuracy": 91.9, "trained_weights_accuracy": 94.2}
    _, paper = resolve(RUNNER, "paper")
    assert (paper.population, paper.generations, paper.search_batch, paper.tournament) == (960, 4096, 1000, 32)
    assert all(applies(c, to_dict(paper)) for c in claims)
    _, cpu = resolve(RUNNER, "cpu")
    final = {c["metric"]: 50.0 for c in claims}
    verdicts = judge_all(claims, config=to_dict(cpu), final=final, dataset="mnist-test", synthetic=False,
                         device_name="cpu")
    assert len(verdicts) == 5 and {v["verdict"] for v in verdicts} == {"not comparable"}
    assert all("generations=4096" in v["reason"] and f"generations={cpu.generations}" in v["reason"]
               and "population" not in v["reason"] for v in verdicts)


def test_missing_data_and_a_batch_larger_than_the_training_set_are_one_line_errors(tmp_path):
    from dataclasses import replace

    from kb.errors import BadInput, KBError
    from runners.wann.train import main

    _, config = resolve(RUNNER, "smoke")
    with pytest.raises(KBError, match="t10k-images-idx3-ubyte"):
        main(config, new_run(tmp_path / "a", tmp_path / "nowhere", config))
    small = replace(config, train_limit=50)
    with pytest.raises(BadInput, match="search_batch=100 is more than the 50 training images"):
        main(small, new_run(tmp_path / "b", MNIST, small))
