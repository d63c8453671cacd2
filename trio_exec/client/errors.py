"""Errors of the consumer side that are not wire errors.

Rule: a reply's error is always raised as the `trio_exec.proto.errors.RpcError` subclass of its
code (the same classes the daemon raises). Everything here is about the link, the session or a
process's output, never about a request's content, and every message names what was lost so a
caller can act on it.
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of the client's own errors; `str(err)` is a complete one-line explanation."""


class ConnectFailed(ClientError):
    """The first connection (or handshake) to the server did not succeed."""


class ConnectionLost(ClientError):
    """The connection died and the request could not be completed.

    `maybe_applied` is True when the request had been sent before the drop and is not safe to
    repeat blindly (a `process/write`, a `fs/remove`, ...): it may or may not have taken effect.
    """

    def __init__(self, message: str, *, maybe_applied: bool = False) -> None:
        super().__init__(message)
        self.maybe_applied = maybe_applied


class ProcessLost(ClientError):
    """A process can no longer be followed: its session expired, or it was forgotten by the
    server while the client was away. Its remaining output is unknown."""


class OutputLost(ProcessLost):
    """Output of a process was dropped by the server's retention cap before the client read it
    (the read result carried `retentionGap`). Raised instead of silently skipping bytes."""

    def __init__(self, process_id: str, after_seq: int, first_retained_seq: int) -> None:
        super().__init__(
            f"output of process {process_id} with seq {after_seq + 1}..{first_retained_seq - 1} "
            "was dropped by the server's retention cap before it could be read"
        )
        self.process_id = process_id
        self.after_seq = after_seq
        self.first_retained_seq = first_retained_seq
