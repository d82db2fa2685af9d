"""Reproducibility runners: one package per paper implementation (see design.md, Runners)."""
