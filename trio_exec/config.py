"""Daemon configuration: one table of settings, read from a TOML file and the command line.

Rules:
- `SETTINGS` is the one list of the daemon's settings. Each has a `serve` flag and a key in the
  configuration file whose name carries its unit (`session_ttl_seconds`, `read_pause_bytes`);
  the flags of `serve` and the keys the file accepts are both made from it, so a new setting is
  one entry here.
- Layers, lowest first: the defaults, the file (`--config`), the flags. A flag given wins.
- A value that cannot work is a `ConfigError` whose text is one line naming the setting: the
  flag (`argument --session-ttl: ...`) or the file and its key (`config.toml: retention_seconds:
  ...`). An unknown key in the file, or a file that is not TOML, is refused the same way.
- `Config` is what the daemon runs with: every limit and timer of the daemon is a field there
  with the contract's default; nothing else in the daemon reads the environment or argv.
- `live` settings are applied on a reload (SIGHUP); the others take effect at the next start.
  `describe_changes` says which ones a reload changed, never a token.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from trio_exec.process.limits import DEFAULT_MAX_PROCESSES_PER_SESSION, default_max_processes
from trio_exec.process.retention import DEFAULT_MAX_RETAINED_BYTES
from trio_exec.process.spool import DEFAULT_PROCESS_BYTES, DEFAULT_TOTAL_BYTES
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
    #: Where each process's output is also written (`process/spool.py`); None: no spool.
    output_spool_dir: str | None = None
    #: The most a process's spool holds, and all spools together.
    output_spool_process_bytes: int = DEFAULT_PROCESS_BYTES
    output_spool_total_bytes: int = DEFAULT_TOTAL_BYTES

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


# --- value parsers: each takes a flag's text or a TOML value, raises ValueError(reason) -------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")


def seconds(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number of seconds: {value}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"not a number of seconds: {value}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"must be a finite, non-negative number: {value}")
    return number


def positive_seconds(value: object) -> float:
    number = seconds(value)
    if number == 0:
        raise ValueError(f"must be positive: {value}")
    return number


_SIZE_UNITS = {"k": 1024, "m": 1024**2, "g": 1024**3}


def size(value: object) -> int:
    """Bytes: a whole number, or text with an optional unit (`64MiB`, `512k`)."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a size: {value}")
    if isinstance(value, int):
        number = value
    else:
        lowered = value.strip().lower().removesuffix("ib").removesuffix("b")
        factor = _SIZE_UNITS.get(lowered[-1:], 1)
        digits = lowered[:-1] if lowered[-1:] in _SIZE_UNITS else lowered
        try:
            number = int(float(digits) * factor)
        except (ValueError, OverflowError):
            raise ValueError(f"not a size: {value}") from None
    if number <= 0:
        raise ValueError(f"must be positive: {value}")
    return number


def count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"not a whole number: {value}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"not a whole number: {value}") from None
    if number <= 0:
        raise ValueError(f"must be positive: {value}")
    return number


def text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"not a non-empty string: {value!r}")
    return value


def boolean(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"not true or false: {value!r}")


def log_level(value: object) -> str:
    level = text(value).strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"unknown level `{value}`; expected one of {', '.join(LOG_LEVELS)}")
    return level


def log_format(value: object) -> str:
    chosen = text(value).strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"unknown format `{value}`; expected one of {', '.join(LOG_FORMATS)}")
    return chosen


@attrs.frozen
class Setting:
    """One setting: its name in `Settings.values`, its file key (unit in the name), its flag."""

    name: str
    key: str
    flag: str
    parse: Callable[[object], Any]
    default: Any
    help: str
    #: Applied by a reload (SIGHUP); otherwise it takes effect at the next start.
    live: bool
    metavar: str = "VALUE"


