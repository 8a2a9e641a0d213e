"""Benchmarks: `python bench/run.py [--quick]` regenerates bench/RESULTS.md and the plots."""
