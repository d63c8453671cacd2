"""The JSON-RPC peer of the daemon: one connection's reader, writer and pinger, the dispatcher,
and the method adapters.

Owns: `connection.py` (tasks and ends of a connection), `inflight.py` (the read pause),
`context.py` (`ConnectionState`, `CallContext`, the one handler signature), `dispatch.py` (the
method table, the handshake gate), and the adapters `session_methods.py`,
`process_methods.py`, `fs_methods.py`, `host_methods.py`, and `notifications.py` (the
session's events as notifications) — the only place that knows base64, dialects and wire
shapes.
May import: `proto/`, `ws/` and the services (`session/`, `process/`, `fs/`, `sandbox/`);
never the daemon shell or the consumer side (tests/test_layers.py).
"""
