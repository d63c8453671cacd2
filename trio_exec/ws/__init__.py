"""The WebSocket layer: bytes on a socket in, whole messages out, and frames back.

Owns: the front door (`frontdoor.py`: the request head, `/readyz`, the bearer token, the
upgrade handed to trio-websocket), the daemon's own outbound frame writer (`frames.py`) and
the C unmasking of client frames (`masking.py`).
May import: `proto/` (the encoded-frame types of the codec) and nothing above it — it knows
neither JSON-RPC nor the services
(checked by tests/test_layers.py).
"""
