"""The detection family: datasets in their real formats (VOC, YOLO folders, generated shapes, ``data.py``),
box geometry (``boxes.py``), and the detector-independent evaluation (NMS, VOC mAP, ``evaluate.py``).

No ``RUNNER`` here, and no torch at import (``kb runners`` imports every package under ``runners/``).
"""
