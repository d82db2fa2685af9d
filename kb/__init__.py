"""kb: a paper knowledge base with reproducibility runners for deep-learning research."""

__version__ = "0.1.0"
