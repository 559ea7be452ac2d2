"""Benchmarks (never timed unit tests). Results are recorded in BENCHMARKS.md by `bench.report`."""
