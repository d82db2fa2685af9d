"""Learning to learn by gradient descent by gradient descent (arXiv:1606.04474): a coordinatewise LSTM
optimizer meta-trained on random quadratics and on the MNIST MLP, against tuned SGD, RMSprop, ADAM and NAG."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="learning-to-learn",
    paper="1606.04474",
    summary="Coordinatewise two-layer LSTM optimizer, meta-trained by truncated backpropagation through "
            "unrolled optimisation, on 10-d quadratics and the MNIST MLP, against tuned hand-designed optimizers",
    datasets=("mnist",),
    cpu_presets=("cpu", "cpu-quadratic", "smoke"),
    entrypoint="runners.learning_to_learn.train:main",
    config="runners.learning_to_learn.config",
    architecture="runners.learning_to_learn.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=16, time_min=24 * 60),
)
