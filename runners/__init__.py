"""Reproducibility runners (design.md, Runners), in three layers imported only downward:
``runners/common/`` (what any runner may share) <- family packages (``mnist``, ``detection``: their
datasets, base ``Config`` and shared loop) <- one folder per paper, whose ``__init__.py`` declares
``RUNNER``. Packages without ``RUNNER`` are not runners; none of them imports torch at import time.
"""
