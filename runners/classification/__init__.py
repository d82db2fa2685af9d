"""The image-classification family: CIFAR-10/100, SVHN and ImageNet in their released formats and a
generated labelled set (``data.py``), on-device augmentation (``augment.py``), the frozen base
``Config`` (``config.py``) and the family's one training loop (``train.py``).

No ``RUNNER`` here, and no torch at import (``kb runners`` imports every package under ``runners/``).
"""
