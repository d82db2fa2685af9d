"""Neural Architecture Search with Reinforcement Learning (Zoph & Le; arXiv 1611.01578): the recurrent cell
the paper's search found for Penn Treebank, trained as a word-level language model (Sec. 4.2). The search
itself (the controller and REINFORCE) is out of scope: the runner trains the found cell.

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="nas-cell",
    paper="1611.01578",
    summary="The NAS recurrent cell (base 8, the paper's PTB cell) as a 2-layer word-level PTB language model",
    datasets=("ptb",),
    cpu_presets=("smoke", "cpu"),
    cpu_default="cpu",
    entrypoint="runners.nas_cell.train:main",
    config="runners.nas_cell.config",
    architecture="runners.nas_cell.model:architecture",
    resources=Resources(gpus=1, cpus=4, mem_gb=16, time_min=720),
)
