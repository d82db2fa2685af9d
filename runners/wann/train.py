"""Search a weight agnostic network for MNIST, then test the champion as the paper's table does.

Weight Agnostic Neural Networks, arXiv:1906.04358. Sec. 3: the search (runners/wann/search.py).
Sec. 4.2 and its table "Classification Accuracy on MNIST": the champion on the 10k test images with
a random shared weight (mean and spread over U(-2, 2), here its ``test_weights`` quantiles), with the
ensemble of those weights (one vote each), with the single weight that is best on the training set
("tuned"), and with individually trained weights (Adam from the tuned weight; the paper's appendix
says it tried autograd and black-box optimisers and does not print their settings).

Random numbers come from numpy's global generator, which kb seeds and checkpoints, so a resumed
search takes the same draws as an uninterrupted one.
"""

import json
import multiprocessing

import numpy as np
import torch

from kb.errors import BadInput
from runners.common.epochs import epoch_batches
from runners.mnist import data as mnist
from runners.wann import data as wann_data
from runners.wann import genome as genes
from runners.wann import network, search
from runners.wann.config import ACTIVATIONS, Config
from runners.wann.model import WannNet

N_CLASSES = 10


def test_weight_series(config: Config) -> np.ndarray:
    """The ``test_weights`` quantiles of U(-weight_range, weight_range) (midpoints of equal bins), so
    their mean accuracy estimates the accuracy with one shared weight drawn at random."""
    edges = (np.arange(config.test_weights) + 0.5) / config.test_weights
    return -config.weight_range + 2 * config.weight_range * edges


