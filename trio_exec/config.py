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

from trio_exec.proto.codec import DEFAULT_MAX_MESSAGE_SIZE
from trio_exec.rpc.inflight import DEFAULT_READ_PAUSE_BYTES, DEFAULT_READ_PAUSE_REQUESTS


class ConfigError(ValueError):
    """A setting that cannot work; `str(err)` is the one-line message for stderr."""


@attrs.frozen(kw_only=True)
class ListenAddress:
    """Where to listen: an IP literal, or a host name resolved when the daemon binds."""

    host: str
    port: int

    @property
    def is_name(self) -> bool:
        return not _is_ip(self.host)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"


#: A DNS name (letters, digits, dots, hyphens; underscores as some resolvers allow).
_HOST_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_listen_url(url: str) -> ListenAddress:
    """`ws://HOST:PORT`: an IP (IPv6 in brackets) or a host name such as `localhost`, which the
    daemon resolves when it binds (every address it resolves to)."""
    if not url.startswith("ws://"):
        raise ConfigError(f"unsupported --listen URL `{url}`; expected `ws://HOST:PORT`")
    rest = url[len("ws://") :].rstrip("/")
    host, sep, port_text = rest.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    valid_host = _is_ip(host) or (not bracketed and _HOST_NAME.fullmatch(host) is not None)
    valid_port = port_text.isascii() and port_text.isdigit() and int(port_text) <= 65535
    if not (sep and valid_host and valid_port):
        raise ConfigError(f"invalid websocket --listen URL `{url}`; expected `ws://HOST:PORT`")
    return ListenAddress(host=host, port=int(port_text))


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
            "ws://HOST:PORT: an IP or a host name (every address it resolves to); port 0 picks "
            "a free one", live=False, metavar="URL"),
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
            "require `Authorization: Bearer <token>` with the token in this file (re-read on "
            "SIGHUP)", live=True, metavar="PATH"),
    Setting("shutdown_grace", "shutdown_grace_seconds", "--shutdown-grace", seconds, 10.0,
            "seconds allowed for a graceful shutdown", live=True, metavar="SECONDS"),
    Setting("read_pause_requests", "read_pause_requests", "--read-pause-requests", count,
            DEFAULT_READ_PAUSE_REQUESTS, "stop reading a connection while this many of its "
            "requests are in flight, running or with their reply not yet written", live=True,
            metavar="N"),
    Setting("read_pause_bytes", "read_pause_bytes", "--read-pause-bytes", size,
            DEFAULT_READ_PAUSE_BYTES, "stop reading a connection while this many bytes of its "
            "replies wait to be written", live=True, metavar="SIZE"),
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


def read_token(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read --auth-token-file: {reason}") from None
    if not token:
        raise ConfigError("--auth-token-file is empty")
    if not (token.isascii() and token.isprintable()) or any(c.isspace() for c in token):
        raise ConfigError("--auth-token-file must hold one token of printable ASCII, no spaces")
    return token


def resolve(flags: Mapping[str, Any], config_file: str | None = None) -> Settings:
    """Defaults, then the file, then the flags given (already parsed; None = not given)."""
    values = {setting.name: setting.default for setting in SETTINGS}
    if config_file is not None:
        values.update(read_file(config_file))
    given = {name: value for name, value in flags.items() if value is not None}
    values.update(given)
    try:
        listen = parse_listen_url(values["listen"])
    except ConfigError as exc:
        if "listen" in given or config_file is None:
            raise
        raise ConfigError(f"{Path(config_file).name}: listen: {exc}") from None
    token_file = values["auth_token_file"]
    config = Config(
        listen=listen,
        session_ttl=values["session_ttl"],
        retention=values["retention"],
        ping_interval=values["ping_interval"] or None,
        ping_timeout=values["ping_timeout"],
        max_message_size=values["max_message_size"],
        auth_token=read_token(token_file) if token_file else None,
        shutdown_grace=values["shutdown_grace"],
        read_pause_requests=values["read_pause_requests"],
        read_pause_bytes=values["read_pause_bytes"],
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
    if old.config.auth_token != new.config.auth_token:
        if old.config.auth_token is None:
            applied.append("an auth token is now required")
        elif new.config.auth_token is None:
            applied.append("the auth token was removed")
        else:
            applied.append("the auth token was replaced")
    return applied, deferred
