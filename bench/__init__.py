"""Benchmarks: run with `make bench`; results in bench/results/."""
