"""The weight agnostic search of arXiv:1906.04358, Sec. 3: rank by dominance, select, vary.

One generation (released code: ``neat_src/wann.py``, ``_variation.py``): every network is scored at
each shared weight on the same batch of training images; mean and best over the weights, and the
number of connections, are the objectives; the population is sorted by non-dominated fronts (with
crowding distance within a front) on (mean, 1/connections) in ``prob_complexity`` of generations
and on (mean, best) otherwise; the worst ``cull_ratio`` leave the parent pool, the best
``elite_ratio`` of the pool pass on unchanged, and the rest of the next population are children of
tournament winners, each with one topological change.
"""

import numpy as np

from runners.wann import genome as genes
from runners.wann import network


def dominates(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P, P) whether row i of ``a`` dominates row j of ``b`` (maximising every objective)."""
    at_least = (a[:, None, :] >= b[None, :, :]).all(axis=2)
    better = (a[:, None, :] > b[None, :, :]).any(axis=2)
    return at_least & better


def fronts(objectives: np.ndarray) -> list[np.ndarray]:
    """Non-dominated fronts, best first: (P, K) objectives to lists of indices (fast non-dominated
    sorting: a network joins the next front once every network that dominates it is placed)."""
    beaten_by = dominates(objectives, objectives)          # [i, j]: i dominates j
    dominators = beaten_by.sum(axis=0)
    front = np.flatnonzero(dominators == 0)
    found = []
    while len(front):
        found.append(front)
        dominators[front] = -1
        dominators -= beaten_by[front].sum(axis=0)
        front = np.flatnonzero(dominators == 0)
    return found


def crowding_distance(objectives: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance within one front: per objective, the gap between each member's two
    neighbours over the objective's range; the ends of each objective are infinitely far."""
    distance = np.zeros(len(objectives))
    for values in objectives.T:
        order = np.argsort(values, kind="stable")
        spread = values[order[-1]] - values[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if spread > 0 and len(values) > 2:
            distance[order[1:-1]] += (values[order[2:]] - values[order[:-2]]) / spread
    return distance


def rank(objectives: np.ndarray) -> np.ndarray:
    """Indices of the population from best to worst: by front, then by crowding distance (larger
    first), then by index."""
    order = []
    for front in fronts(objectives):
        distance = crowding_distance(objectives[front])
        order.extend(front[np.lexsort((front, -distance))].tolist())
    return np.array(order)


def objectives(mean: np.ndarray, best: np.ndarray, connections: np.ndarray, complexity: bool) -> np.ndarray:
    """(P, 2) objectives to maximise: mean and 1/connections, or mean and best (Sec. 3). A network
    without connections counts as one (the released code: otherwise it is always on the front)."""
    second = 1.0 / np.maximum(connections, 1) if complexity else best
    return np.stack([mean, second], axis=1)


def next_generation(population: list, order: np.ndarray, config, rng) -> list:
    """Cull, keep elites, and fill the rest with mutated tournament winners (released ``recombine``)."""
    ranked = [population[i] for i in order]
    pool = ranked[:len(ranked) - int(np.floor(config.cull_ratio * len(ranked)))]
    elites = pool[:int(np.floor(config.elite_ratio * len(pool)))]
    children = len(population) - len(elites)
    # Tournaments: the pool is sorted best first, so the lowest index drawn wins.
    winners = rng.randint(len(pool), size=(children, config.tournament)).min(axis=1)
    return elites + [genes.mutate(pool[w], config, rng) for w in winners]


def _fitness_task(task: tuple) -> np.ndarray:
    return network.fitness(*task)


def population_fitness(population: list, inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray,
                       pool=None, workers: int = 1) -> np.ndarray:
    """(P, W) log-likelihood of each network at each shared weight, split over the ``workers``
    processes of ``pool`` when given (the result does not depend on the split)."""
    if pool is None:
        return network.fitness(population, inputs, labels, weights)
    chunks = np.array_split(np.arange(len(population)), 4 * workers)
    tasks = [([population[i] for i in chunk], inputs, labels, weights) for chunk in chunks if len(chunk)]
    return np.concatenate(pool.map(_fitness_task, tasks))
