"""Genomes of weight agnostic networks and the topological operators of arXiv:1906.04358, Sec. 3.

A genome is NEAT-like: node genes (an activation per node) and connection genes (source,
destination, enabled). Nodes are numbered by position: 0 is the bias, 1..n_inputs the inputs, then
the outputs, then hidden nodes in the order they were inserted. There are no weights: the network is
instantiated with one shared weight on every enabled connection. Connections only go from a node to
a node of a later layer (layers computed over every gene, disabled ones too), so every subset of the
genes that a later re-enabling may switch on stays feed-forward.

No torch here: the search is numpy work.
"""

import functools
from dataclasses import dataclass, field

import numpy as np

from runners.wann.config import ACTIVATIONS


@dataclass(eq=False)
class Genome:
    """Node and connection genes; ``layer`` and ``order`` are derived from them once.

    Attributes:
        n_inputs: input pixels (the bias node comes before them).
        n_outputs: output nodes (linear; the classifier's softmax is applied outside).
        activation: (nodes,) index into ``ACTIVATIONS`` of each node.
        source, target: (connections,) node numbers of each connection gene.
        enabled: (connections,) whether the connection is expressed.
    """

    n_inputs: int
    n_outputs: int
    activation: np.ndarray
    source: np.ndarray
    target: np.ndarray
    enabled: np.ndarray
    layer: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.layer = layers(self)

    @property
    def n_nodes(self) -> int:
        return len(self.activation)

    @property
    def n_in(self) -> int:
        """Bias and inputs: the nodes whose value is given."""
        return self.n_inputs + 1

    @property
    def hidden(self) -> np.ndarray:
        return np.arange(self.n_in + self.n_outputs, self.n_nodes)

    @property
    def connections(self) -> int:
        """Enabled connections: the complexity objective (Sec. 3)."""
        return int(self.enabled.sum())

    def to_state(self) -> dict:
        """The genes as lists of ints (a checkpoint that ``torch.load(weights_only=True)`` reads)."""
        return {"n_inputs": self.n_inputs, "n_outputs": self.n_outputs, "activation": self.activation.tolist(),
                "source": self.source.tolist(), "target": self.target.tolist(),
                "enabled": self.enabled.astype(int).tolist()}

    @classmethod
    def from_state(cls, state: dict) -> "Genome":
        return cls(state["n_inputs"], state["n_outputs"], np.array(state["activation"], dtype=np.int64),
                   np.array(state["source"], dtype=np.int64), np.array(state["target"], dtype=np.int64),
                   np.array(state["enabled"], dtype=bool))


def layers(genome: Genome) -> np.ndarray:
    """Layer of each node: 0 for bias and inputs, 1 + the deepest source for hidden nodes (over all
    connection genes), and one past the deepest hidden layer for every output, as the released code
    orders them (outputs last, so no connection runs between outputs)."""
    n_in, n_out = genome.n_in, genome.n_outputs
    layer = np.zeros(genome.n_nodes, dtype=np.int64)
    is_hidden = np.zeros(genome.n_nodes, dtype=bool)
    is_hidden[n_in + n_out:] = True
    into_hidden = is_hidden[genome.target]
    source, target = genome.source[into_hidden], genome.target[into_hidden]
    layer[is_hidden] = 1
    for _ in range(genome.n_nodes):   # longest path; acyclic, so it settles within n_nodes passes
        deeper = layer.copy()
        np.maximum.at(deeper, target, layer[source] + 1)
        if np.array_equal(deeper, layer):
            break
        layer = deeper
    else:
        raise ValueError("the connection genes contain a cycle")
    layer[n_in:n_in + n_out] = layer.max(initial=0) + 1
    return layer


def minimal(n_inputs: int, n_outputs: int, init_enabled: float, rng) -> Genome:
    """A network of the initial population (Sec. 3): no hidden nodes, every bias/input-output
    connection as a gene, each enabled with probability ``init_enabled``."""
    n_in = n_inputs + 1
    source = np.tile(np.arange(n_in), n_outputs)
    target = np.repeat(n_in + np.arange(n_outputs), n_in)
    activation = np.zeros(n_in + n_outputs, dtype=np.int64)    # linear inputs and outputs
    return Genome(n_inputs, n_outputs, activation, source, target, rng.random(len(source)) < init_enabled)


