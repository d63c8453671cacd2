"""The JSON-RPC peer core both ends share: the daemon's connection (`rpc/connection.py`) and
the client's link (`client/link.py`) run one `Peer` each (`peer.py`), with its calls in flight
(`calls.py`), over a `MessageStream` (`stream.py`): a WebSocket, or newline-delimited JSON on a
pair of pipes (`lines.py`, the `stdio` transport).

May import: `proto/` only. Knows JSON-RPC messages, never a method, a session or a WebSocket.
"""
