"""Benchmarks: each prints one comparable figure per line. Results go to docs/benchmarks.md."""
