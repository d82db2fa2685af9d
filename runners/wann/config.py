"""Configuration of the WANN runner: the MNIST search of arXiv:1906.04358, Sec. 3 and 4.2 ("Classification").

The paper's text gives the search (Sec. 3): insert node, add connection and change activation
operators; the fixed series of shared weights (-2, -1, -0.5, +0.5, +1, +2); ranking by dominance on
mean performance and number of connections in 80% of generations, on mean and max performance in
the other 20%; tournament selection. The MNIST numbers that the text leaves open are the authors'
released settings (google/brain-tokyo-workshop, WANNRelease/prettyNeatWann: ``p/mnist256.json``,
``p/default_wann.json``, ``domain/config.py``, ``domain/classify_gym.py``): 960 networks for 4096
generations, tournaments of 32, 5% of the input-output connections enabled at the start, operator
probabilities 0.20 / 0.25 / 0.05 / 0.50 (add connection / insert node / re-enable / change
activation), 20% culled and 20% elites, images resized to 16x16 and deskewed, fitness the negative
cross-entropy of the softmax outputs on 1000 training images, and the hidden activations without the
step function.
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.mnist import config as mnist

# Activation functions of Sec. 3 (Fig. 2, right); the released MNIST task leaves out "step".
ACTIVATIONS = ("linear", "step", "sin", "gaussian", "tanh", "sigmoid", "inverse", "abs", "relu", "cos")


@dataclass(frozen=True)
class Config(mnist.Config):
    population: int = 960              # p/mnist256.json popSize
    generations: int = 4096            # p/mnist256.json maxGen
    search_batch: int = 1000           # training images per generation (classify_gym.py batch)
    shared_weights: tuple[float, ...] = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)  # Sec. 3, "Performance and Complexity"
    image_size: int = 16               # 16x16 inputs (mnist256)
    deskew: bool = True                # classify_gym.py preprocess(unskew=True)
    activations: tuple[str, ...] = ("linear", "sin", "gaussian", "tanh", "sigmoid", "inverse", "abs", "relu", "cos")
    init_enabled: float = 0.05         # prob_initEnable: fraction of input-output connections at the start
    prob_add_connection: float = 0.20  # one topological change per child, chosen with these weights
    prob_add_node: float = 0.25
    prob_enable: float = 0.05
    prob_change_activation: float = 0.50
    prob_complexity: float = 0.80      # Sec. 3: rank on (mean, connections) in 80% of generations
    cull_ratio: float = 0.2            # worst fraction left out of the parent pool
    elite_ratio: float = 0.2           # best fraction of the pool passed on unchanged
    tournament: int = 32               # select_tournSize for mnist256
    finalists: int = 16                # best of the last generation re-scored on champion_images to pick one
    champion_images: int = 10000       # first N training images that choose the champion
    weight_range: float = 2.0          # Sec. 4: random shared weight ~ U(-2, 2)
    test_weights: int = 100            # quantiles of U(-2, 2) at which the champion is tested
    # Trained weights (the table's last row): each connection its own weight, started at the best
    # shared weight, Adam on the training set for `epochs` epochs of `batch_size`.
    batch_size: int = 100
    epochs: int = 10
    lr: float = 0.01
    workers: int = 2                   # processes evaluating the population
    checkpoint_every: int = 16         # generations between checkpoints

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"population": 2, "generations": 1, "search_batch": 1, "image_size": 2,
                              "init_enabled": 0, "prob_add_connection": 0, "prob_add_node": 0, "prob_enable": 0,
                              "prob_change_activation": 0, "prob_complexity": 0, "cull_ratio": 0, "elite_ratio": 0,
                              "tournament": 1, "finalists": 1, "champion_images": 1, "test_weights": 1,
                              "workers": 1, "checkpoint_every": 1},
              above={"weight_range": 0, "lr": 0},
              at_most={"init_enabled": 1, "prob_complexity": 1, "image_size": 28},
              below={"cull_ratio": 1, "elite_ratio": 1})
        unknown = [name for name in self.activations if name not in ACTIVATIONS]
        if unknown or not self.activations:
            raise BadInput(f"activations={','.join(self.activations)}: each must be one of {', '.join(ACTIVATIONS)}")
        if not self.shared_weights:
            raise BadInput("shared_weights: give at least one weight value")
        if self.prob_add_connection + self.prob_add_node + self.prob_enable + self.prob_change_activation <= 0:
            raise BadInput("the four operator probabilities add up to 0: give at least one a positive weight")


PAPER = Config()

PRESETS: dict[str, Config] = {
    # The largest search of the paper's recipe that one CPU core finishes in about 45 minutes
    # (measured: README); the population is the paper's, the generations are fewer.
    "cpu": replace(PAPER, generations=300),
    "smoke": replace(PAPER, population=16, generations=4, search_batch=100, finalists=4, champion_images=200,
                     test_weights=8, epochs=1, train_limit=400, test_limit=100, workers=1, checkpoint_every=2),
    "paper": PAPER,
}
