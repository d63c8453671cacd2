"""The process service: spawning (pipes and PTYs, process groups, environment), the
seq-numbered output log, the managed process and its teardown, the session's process table.
It speaks domain values (`events.py`: reads with `bytes` output, typed events), never wire.

May import: `proto/`, `sandbox/`; never `rpc/`, `ws/`, the consumer side or the daemon shell
(tests/test_layers.py).
"""