def accuracies(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(W, N) predictions -> (W,) accuracy in percent."""
    return 100.0 * (predictions == labels[None]).mean(axis=1)


def vote(predictions: np.ndarray) -> np.ndarray:
    """(W, N) predictions -> (N,) the class most weights predict (ties go to the lower class)."""
    counts = np.stack([(predictions == c).sum(axis=0) for c in range(N_CLASSES)])
    return counts.argmax(axis=0)


def mean_log_likelihood(genome: genes.Genome, inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                        batch_size: int) -> float:
    """Mean over images and weights of the label's log probability, in batches."""
    net, total = network.stack([genome]), 0.0
    for start in range(0, len(labels), batch_size):
        outputs = network.forward(net, inputs[start:start + batch_size], weights)[0]
        total += network.log_likelihood(outputs, labels[start:start + batch_size]).mean() * outputs.shape[1]
    return total / len(labels)


def choose_champion(population: list, fitness: np.ndarray, inputs: np.ndarray, labels: np.ndarray,
                    weights: np.ndarray, config: Config) -> tuple[int, list[float]]:
    """The last generation's ``finalists`` best (mean fitness on its batch), re-scored on the first
    ``champion_images`` training images; returns the winner's index and the finalists' scores."""
    finalists = np.argsort(-fitness, kind="stable")[:config.finalists]
    n = min(config.champion_images, len(labels))
    scores = [mean_log_likelihood(population[i], inputs[:n], labels[:n], weights,
                                  config.eval_batch_size) for i in finalists]
    return int(finalists[int(np.argmax(scores))]), scores


def train_weights(champion: genes.Genome, start_weight: float, pixels: torch.Tensor, labels: torch.Tensor,
                  test_pixels: torch.Tensor, test_labels: torch.Tensor, config: Config, run, snapshot) -> float:
    """Individual weights for the champion's connections, started at ``start_weight``, trained with
    Adam on the cross-entropy; returns the test accuracy (percent) after the last epoch."""
    model = WannNet(champion, start_weight)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    accuracy = float("nan")
    for epoch in range(config.epochs):
        total, seen = 0.0, 0
        for _, index in epoch_batches(run, epoch, size=len(labels), batch_size=config.batch_size, first=0,
                                      drop_last=False, snapshot=lambda e, b: snapshot(), device=torch.device("cpu")):
            loss = torch.nn.functional.cross_entropy(model(pixels[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(index), seen + len(index)
        with torch.no_grad():
            predicted = torch.cat([model(test_pixels[i:i + config.eval_batch_size]).argmax(1)
                                   for i in range(0, len(test_labels), config.eval_batch_size)])
        accuracy = 100.0 * (predicted == test_labels).double().mean().item()
        run.log_epoch(epoch + 1, trained_weights_train_loss=total / seen, trained_weights_accuracy=accuracy)
    return accuracy


def main(config: Config, run) -> dict[str, float]:
    data = mnist.load(config, run.data_dir)
    mnist.record_dataset(run, data)
    if config.search_batch > len(data.train_labels):
        raise BadInput(f"search_batch={config.search_batch} is more than the {len(data.train_labels)} training images")
    train_pixels = wann_data.inputs(data.train_images, config.image_size, config.deskew)
    test_pixels = wann_data.inputs(data.test_images, config.image_size, config.deskew)
    train_inputs, test_inputs = network.with_bias(train_pixels), network.with_bias(test_pixels)
    train_labels, test_labels = data.train_labels.numpy().astype(np.int64), data.test_labels.numpy().astype(np.int64)
    weights = np.array(config.shared_weights, dtype=np.float64)
    rng = np.random   # the global generator: kb seeds it and keeps it in checkpoints
    n_inputs = config.image_size ** 2
    run.record(inputs=f"{config.image_size}x{config.image_size} = {n_inputs} pixels"
                      f"{', deskewed' if config.deskew else ''}, plus a bias node; {N_CLASSES} linear outputs, softmax",
               fitness="mean over the shared weights of the label's log softmax probability (negative "
                       f"cross-entropy) on {config.search_batch} training images drawn anew each generation, the same "
                       "for every network",
               ranking="dominance fronts and crowding distance on (mean, 1/connections) in "
                       f"{config.prob_complexity:.0%} of generations, on (mean, best) otherwise",
               search_evaluations=config.population * config.generations * len(weights))

    state = run.resume_state()
    if state is None:
        population = [genes.minimal(n_inputs, N_CLASSES, config.init_enabled, rng) for _ in range(config.population)]
        generation, history, last_fitness = 0, [], None
    else:
        population = [genes.Genome.from_state(s) for s in state["population"]]
        generation, history, last_fitness = state["generation"], state["history"], state["last_fitness"]

    def snapshot(at: int, fitness=None) -> dict:
        return {"generation": at, "population": [g.to_state() for g in population], "history": history,
                "last_fitness": fitness}

    run.start(total_steps=config.generations, step=generation)
    pool = multiprocessing.get_context("fork").Pool(config.workers) if config.workers > 1 else None
    try:
        for gen in range(generation, config.generations):
            run.check_interrupt(lambda: snapshot(gen))
            batch = rng.permutation(len(train_labels))[:config.search_batch]
            scores = search.population_fitness(population, train_inputs[batch], train_labels[batch], weights,
                                               pool, config.workers)
            mean, best = scores.mean(axis=1), scores.max(axis=1)
            connections = np.array([g.connections for g in population])
            leader = int(np.argmax(mean))
            history.append({"best_mean": float(mean.max()), "population_mean": float(mean.mean()),
                            "best_max": float(best.max()), "leader_connections": int(connections[leader]),
                            "leader_hidden": int(len(population[leader].hidden))})
            run.log(gen + 1, samples=config.population * config.search_batch, best_mean_fitness=mean.max(),
                    mean_fitness=mean.mean(), best_max_fitness=best.max(), leader_connections=connections[leader],
                    leader_hidden_nodes=len(population[leader].hidden), mean_connections=connections.mean())
            if gen + 1 == config.generations:
                last_fitness = mean.tolist()
                break
            complexity = rng.random() < config.prob_complexity
            order = search.rank(search.objectives(mean, best, connections, complexity))
            population = search.next_generation(population, order, config, rng)
            if (gen + 1) % config.checkpoint_every == 0:
                run.checkpoint(snapshot(gen + 1))
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    run.checkpoint(snapshot(config.generations, last_fitness))

    winner, finalist_scores = choose_champion(population, np.array(last_fitness), train_inputs, train_labels,
                                              weights, config)
    champion = population[winner]
    series = test_weight_series(config)
    test_predictions = network.predict(champion, test_inputs, series, config.eval_batch_size)
    per_weight = accuracies(test_predictions, test_labels)
    train_per_weight = accuracies(network.predict(champion, train_inputs, series, config.eval_batch_size), train_labels)
    tuned = int(np.argmax(train_per_weight))
    search_weight_predictions = network.predict(champion, test_inputs, weights, config.eval_batch_size)
    ensemble = 100.0 * float((vote(test_predictions) == test_labels).mean())
    ensemble_search = 100.0 * float((vote(search_weight_predictions) == test_labels).mean())

    (run.dir / "champion.json").write_text(json.dumps(champion.to_state()), encoding="utf-8")
    used = [ACTIVATIONS[k] for k in champion.activation[champion.hidden]]
    run.record(champion_connections=champion.connections, champion_hidden_nodes=len(champion.hidden),
               champion_layers=len(network.stack([champion]).bounds) - 1,
               champion_activations={a: used.count(a) for a in sorted(set(used))},
               champion_file="champion.json", finalist_log_likelihoods=[round(s, 4) for s in finalist_scores],
               test_weights=f"{config.test_weights} quantiles of U(-{config.weight_range:g}, {config.weight_range:g})",
               tuned_weight=float(series[tuned]), tuned_weight_train_accuracy=float(train_per_weight[tuned]),
               search_weight_accuracies={f"{w:g}": round(float(a), 2) for w, a in
                                         zip(weights, accuracies(search_weight_predictions, test_labels))})
    run.plot("Champion's test accuracy against the shared weight",
             {"one shared weight": (series.tolist(), per_weight.tolist()),
              "ensemble of all weights": ([series[0], series[-1]], [ensemble, ensemble])},
             xlabel="shared weight", ylabel="test accuracy (%)")
    steps = list(range(1, len(history) + 1))
    run.plot("Search: fitness per generation",
             {"best network's mean": (steps, [h["best_mean"] for h in history]),
              "population mean": (steps, [h["population_mean"] for h in history])},
             xlabel="generation", ylabel="mean log-likelihood of the label")

    trained = train_weights(champion, float(series[tuned]), torch.from_numpy(train_pixels),
                            torch.from_numpy(train_labels), torch.from_numpy(test_pixels),
                            torch.from_numpy(test_labels), config, run,
                            lambda: snapshot(config.generations, last_fitness))
    return {"random_weight_accuracy": float(per_weight.mean()), "random_weight_accuracy_sd": float(per_weight.std()),
            "ensemble_accuracy": ensemble, "ensemble_search_weights_accuracy": ensemble_search,
            "tuned_weight_accuracy": float(per_weight[tuned]), "trained_weights_accuracy": trained,
            "champion_connections": float(champion.connections)}