SETTINGS: tuple[Setting, ...] = (
    # checked by `parse_listen_url` in `resolve`, whose messages name --listen themselves
    Setting("listen", "listen", "--listen", text, "ws://127.0.0.1:0",
            "ws://HOST:PORT, or wss://HOST:PORT with --tls-cert/--tls-key: an IP or a host name "
            "(every address it resolves to); port 0 picks a free one. A non-loopback address "
            "needs a token. Or `stdio`: one session over stdin and stdout, one JSON message per "
            "line, until stdin ends", live=False, metavar="URL"),
    Setting("session_ttl", "session_ttl_seconds", "--session-ttl", seconds, 30.0,
            "seconds a disconnected session waits for a resume", live=True, metavar="SECONDS"),
    Setting("retention", "retention_seconds", "--retention", seconds, 30.0,
            "seconds a closed process stays readable", live=True, metavar="SECONDS"),
    Setting("ping_interval", "ping_interval_seconds", "--ping-interval", seconds, 20.0,
            "seconds between pings to the peer; 0 disables", live=True, metavar="SECONDS"),
    Setting("ping_timeout", "ping_timeout_seconds", "--ping-timeout", positive_seconds, 20.0,
            "seconds to wait for a pong before dropping the peer", live=True,
            metavar="SECONDS"),
    Setting("max_message_size", "max_message_size_bytes", "--max-message-size", size,
            DEFAULT_MAX_MESSAGE_SIZE, "largest inbound message (64MiB, 512k, or bytes)", live=True,
            metavar="SIZE"),
    Setting("auth_token_file", "auth_token_file", "--auth-token-file", text, None,
            "require `Authorization: Bearer <token>` with the token in this file (its content "
            "re-read on SIGHUP)", live=False, metavar="PATH"),
    Setting("auth_token_sha256", "auth_token_sha256", "--auth-token-sha256", text, None,
            "require a Bearer token whose SHA-256 is these 64 hex digits (the token itself need "
            "not be on this machine)", live=False, metavar="HEX"),
    Setting("allow_unauthenticated", "allow_unauthenticated", "--allow-unauthenticated",
            boolean, False, "serve a non-loopback address without a token (warned at start)",
            live=False, metavar="BOOL"),
    Setting("tls_cert", "tls_cert_file", "--tls-cert", text, None,
            "PEM certificate chain for wss:// (re-read on SIGHUP)", live=False, metavar="PATH"),
    Setting("tls_key", "tls_key_file", "--tls-key", text, None,
            "PEM private key of --tls-cert (unencrypted)", live=False, metavar="PATH"),
    Setting("shutdown_grace", "shutdown_grace_seconds", "--shutdown-grace", seconds, 10.0,
            "seconds allowed for a graceful shutdown", live=True, metavar="SECONDS"),
    Setting("read_pause_requests", "read_pause_requests", "--read-pause-requests", count,
            DEFAULT_READ_PAUSE_REQUESTS, "stop reading a connection while this many of its "
            "requests are in flight, running or with their reply not yet written", live=True,
            metavar="N"),
    Setting("read_pause_bytes", "read_pause_bytes", "--read-pause-bytes", size,
            DEFAULT_READ_PAUSE_BYTES, "stop reading a connection while this many bytes of its "
            "replies wait to be written", live=True, metavar="SIZE"),
    Setting("process_memory_max", "process_memory_max_bytes", "--process-memory-max", size,
            None, "memory.max of each process's cgroup (needs a delegated cgroup v2 subtree "
            "with the memory controller)", live=False, metavar="SIZE"),
    Setting("process_pids_max", "process_pids_max", "--process-pids-max", count, None,
            "pids.max of each process's cgroup (needs a delegated cgroup v2 subtree with the "
            "pids controller)", live=False, metavar="N"),
    Setting("max_connections", "max_connections", "--max-connections", count,
            DEFAULT_MAX_CONNECTIONS, "limit: WebSocket connections at once; an upgrade beyond "
            "it gets HTTP 503", live=False, metavar="N"),
    Setting("max_sessions", "max_sessions", "--max-sessions", count, DEFAULT_MAX_SESSIONS,
            "limit: sessions, attached or parked; `initialize` beyond it is refused",
            live=False, metavar="N"),
    Setting("max_processes_per_session", "max_processes_per_session",
            "--max-processes-per-session", count, DEFAULT_MAX_PROCESSES_PER_SESSION,
            "limit: running processes (started, not yet closed) of one session", live=False,
            metavar="N"),
    Setting("max_processes", "max_processes", "--max-processes", count, None,
            f"limit: running processes of all sessions together (none: 1024, or a fifth of the "
            f"open-file limit if lower: {default_max_processes()} here)", live=False,
            metavar="N"),
    Setting("max_pending_requests", "max_pending_requests", "--max-pending-requests", count,
            DEFAULT_MAX_PENDING_REQUESTS, "limit: requests of one connection not yet answered, "
            "long-polls included; one beyond it is answered at once with an error (keep it "
            "above --read-pause-requests)", live=True, metavar="N"),
    Setting("max_retained_bytes", "max_retained_bytes", "--max-retained-bytes", size,
            DEFAULT_MAX_RETAINED_BYTES, "limit: process output kept for reading, all processes "
            "together; the oldest closed processes' output is dropped first", live=False,
            metavar="SIZE"),
    Setting("output_spool_dir", "output_spool_dir", "--output-spool-dir", text, None,
            "also write each process's output to files here, so a read of output the memory no "
            "longer holds is served from disk (the directory is the daemon's own: created, "
            "emptied of old spool files at start)", live=False, metavar="PATH"),
    Setting("output_spool_process_bytes", "output_spool_process_bytes",
            "--output-spool-process-bytes", size, DEFAULT_PROCESS_BYTES,
            "limit: the output spooled for one process; beyond it its spool stops (logged)",
            live=False, metavar="SIZE"),
    Setting("output_spool_total_bytes", "output_spool_total_bytes",
            "--output-spool-total-bytes", size, DEFAULT_TOTAL_BYTES,
            "limit: the output spooled for all processes together; beyond it new output is not "
            "spooled (logged) until forgotten processes free room", live=False, metavar="SIZE"),
    Setting("log_level", "log_level", "--log-level", log_level, "WARNING",
            f"one of {', '.join(LOG_LEVELS)}", live=True, metavar="LEVEL"),
    Setting("log_format", "log_format", "--log-format", log_format, "text",
            "text (no timestamps under journald) or json (one object per line, for collectors)",
            live=False, metavar="FORMAT"),
)

