"""Daemon configuration: one frozen object, built from the command line or by an embedder.

Rule: every limit and timer of the daemon is a field here with the contract's default; nothing
else in the daemon reads the environment or argv for settings.
"""

from __future__ import annotations

import ipaddress

import attrs

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024
DEFAULT_READ_PAUSE_REQUESTS = 16
DEFAULT_READ_PAUSE_BYTES = 16 * 1024 * 1024


class ConfigError(ValueError):
    """A setting that cannot work; `str(err)` is the one-line message for stderr."""


@attrs.frozen(kw_only=True)
class ListenAddress:
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"


def parse_listen_url(url: str) -> ListenAddress:
    """`ws://IP:PORT` (IPv6 literals in brackets); host names are refused like the reference."""
    if not url.startswith("ws://"):
        raise ConfigError(f"unsupported --listen URL `{url}`; expected `ws://IP:PORT`")
    rest = url[len("ws://") :].rstrip("/")
    host, sep, port_text = rest.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        if not sep:
            raise ValueError(rest)
        ipaddress.ip_address(host)
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError(port_text)
    except ValueError:
        raise ConfigError(f"invalid websocket --listen URL `{url}`; expected `ws://IP:PORT`") from None
    return ListenAddress(host=host, port=port)


@attrs.frozen(kw_only=True)
class Config:
    listen: ListenAddress = attrs.field(factory=lambda: ListenAddress(host="127.0.0.1", port=0))
    #: Seconds a parked session waits for a resume before its processes are killed.
    session_ttl: float = 30.0
    #: Seconds a closed process stays readable.
    retention: float = 30.0
    #: Seconds between WebSocket pings to the peer; None disables pings.
    ping_interval: float | None = 20.0
    #: Seconds to wait for a pong before the peer is considered dead and detached.
    ping_timeout: float = 20.0
    #: Largest inbound WebSocket message, in bytes (Close 1009 beyond it).
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: When set, the upgrade request must carry `Authorization: Bearer <token>`.
    auth_token: str | None = None
    #: Seconds allowed for connections to close and processes to be reaped at shutdown.
    shutdown_grace: float = 10.0
    #: A connection's socket is not read while this many of its requests are in flight
    #: (read, reply not yet written).
    read_pause_requests: int = DEFAULT_READ_PAUSE_REQUESTS
    #: A connection's socket is not read while this many bytes of its replies wait to be written.
    read_pause_bytes: int = DEFAULT_READ_PAUSE_BYTES
