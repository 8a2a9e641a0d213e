"""Benchmarks: `python -m bench.run [--quick]` regenerates bench/RESULTS.md and its plots (bench/README.md)."""
