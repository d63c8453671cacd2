"""The `trio-exec` command line: one subcommand per job, each added by its own `_add_*`
function with the function that runs it (`args.run(args) -> int`).

Rules: `main(argv) -> int` never raises for bad input. A bad setting (a value the parser or
`Config` refuses, an unusable token file or certificate, a non-loopback address without a
token) is one line on stderr naming the setting, and exit status 2; a daemon that cannot start listening (the address taken, a name that does not
resolve) is one line naming the address, and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import trio

from trio_exec import __version__
from trio_exec.config import STDIO_LISTEN, Config, ConfigError, parse_listen_url
from trio_exec.process.cgroup import ContainmentError
from trio_exec.process.limits import DEFAULT_MAX_PROCESSES_PER_SESSION, default_max_processes
from trio_exec.proto.errors import os_error_text
from trio_exec.rpc.inflight import DEFAULT_MAX_PENDING_REQUESTS, DEFAULT_READ_PAUSE_REQUESTS
from trio_exec.session.registry import DEFAULT_MAX_SESSIONS
from trio_exec.ws.frontdoor import DEFAULT_MAX_CONNECTIONS

EXIT_BAD_SETTING = 2
EXIT_CANNOT_SERVE = 1

DESCRIPTION = """\
A remote-execution daemon for coding agents: it runs commands and touches files on this
machine for an agent (such as the codex CLI) running on another one, over the Codex
exec-server protocol on WebSocket. Sessions survive dropped connections."""

EPILOG = """\
examples:
  trio-exec serve --listen ws://127.0.0.1:8765
  CODEX_EXEC_SERVER_URL=ws://127.0.0.1:8765 codex
  trio-exec exec --url ws://127.0.0.1:8765 -- uname -a

`trio-exec COMMAND --help` lists the options of a command."""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (`Error: argument --x: ...`), status 2."""

    def __init__(self, *args: Any, error_prefix: str = "Error: ", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_prefix = error_prefix

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_SETTING, f"{self.error_prefix}{message}\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite, non-negative number: {text}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    lowered = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(lowered[-1:], 1)
    number = lowered[:-1] if lowered[-1:] in units else lowered
    try:
        value = int(float(number) * factor)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a size: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"unknown level `{text}`; expected one of {', '.join(LOG_LEVELS)}"
        )
    return level


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trio-exec", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve(commands)
    _add_exec(commands)
    _add_tools(commands)
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the exec-server daemon",
                                description="Run the exec-server daemon; it prints its URL.")
    serve.add_argument("--listen", default="ws://127.0.0.1:0",
                       help="ws://HOST:PORT, or wss://HOST:PORT with --tls-cert/--tls-key: an IP "
                       "or a host name (every address it resolves to); port 0 picks a free one "
                       "(default ws://127.0.0.1:0). A non-loopback address needs a token. Or "
                       "`stdio`: one session over stdin and stdout, one JSON message per line, "
                       "until stdin ends")
    serve.add_argument("--session-ttl", type=_seconds, default=30.0,
                       help="seconds a disconnected session waits for a resume (default 30)")
    serve.add_argument("--retention", type=_seconds, default=30.0,
                       help="seconds a closed process stays readable (default 30)")
    serve.add_argument("--ping-interval", type=_seconds, default=20.0,
                       help="seconds between pings to the peer; 0 disables (default 20)")
    serve.add_argument("--ping-timeout", type=_positive_seconds, default=20.0,
                       help="seconds to wait for a pong before dropping the peer (default 20)")
    serve.add_argument("--max-message-size", type=_size, default="64MiB",
                       help="largest inbound message (default 64MiB)")
    token = serve.add_mutually_exclusive_group()
    token.add_argument("--auth-token-file",
                       help="require `Authorization: Bearer <token>` with the token in this file "
                       "(re-read on SIGHUP)")
    token.add_argument("--auth-token-sha256", metavar="HEX",
                       help="the same, given as the token's SHA-256 (64 hex digits), so the "
                       "token itself need not be stored here")
    serve.add_argument("--allow-unauthenticated", action="store_true",
                       help="serve a non-loopback address without a token (refused otherwise)")
    serve.add_argument("--tls-cert", metavar="PEM",
                       help="certificate chain for wss:// (server certificate first; re-read "
                       "on SIGHUP)")
    serve.add_argument("--tls-key", metavar="PEM", help="its unencrypted private key")
    serve.add_argument("--shutdown-grace", type=_seconds, default=10.0,
                       help="seconds allowed for a graceful shutdown (default 10)")
    serve.add_argument("--read-pause-requests", type=_count, default=DEFAULT_READ_PAUSE_REQUESTS,
                       help="stop reading a connection while this many of its requests are in "
                            "flight, running or with their reply not yet written (default %(default)s)")
    serve.add_argument("--read-pause-bytes", type=_size, default="16MiB",
                       help="stop reading a connection while this many bytes of its replies wait "
                            "to be written (default 16MiB)")
    serve.add_argument("--process-memory-max", type=_size, default=None,
                       help="memory.max of each process's cgroup (needs a delegated cgroup v2 "
                            "subtree with the memory controller; default none)")
    serve.add_argument("--process-pids-max", type=_count, default=None,
                       help="pids.max of each process's cgroup (needs a delegated cgroup v2 "
                            "subtree with the pids controller; default none)")
    limits = serve.add_argument_group(
        "limits", "each refusal names its limit and value; other clients are not affected")
    limits.add_argument("--max-connections", type=_count, default=DEFAULT_MAX_CONNECTIONS,
                        help="WebSocket connections at once; an upgrade beyond it gets HTTP 503 "
                             "(default %(default)s)")
    limits.add_argument("--max-sessions", type=_count, default=DEFAULT_MAX_SESSIONS,
                        help="sessions, attached or parked; `initialize` beyond it is refused "
                             "(default %(default)s)")
    limits.add_argument("--max-processes-per-session", type=_count,
                        default=DEFAULT_MAX_PROCESSES_PER_SESSION,
                        help="running processes (started, not yet closed) of one session "
                             "(default %(default)s)")
    limits.add_argument("--max-processes", type=_count, default=None,
                        help="running processes of all sessions together (default 1024, or a "
                             f"fifth of the open-file limit if lower: {default_max_processes()} "
                             "here)")
    limits.add_argument("--max-pending-requests", type=_count,
                        default=DEFAULT_MAX_PENDING_REQUESTS,
                        help="requests of one connection not yet answered, long-polls included; "
                             "one beyond it is answered at once with an error (default "
                             "%(default)s; keep it above --read-pause-requests)")
    limits.add_argument("--max-retained-bytes", type=_size, default="256MiB",
                        help="process output kept for reading, all processes together; the "
                             "oldest closed processes' output is dropped first (default 256MiB)")
    serve.add_argument("--log-level", type=_log_level, default="WARNING",
                       help=f"one of {', '.join(LOG_LEVELS)} (default WARNING)")
    serve.set_defaults(run=_serve)


