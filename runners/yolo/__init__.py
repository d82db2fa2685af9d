"""YOLOv1 (Redmon et al., "You Only Look Once: Unified, Real-Time Object Detection", arXiv 1506.02640).

Only the spec lives here: listing runners must not import torch.
"""

from kb.runs.registry import Resources, RunnerSpec

RUNNER = RunnerSpec(
    name="yolo",
    paper="1506.02640",
    summary="YOLOv1 and Fast YOLO: one-stage grid detector with the sum-squared loss of Sec. 2.2, VOC mAP@0.5",
    datasets=("voc", "yolo-folder", "generated"),
    cpu_presets=("smoke", "cpu"),
    cpu_default="cpu",
    entrypoint="runners.yolo.train:main",
    config="runners.yolo.config",
    architecture="runners.yolo.model:architecture",
    resources=Resources(gpus=1, cpus=8, mem_gb=32, time_min=240),
)
