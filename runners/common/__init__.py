"""What any runner may share (design.md, Runners): seeded epoch order, evaluation helpers.

No ``RUNNER`` here, and no torch at import: ``kb runners`` imports every package under ``runners/``.
"""
