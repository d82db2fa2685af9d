"""Genomes instantiated with a shared weight: the forward pass of arXiv:1906.04358, Sec. 3, in numpy.

Every enabled connection carries the same weight w, so a node's input is w times the sum of its
sources' outputs. A whole group of networks is evaluated at once: their non-input nodes are stacked
into one array of (nodes, weights * images) and evaluated layer by layer (nodes of one layer never
feed each other, whichever network they belong to), with the connections as one sparse matrix. The
whole series of shared weights goes in one pass; the sums from the inputs do not depend on w and are
computed once per batch.
"""

from dataclasses import dataclass

import numpy as np
from scipy import sparse

# The activations of Sec. 3 as the released code defines them (neat_src/ann.py applyAct), indexed like
# config.ACTIVATIONS.
ACTIVATION_FUNCTIONS = (
    lambda x: x,                                  # linear
    lambda x: (x > 0).astype(x.dtype),            # unsigned step
    lambda x: np.sin(np.pi * x),                  # sin
    lambda x: np.exp(-x * x / 2),                 # Gaussian, mean 0 and sd 1
    np.tanh,                                      # tanh
    lambda x: (np.tanh(x / 2) + 1) / 2,           # sigmoid
    lambda x: -x,                                 # inverse
    np.abs,                                       # absolute value
    lambda x: np.maximum(x, 0),                   # ReLU
    lambda x: np.cos(np.pi * x),                  # cosine
)
LOG_PROB_FLOOR = -100.0   # a network that gives its label probability 0 (or overflows) scores this per image
STACK_NODES = 4000        # non-input nodes evaluated together (memory: nodes x weights x images floats)


@dataclass(frozen=True)
class Stack:
    """The non-input nodes of several genomes in one evaluation order (by layer).

    Attributes:
        kinds: (T,) activation index of each stacked node.
        bounds: (start, end) of each layer in the stacked order.
        from_inputs: (T, n_in) sparse 0/1 enabled connections from bias and inputs.
        from_nodes: (T, T) sparse 0/1 enabled connections between stacked nodes (to later layers only).
        outputs: (genomes, n_outputs) stacked position of each genome's output nodes.
    """

    kinds: np.ndarray
    bounds: tuple[tuple[int, int], ...]
    from_inputs: sparse.csr_matrix
    from_nodes: sparse.csr_matrix
    outputs: np.ndarray


def stack(genomes: list) -> Stack:
    """Stack ``genomes`` (runners.wann.genome.Genome, same inputs and outputs) for ``forward``."""
    n_in, n_out = genomes[0].n_in, genomes[0].n_outputs
    sizes = np.array([g.n_nodes - n_in for g in genomes])
    offsets = np.r_[0, np.cumsum(sizes)[:-1]]
    layer = np.concatenate([g.layer[n_in:] for g in genomes])
    kinds = np.concatenate([g.activation[n_in:] for g in genomes])
    order = np.argsort(layer, kind="stable")
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    sources, targets, from_input = [], [], []
    for g, offset in zip(genomes, offsets):
        s, t = g.source[g.enabled], g.target[g.enabled]
        sources.append(np.where(s < n_in, s, s - n_in + offset))
        targets.append(t - n_in + offset)
        from_input.append(s < n_in)
    source, target, from_input = np.concatenate(sources), np.concatenate(targets), np.concatenate(from_input)
    total = len(order)
    inputs = sparse.csr_matrix((np.ones(from_input.sum(), dtype=np.float32),
                                (position[target[from_input]], source[from_input])), shape=(total, n_in))
    nodes = sparse.csr_matrix((np.ones((~from_input).sum(), dtype=np.float32),
                               (position[target[~from_input]], position[source[~from_input]])), shape=(total, total))
    sorted_layer = layer[order]
    starts = np.flatnonzero(np.r_[True, sorted_layer[1:] != sorted_layer[:-1]])
    ends = np.r_[starts[1:], total]
    outputs = position[offsets[:, None] + np.arange(n_out)[None, :]]
    return Stack(kinds[order], tuple(zip(starts.tolist(), ends.tolist())), inputs, nodes, outputs)