def add_connection(genome: Genome, rng) -> Genome:
    """Connect two nodes that have no connection gene yet, from a layer to a later one (the
    feed-forward property). Like the released code, a disabled gene counts as a connection, and the
    source is drawn among the nodes that have such a free target."""
    # Every gene runs to a later layer, so a node's free targets are the later nodes minus its genes.
    later = genome.n_nodes - np.searchsorted(np.sort(genome.layer), genome.layer, side="right")
    free = later - np.bincount(genome.source, minlength=genome.n_nodes)
    sources = np.flatnonzero(free > 0)
    if len(sources) == 0:
        return genome
    source = sources[rng.randint(len(sources))]
    targets = np.flatnonzero(genome.layer > genome.layer[source])
    targets = targets[~np.isin(targets, genome.target[genome.source == source])]
    return Genome(genome.n_inputs, genome.n_outputs, genome.activation.copy(), np.append(genome.source, source),
                  np.append(genome.target, targets[rng.randint(len(targets))]), np.append(genome.enabled, True))


def insert_node(genome: Genome, activations: np.ndarray, rng) -> Genome:
    """Split an enabled connection a->b into a->new->b; the new node's activation is drawn at random."""
    active = np.flatnonzero(genome.enabled)
    if len(active) == 0:
        return genome
    split = active[rng.randint(len(active))]
    new = genome.n_nodes
    enabled = genome.enabled.copy()
    enabled[split] = False
    return Genome(genome.n_inputs, genome.n_outputs, np.append(genome.activation, rng.choice(activations)),
                  np.append(genome.source, [genome.source[split], new]),
                  np.append(genome.target, [new, genome.target[split]]), np.append(enabled, [True, True]))


def enable_connection(genome: Genome, rng) -> Genome:
    """Re-enable a disabled connection (the released code's fourth operator, 5% of changes)."""
    disabled = np.flatnonzero(~genome.enabled)
    if len(disabled) == 0:
        return genome
    enabled = genome.enabled.copy()
    enabled[disabled[rng.randint(len(disabled))]] = True
    return Genome(genome.n_inputs, genome.n_outputs, genome.activation.copy(), genome.source.copy(),
                  genome.target.copy(), enabled)


def change_activation(genome: Genome, activations: np.ndarray, rng) -> Genome:
    """Give a random hidden node a different activation from the set."""
    hidden = genome.hidden
    if len(hidden) == 0:
        return genome
    node = hidden[rng.randint(len(hidden))]
    others = activations[activations != genome.activation[node]]
    if len(others) == 0:
        return genome
    activation = genome.activation.copy()
    activation[node] = rng.choice(others)
    return Genome(genome.n_inputs, genome.n_outputs, activation, genome.source.copy(), genome.target.copy(),
                  genome.enabled.copy())


@functools.lru_cache(maxsize=8)
def operator_table(config) -> tuple[np.ndarray, np.ndarray]:
    """The config's activation indices and the four operators' probabilities."""
    activations = np.array([ACTIVATIONS.index(name) for name in config.activations])
    weights = np.array([config.prob_add_connection, config.prob_add_node, config.prob_enable,
                        config.prob_change_activation])
    return activations, weights / weights.sum()


def mutate(genome: Genome, config, rng) -> Genome:
    """Exactly one topological change, chosen with the config's operator probabilities (the released
    ``topoMutate``); an operator that has nothing to act on leaves the child a copy of its parent."""
    activations, probabilities = operator_table(config)
    choice = rng.choice(4, p=probabilities)
    if choice == 0:
        return add_connection(genome, rng)
    if choice == 1:
        return insert_node(genome, activations, rng)
    if choice == 2:
        return enable_connection(genome, rng)
    return change_activation(genome, activations, rng)
