"""Sessions: the registry (the only mutable map of sessions) and the session, which owns a
nursery holding its processes and survives disconnects (park, resume, takeover, TTL).

May import: `proto/`, `process/`, `fs/`; never `rpc/`, `ws/`, the consumer side or the daemon
shell (tests/test_layers.py).
"""
