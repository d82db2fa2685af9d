"""Everything about runs that is the same for all runners (design.md, Runners)."""
