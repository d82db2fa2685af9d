"""The MNIST family: the IDX files as published (``data.py``) and the frozen base ``Config``.

No ``RUNNER`` here, and no torch at import (``kb runners`` imports this package and ``config``).
"""
