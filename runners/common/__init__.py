"""What any runner may share (design.md, Runners): seeded epoch order and batches (``epochs.py``),
evaluation helpers (``evaluate.py``), per-epoch figures (``figures.py``), packed-bit arithmetic for
binarized networks (``packed.py``) and their sign with the straight-through estimator (``binarize.py``).

No ``RUNNER`` here, and no torch at import: ``kb runners`` imports every package under ``runners/``.
"""
