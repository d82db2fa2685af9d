"""Weight Agnostic Neural Networks (arXiv:1906.04358): topology search with one shared weight, on MNIST 16x16."""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="wann",
    paper="1906.04358",
    summary="Weight agnostic topology search (NEAT-like operators, one shared weight, Pareto ranking) on 16x16 MNIST",
    datasets=("mnist",),
    cpu_presets=("cpu", "smoke"),
    entrypoint="runners.wann.train:main",
    config="runners.wann.config",
    architecture="runners.wann.model:architecture",
    resources=Resources(gpus=0, cpus=16, mem_gb=8, time_min=48 * 60),
)
