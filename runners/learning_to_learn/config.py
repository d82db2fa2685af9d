"""Configuration of the learning-to-learn runner: arXiv:1606.04474, Sec. 3 and Appendix A.

Defaults are the paper's MNIST experiment: the optimizer is a two-layer LSTM of 20 units shared by
every coordinate, its input preprocessed as Appendix A says (log-magnitude and sign, p = 10) and its
output scaled by 0.1; the optimizee is an MLP with one hidden layer of 20 sigmoid units trained on
minibatches of 128 MNIST images for 100 steps; the optimizer is meta-trained with ADAM on the summed
losses of those steps, truncated every 20 steps. The meta-training budget and the validation schedule
are the authors' released code (deepmind/learning-to-learn, train.py: 10000 epochs of one problem,
ADAM learning rate 0.001, 20 validation problems every 1000 epochs, the best optimizer kept).

``task="quadratic"`` is the paper's other task family: random 10-dimensional f(θ) = ||Wθ - y||², 128
problems per meta-training epoch (the released code's batch), no pre- or postprocessing (Sec. 3.1).
"""

from dataclasses import dataclass, replace

from kb.errors import BadInput
from kb.runs.config import check
from runners.mnist import config as mnist

TASKS = ("mnist", "quadratic")
ACTIVATIONS = ("sigmoid", "relu")


@dataclass(frozen=True)
class Config(mnist.Config):
    task: str = "mnist"                # "mnist" (the MLP, Sec. 3.2) or "quadratic" (Sec. 3.1)
    steps: int = 100                   # optimizee steps per problem (the horizon)
    unroll: int = 20                   # truncated BPTT: the meta-gradient is taken every `unroll` steps
    lstm_hidden: int = 20              # units in each of the optimizer's two LSTM layers (Sec. 3)
    lstm_layers: int = 2
    preprocess: bool = True            # Appendix A: (log|g| / p, sign g), or (-1, e^p g) for small |g|
    preprocess_p: float = 10.0
    output_scale: float = 0.1          # the LSTM's output times 0.1 on MNIST (Appendix A)
    meta_lr: float = 0.001             # ADAM on the optimizer's parameters (released train.py)
    epochs: int = 10000                # meta-training epochs: one problem (MNIST) or one batch of quadratics each
    eval_every: int = 1000             # validate the optimizer every N epochs and keep the best (Sec. 3)
    validation_problems: int = 20      # problems of a validation (released train.py: evaluation_epochs)
    test_problems: int = 100           # freshly sampled problems the optimizers are compared on
    batch_size: int = 128              # MNIST minibatch of the optimizee (Sec. 3.2)
    mlp_hidden: int = 20               # the optimizee MLP: hidden units per layer ...
    mlp_layers: int = 1                # ... hidden layers ...
    activation: str = "sigmoid"        # ... and their activation
    init_std: float = 0.01             # optimizee weights and biases ~ N(0, 0.01^2) (released problems.py)
    quadratic_dims: int = 10           # Sec. 3.1
    quadratic_batch: int = 128         # quadratics per meta-training epoch (released util.py)
    validation_size: int = 10000       # last N training images: the validation problems' minibatches
    lr_grid: tuple[float, ...] = (1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # baselines' rates
    variants: bool = True              # MNIST: also test on 200 steps, 40 units, 2 layers, ReLU (Sec. 3.2)

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self, at_least={"steps": 1, "unroll": 1, "lstm_hidden": 1, "lstm_layers": 1, "eval_every": 1,
                              "validation_problems": 1, "test_problems": 1, "mlp_hidden": 1, "mlp_layers": 1,
                              "quadratic_dims": 1, "quadratic_batch": 1, "validation_size": 1},
              above={"preprocess_p": 0, "output_scale": 0, "meta_lr": 0, "init_std": 0, "lr_grid": 0},
              choices={"task": TASKS, "activation": ACTIVATIONS})
        if self.steps % self.unroll:
            raise BadInput(f"steps={self.steps} must be a multiple of unroll={self.unroll} (whole truncations)")
        if self.epochs % self.eval_every:
            raise BadInput(f"epochs={self.epochs} must be a multiple of eval_every={self.eval_every} "
                           "(the last epoch is validated)")


PAPER = Config()
QUADRATIC = replace(PAPER, task="quadratic", preprocess=False, output_scale=1.0, variants=False)

# One thread of this machine meta-trains the MNIST optimizer at 10-20 s an epoch (100 LSTM steps over the
# MLP's 15910 coordinates, forward and backward): the cpu presets keep the paper's tasks, horizon, truncation
# and networks, and cut the meta-training budget, the validation problems and (MNIST) the test problems. With
# a budget of 100 (MNIST) or 200 (quadratics) epochs instead of 10000 they take ADAM's learning rate 0.01 instead
# of the released 0.001 (the paper chose its rate by random search and does not print it).
PRESETS: dict[str, Config] = {
    "cpu": replace(PAPER, meta_lr=0.01, epochs=100, eval_every=10, validation_problems=4, test_problems=4),
    "cpu-quadratic": replace(QUADRATIC, meta_lr=0.01, epochs=200, eval_every=25, validation_problems=128,
                             test_problems=128),
    "paper": PAPER,
    "paper-quadratic": QUADRATIC,
    "smoke": replace(PAPER, steps=4, unroll=2, epochs=4, eval_every=1, validation_problems=1, test_problems=2,
                     train_limit=400, test_limit=128, validation_size=100, lr_grid=(0.01, 0.1, 1.0)),
}
