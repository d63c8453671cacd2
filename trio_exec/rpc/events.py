"""What a connection tells whoever watches the daemon (its metrics), without knowing them.

Rules: as `process/events.py`: called at the moment named, cheap, synchronous, never raising;
the base class does nothing.
"""

from __future__ import annotations


class ConnectionEvents:
    def request_done(self, method: str, error_code: int | None, seconds: float) -> None:
        """A request was answered: its method as sent, the JSON-RPC error code (None on
        success), and the seconds from reading it to its reply being encoded."""

    def message_too_big(self) -> None:
        """The peer sent a message over the size limit (the connection closes 1009)."""
