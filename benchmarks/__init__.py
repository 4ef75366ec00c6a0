"""Benchmarks: `python -m benchmarks` (or `just bench`) prints a table of figures and ratios."""