def _add_exec(commands: Any) -> None:
    from trio_exec.cli import exec as exec_cli

    parser = commands.add_parser("exec", help="run a command through an exec-server",
                                 error_prefix="trio-exec exec: ")
    exec_cli.configure_parser(parser)
    parser.set_defaults(run=exec_cli.run)


def _add_tools(commands: Any) -> None:
    from trio_exec.cli import tools as tools_cli

    parser = commands.add_parser("tools", help="list or call the agent tools of the environment",
                                 error_prefix="trio-exec tools: ")
    tools_cli.configure_parser(parser)
    parser.set_defaults(run=tools_cli.run)


def config_from_args(args: argparse.Namespace) -> Config:
    """The daemon's settings (the token file is read, and the certificate loaded, when the
    daemon is built: a bad one is a `ConfigError` then)."""
    stdio = args.listen in STDIO_LISTEN
    return Config(
        listen=Config().listen if stdio else parse_listen_url(args.listen),
        stdio=stdio,
        session_ttl=args.session_ttl,
        retention=args.retention,
        ping_interval=args.ping_interval or None,
        ping_timeout=args.ping_timeout,
        max_message_size=args.max_message_size,
        auth_token_file=args.auth_token_file,
        auth_token_sha256=args.auth_token_sha256,
        allow_unauthenticated=args.allow_unauthenticated,
        tls_cert_file=args.tls_cert,
        tls_key_file=args.tls_key,
        shutdown_grace=args.shutdown_grace,
        read_pause_requests=args.read_pause_requests,
        read_pause_bytes=args.read_pause_bytes,
        process_memory_max=args.process_memory_max,
        process_pids_max=args.process_pids_max,
        max_connections=args.max_connections,
        max_sessions=args.max_sessions,
        max_processes_per_session=args.max_processes_per_session,
        max_processes=args.max_processes or default_max_processes(),
        max_pending_requests=args.max_pending_requests,
        max_retained_bytes=args.max_retained_bytes,
    )


def _serve(args: argparse.Namespace) -> int:
    from trio_exec.server import run_daemon

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    logging.basicConfig(
        level=args.log_level, stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        if config.stdio:
            from trio_exec.stdio import run_stdio

            run_stdio(config)
        else:
            trio.run(run_daemon, config)
    except ConfigError as exc:  # a token, a certificate, an exposed address without a token
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except OSError as exc:  # ListenError's text names the address
        print(f"Error: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    except ContainmentError as exc:  # a --process-*-max this host cannot enforce
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help(sys.stderr)
        return EXIT_BAD_SETTING
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad setting already reported
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_SETTING
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
