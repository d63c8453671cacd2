"""trio-exec benchmarks: run with ./scripts/bench."""
