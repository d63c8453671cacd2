"""Differential wire-conformance tests: trio-exec against the codex-cli 0.120.0 reference."""