BY_NAME = {setting.name: setting for setting in SETTINGS}
BY_KEY = {setting.key: setting for setting in SETTINGS}


def default_text(setting: Setting) -> str:
    value = setting.default
    if setting.parse is size and isinstance(value, int) and value % (1024 * 1024) == 0:
        return f"{value // (1024 * 1024)}MiB"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "none" if value is None else str(value)


# --- layering ---------------------------------------------------------------------------------


def read_file(path: str) -> dict[str, Any]:
    """The file's settings by name, each parsed. Raises `ConfigError` naming the file and key."""
    label = Path(path).name
    try:
        with open(path, "rb") as handle:
            table = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read --config {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{label}: not valid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, raw in table.items():
        setting = BY_KEY.get(key)
        if setting is None:
            raise ConfigError(f"{label}: unknown setting `{key}`")
        try:
            values[setting.name] = setting.parse(raw)
        except ValueError as exc:
            raise ConfigError(f"{label}: {key}: {exc}") from None
    return values


@attrs.frozen
class Settings:
    """Every setting's value, and the daemon's `Config` made from them."""

    values: Mapping[str, Any]
    config: Config

    def __getitem__(self, name: str) -> Any:
        return self.values[name]


def resolve(flags: Mapping[str, Any], config_file: str | None = None) -> Settings:
    """Defaults, then the file, then the flags given (already parsed; None = not given)."""
    values = {setting.name: setting.default for setting in SETTINGS}
    if config_file is not None:
        values.update(read_file(config_file))
    given = {name: value for name, value in flags.items() if value is not None}
    values.update(given)
    stdio = values["listen"] in STDIO_LISTEN
    try:
        listen = Config().listen if stdio else parse_listen_url(values["listen"])
    except ConfigError as exc:
        if "listen" in given or config_file is None:
            raise
        raise ConfigError(f"{Path(config_file).name}: listen: {exc}") from None
    config = Config(
        listen=listen,
        stdio=stdio,
        session_ttl=values["session_ttl"],
        retention=values["retention"],
        ping_interval=values["ping_interval"] or None,
        ping_timeout=values["ping_timeout"],
        max_message_size=values["max_message_size"],
        auth_token_file=values["auth_token_file"],
        auth_token_sha256=values["auth_token_sha256"],
        allow_unauthenticated=values["allow_unauthenticated"],
        tls_cert_file=values["tls_cert"],
        tls_key_file=values["tls_key"],
        shutdown_grace=values["shutdown_grace"],
        read_pause_requests=values["read_pause_requests"],
        read_pause_bytes=values["read_pause_bytes"],
        process_memory_max=values["process_memory_max"],
        process_pids_max=values["process_pids_max"],
        max_connections=values["max_connections"],
        max_sessions=values["max_sessions"],
        max_processes_per_session=values["max_processes_per_session"],
        max_processes=values["max_processes"] or default_max_processes(),
        max_pending_requests=values["max_pending_requests"],
        max_retained_bytes=values["max_retained_bytes"],
        output_spool_dir=values["output_spool_dir"],
        output_spool_process_bytes=values["output_spool_process_bytes"],
        output_spool_total_bytes=values["output_spool_total_bytes"],
    )
    return Settings(values, config)


def describe_changes(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """(what a reload applies, what waits for a restart), one phrase each; a token's value
    never appears."""
    applied: list[str] = []
    deferred: list[str] = []
    for setting in SETTINGS:
        before, after = old[setting.name], new[setting.name]
        if before == after:
            continue
        phrase = f"{setting.key} {before} -> {after}"
        (applied if setting.live else deferred).append(phrase)
    return applied, deferred