def with_bias(pixels: np.ndarray) -> np.ndarray:
    """(B, n_inputs) pixels -> (B, 1 + n_inputs) float32 with the bias node's 1 in front."""
    return np.concatenate([np.ones((len(pixels), 1), dtype=np.float32), pixels.astype(np.float32)], axis=1)


@np.errstate(over="ignore", invalid="ignore")
def forward(net: Stack, inputs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Output node values of each stacked genome for each shared weight.

    Args:
        net: the stacked genomes.
        inputs: (B, n_in) bias and pixels (``with_bias``).
        weights: (W,) shared weight values.

    Returns:
        (genomes, W, B, n_outputs) float32 outputs (linear output nodes: the softmax's logits).
    """
    n_weights, batch = len(weights), len(inputs)
    scale = np.repeat(np.asarray(weights, dtype=np.float32), batch)[None, :]      # (1, W * B)
    summed_inputs = np.asarray(net.from_inputs @ np.ascontiguousarray(inputs.T), dtype=np.float32)  # (T, B), any w
    values = np.empty((len(net.kinds), n_weights * batch), dtype=np.float32)
    for start, end in net.bounds:
        summed = np.tile(summed_inputs[start:end], (1, n_weights))
        if start:
            summed += net.from_nodes[start:end] @ values   # only earlier rows are nonzero columns
        before = scale * summed                                                    # (layer width, W * B)
        kinds = net.kinds[start:end]
        for kind in np.unique(kinds):
            rows = np.flatnonzero(kinds == kind)
            values[start + rows] = ACTIVATION_FUNCTIONS[kind](before[rows])
    out = values[net.outputs]                                                       # (genomes, n_out, W * B)
    return out.reshape(len(out), -1, n_weights, batch).transpose(0, 2, 3, 1)


@np.errstate(over="ignore", invalid="ignore")
def log_likelihood(outputs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(..., B, classes) logits -> (...) mean log softmax probability of the labels: the negative of
    the cross-entropy that the released code's classification task returns as reward. An image whose
    label gets probability 0, or whose logits overflowed, counts as ``LOG_PROB_FLOOR``."""
    top = outputs.max(axis=-1, keepdims=True)
    shifted = outputs - top
    log_sum = np.log(np.exp(shifted).sum(axis=-1))
    index = np.broadcast_to(labels.reshape(-1, 1), shifted.shape[:-1] + (1,))
    picked = np.take_along_axis(shifted, index, axis=-1)[..., 0] - log_sum
    picked = np.where(np.isfinite(picked), np.maximum(picked, LOG_PROB_FLOOR), LOG_PROB_FLOOR)
    return picked.astype(np.float64).mean(axis=-1)


def groups(genomes: list, max_nodes: int = STACK_NODES) -> list[list]:
    """Consecutive runs of ``genomes`` with at most ``max_nodes`` stacked nodes (at least one genome each)."""
    found, current, size = [], [], 0
    for genome in genomes:
        nodes = genome.n_nodes - genome.n_in
        if current and size + nodes > max_nodes:
            found.append(current)
            current, size = [], 0
        current.append(genome)
        size += nodes
    return found + [current] if current else found


def fitness(genomes: list, inputs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(P, W) log-likelihood of each genome at each shared weight on one batch."""
    return np.concatenate([log_likelihood(forward(stack(group), inputs, weights), labels)
                           for group in groups(genomes)])


def predict(genome, inputs: np.ndarray, weights: np.ndarray, batch_size: int) -> np.ndarray:
    """(W, N) class that one genome predicts for each image at each shared weight (ties: lower class)."""
    net = stack([genome])
    chunks = [forward(net, inputs[i:i + batch_size], weights)[0].argmax(axis=-1)
              for i in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks, axis=1)
