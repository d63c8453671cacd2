"""Errors of the consumer side that are not wire errors.

Rule: a reply's error is always raised as the `trio_exec.proto.errors.RpcError` subclass of its
code (the same classes the daemon raises). Everything here is about the link, the session or a
process's output, and the one thing about a request the link decides: whether it fits in a
message. Every message names what was lost (or refused) so a caller can act on it.
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


class RequestTooLarge(ClientError):
    """A request does not fit in one WebSocket message of the server's size limit. Raised at
    once for that call alone, and never sent again:

    - before sending, when its message is over the client's `max_message_size` (`limit`): nothing
      was sent and the connection is untouched;
    - after sending, when the server closed the connection with 1009 (message too big) while the
      request was the largest one in flight (`limit` is None: the server's limit is unknown,
      only that it is lower). The connection is recovered for the other calls.
    """

    def __init__(self, method: str, size: int, limit: int | None) -> None:
        if limit is not None:
            text = (f"{method} request not sent: its message is {size} bytes, over the "
                    f"message size limit of {limit} bytes")
        else:
            text = (f"{method} request refused: the server closed the connection with 1009 "
                    f"(message too big) on its {size}-byte message; its limit is lower")
        super().__init__(text)
        self.method = method
        self.size = size
        self.limit = limit


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
