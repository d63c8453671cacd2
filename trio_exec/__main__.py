"""The `trio-exec` command line: `serve` runs the daemon; `exec` runs a command through one.

Rule: `main(argv) -> int` never raises for bad input: a one-line error on stderr and a non-zero
exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import trio

from .config import DEFAULT_READ_PAUSE_REQUESTS, Config, ConfigError, parse_listen_url
from .proto.errors import os_error_text


def _positive_or_zero(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _size(text: str) -> int:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    lowered = text.strip().lower().removesuffix("ib").removesuffix("b")
    factor = units.get(lowered[-1:], 1)
    number = lowered[:-1] if lowered[-1:] in units else lowered
    try:
        value = int(float(number) * factor)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trio-exec", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the exec-server daemon")
    serve.add_argument("--listen", default="ws://127.0.0.1:0", help="ws://IP:PORT (port 0: any)")
    serve.add_argument("--session-ttl", type=_positive_or_zero, default=30.0,
                       help="seconds a disconnected session waits for a resume (default 30)")
    serve.add_argument("--retention", type=_positive_or_zero, default=30.0,
                       help="seconds a closed process stays readable (default 30)")
    serve.add_argument("--ping-interval", type=_positive_or_zero, default=20.0,
                       help="seconds between pings to the peer; 0 disables (default 20)")
    serve.add_argument("--ping-timeout", type=_positive_or_zero, default=20.0,
                       help="seconds to wait for a pong before dropping the peer (default 20)")
    serve.add_argument("--max-message-size", type=_size, default="64MiB",
                       help="largest inbound message (default 64MiB)")
    serve.add_argument("--auth-token-file", help="require `Authorization: Bearer <token>`")
    serve.add_argument("--shutdown-grace", type=_positive_or_zero, default=10.0,
                       help="seconds allowed for a graceful shutdown (default 10)")
    serve.add_argument("--read-pause-requests", type=_count, default=DEFAULT_READ_PAUSE_REQUESTS,
                       help="stop reading a connection while this many of its requests are in "
                            "flight, running or with their reply not yet written (default %(default)s)")
    serve.add_argument("--read-pause-bytes", type=_size, default="16MiB",
                       help="stop reading a connection while this many bytes of its replies wait "
                            "to be written (default 16MiB)")
    serve.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    from . import cli_exec

    cli_exec.configure_parser(
        commands.add_parser("exec", help="run a command through an exec-server")
    )
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    token = None
    if args.auth_token_file:
        try:
            with open(args.auth_token_file, encoding="utf-8") as handle:
                token = handle.read().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read --auth-token-file: {exc.strerror}") from None
        if not token:
            raise ConfigError("--auth-token-file is empty")
    return Config(
        listen=parse_listen_url(args.listen),
        session_ttl=args.session_ttl,
        retention=args.retention,
        ping_interval=args.ping_interval or None,
        ping_timeout=args.ping_timeout,
        max_message_size=args.max_message_size,
        auth_token=token,
        shutdown_grace=args.shutdown_grace,
        read_pause_requests=args.read_pause_requests,
        read_pause_bytes=args.read_pause_bytes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        from .server import run_daemon

        logging.basicConfig(
            level=args.log_level.upper(), stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        try:
            config = config_from_args(args)
            trio.run(run_daemon, config)
        except ConfigError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 1
        except OSError as exc:
            print(f"Error: {os_error_text(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        return 0
    if args.command == "exec":
        from .cli_exec import run

        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
