"""Daemon configuration: one frozen object, built from the command line or by an embedder.

Rule: every limit and timer of the daemon is a field here with the contract's default; nothing
else in the daemon reads the environment or argv for settings.
"""

from __future__ import annotations

import ipaddress
import re

import attrs

from trio_exec.process.limits import DEFAULT_MAX_PROCESSES_PER_SESSION, default_max_processes
from trio_exec.process.retention import DEFAULT_MAX_RETAINED_BYTES
from trio_exec.proto.codec import DEFAULT_MAX_MESSAGE_SIZE
from trio_exec.rpc.inflight import (
    DEFAULT_MAX_PENDING_REQUESTS,
    DEFAULT_READ_PAUSE_BYTES,
    DEFAULT_READ_PAUSE_REQUESTS,
)
from trio_exec.session.registry import DEFAULT_MAX_SESSIONS
from trio_exec.ws.frontdoor import DEFAULT_MAX_CONNECTIONS


class ConfigError(ValueError):
    """A setting that cannot work; `str(err)` is the one-line message for stderr."""


@attrs.frozen(kw_only=True)
class ListenAddress:
    """Where to listen: an IP literal, or a host name resolved when the daemon binds."""

    host: str
    port: int
    #: Served over TLS (`wss://`).
    tls: bool = False

    @property
    def is_name(self) -> bool:
        return not _is_ip(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}"


#: A DNS name (letters, digits, dots, hyphens; underscores as some resolvers allow).
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_listen_url(url: str) -> ListenAddress:
    """`ws://HOST:PORT` or `wss://HOST:PORT` (TLS): an IP (IPv6 in brackets) or a host name such
    as `localhost`, which the daemon resolves when it binds (every address it resolves to)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("ws", "wss"):
        raise ConfigError(
            f"unsupported --listen URL `{url}`; expected `ws://HOST:PORT` or `wss://HOST:PORT`"
        )
    rest = rest.rstrip("/")
    host, sep, port_text = rest.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    valid_host = _is_ip(host) or (not bracketed and _HOST_NAME.fullmatch(host) is not None)
    valid_port = port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535
    if not (sep and valid_host and valid_port):
        raise ConfigError(
            f"invalid websocket --listen URL `{url}`; expected `{scheme}://HOST:PORT`"
        )
    return ListenAddress(host=host, port=int(port_text), tls=scheme == "wss")


#: `--listen` values serving one session over stdin and stdout instead of a socket.
STDIO_LISTEN = ("stdio", "stdio://")


@attrs.frozen(kw_only=True)
class Config:
    listen: ListenAddress = attrs.field(factory=lambda: ListenAddress(host="127.0.0.1", port=0))
    #: Serve one session over stdin and stdout (`stdio.py`); `listen` is then not used.
    stdio: bool = False
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
    #: A file holding the token (read at start when `auth_token` is unset, and on SIGHUP).
    auth_token_file: str | None = None
    #: The token's SHA-256 in hex, instead of the token (`--auth-token-sha256`).
    auth_token_sha256: str | None = None
    #: Serve a non-loopback address without a token (refused otherwise; `exposure.py`).
    allow_unauthenticated: bool = False
    #: PEM certificate chain and key for `wss://` (both or neither; re-read on SIGHUP).
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    #: Seconds allowed for connections to close and processes to be reaped at shutdown.
    shutdown_grace: float = 10.0
    #: A connection's socket is not read while this many of its requests are in flight
    #: (read, reply not yet written).
    read_pause_requests: int = DEFAULT_READ_PAUSE_REQUESTS
    #: A connection's socket is not read while this many bytes of its replies wait to be written.
    read_pause_bytes: int = DEFAULT_READ_PAUSE_BYTES
    #: Per-process `memory.max` in bytes (needs a delegated cgroup with the memory controller).
    process_memory_max: int | None = None
    #: Per-process `pids.max` (needs a delegated cgroup with the pids controller).
    process_pids_max: int | None = None

    #: WebSocket connections served at once; an upgrade beyond it answers HTTP 503.
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    #: Sessions, attached or parked; an `initialize` that would create one more is refused.
    max_sessions: int = DEFAULT_MAX_SESSIONS
    #: Live processes (started, not yet closed) of one session.
    max_processes_per_session: int = DEFAULT_MAX_PROCESSES_PER_SESSION
    #: Live processes of every session together (default: 1024, or a fifth of RLIMIT_NOFILE).
    max_processes: int = attrs.field(factory=default_max_processes)
    #: Requests of one connection read and not yet answered, long-polls included.
    max_pending_requests: int = DEFAULT_MAX_PENDING_REQUESTS
    #: Bytes of process output retained in total, across every process of every session.
    max_retained_bytes: int = DEFAULT_MAX_RETAINED_BYTES

    def __attrs_post_init__(self) -> None:
        check_tls_and_auth(self)

    @property
    def authenticated(self) -> bool:
        """Whether the upgrade requires a token."""
        return any(v is not None for v in (self.auth_token, self.auth_token_file,
                                           self.auth_token_sha256))


def check_tls_and_auth(config: Config) -> None:
    """The TLS and token settings fit together; raises `ConfigError` naming the setting."""
    if (config.tls_cert_file is None) != (config.tls_key_file is None):
        missing = "--tls-key" if config.tls_key_file is None else "--tls-cert"
        raise ConfigError(f"--tls-cert and --tls-key go together; {missing} is missing")
    if config.listen.tls and config.tls_cert_file is None:
        raise ConfigError("--listen wss://… needs --tls-cert and --tls-key")
    if not config.listen.tls and config.tls_cert_file is not None:
        raise ConfigError("--tls-cert needs a `wss://` --listen URL")
    if config.auth_token_sha256 is not None and (
        config.auth_token is not None or config.auth_token_file is not None
    ):
        raise ConfigError("give the token either as --auth-token-file or --auth-token-sha256")
