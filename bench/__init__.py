"""Benchmarks: `python -m bench.run --out bench` writes bench/results.json and bench/results.md."""
