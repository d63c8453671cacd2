"""`trio-exec exec`: run one command through an exec-server, as if it ran here.

Rules:
- stdout and stderr of the command go to ours (a `--tty` command's PTY to our stdout), each
  byte exactly once and in order, also across a connection drop (the client resumes the
  session and catches up with `process/read afterSeq`).
- Our stdin is forwarded: to the command's stdin pipe (EOF closes it), or with `--tty` to its
  PTY, with our terminal in raw mode (restored on every exit path) and our window size sent
  at start and on SIGWINCH (`process/resize`). With `--tty`, the end of our stdin (a pipe or
  a file: `echo hi | trio-exec exec --tty -- cat`) reaches the command as the terminal's
  end-of-file character, ^D (twice after a partial line: the first ends the line), as it
  does through `ssh -tt`; a command that reads the terminal raw sees the ^D byte.
- SIGINT, SIGTERM and SIGHUP received here are forwarded to the command (`process/signal`;
  `process/terminate` against a server without it).
- The exit status is the command's: its exit code, 128+n when signal n killed it; 127 when it
  could not be started; 255 when the server could not be reached or the command's output
  could not be followed to its end; 2 for a usage error (`EXIT_STATUS`, shown by `--help`).
- A `wss://` server must present a certificate trusted by `--ca-file`, else by the system
  store (or `SSL_CERT_FILE`), naming its host.
- The server is `--via COMMAND` (a command speaking the protocol on its stdin and stdout, such
  as `ssh devbox trio-exec serve --listen stdio`; no resume), else `--url`, else the
  environment's (`environment.manager.spec_from_environ`:
  `TRIO_EXEC_SERVER_URL`, or `CODEX_EXEC_SERVER_URL` when that is unset or empty), the one
  rule of the whole library.
- When the server goes away (shuts down, or refuses a reconnect) we say so at once on stderr
  and keep reconnecting for the rest of `--reconnect-window`; the final error names the cause.
- The command's environment is ours plus `--env K=V` (like codex: the server replaces the
  child's environment with what the client sends); `--cwd` defaults to our working directory
  and names a directory on the server: nothing checks it before the start. When the start
  fails, the server is asked about the directory, and a missing one (or a file) is named as
  the cause instead of the command.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import os
import posixpath
import shlex
import signal
import ssl
import sys
import termios
import tty as ttymod
from collections.abc import Iterator, Sequence

import trio

from trio_exec.client import (
    ClientError,
    ConnectionLost,
    ExecClient,
    Output,
    ReconnectPolicy,
    RemoteProcess,
    open_client,
    open_client_via,
)
from trio_exec.client.connect import client_tls_context
from trio_exec.environment.manager import (
    DISABLED,
    REMOTE,
    VARIABLES,
    EnvironmentConfigError,
    spec_from_environ,
)
from trio_exec.proto.errors import MethodNotFound, NotFound, RpcError
from trio_exec.proto.process_messages import TerminalSize
from trio_exec.proto.types import U16

EXIT_USAGE, EXIT_CANNOT_START, EXIT_CLIENT = 2, 127, 255
EXIT_STATUS = f"""\
exit status:
  N       the command exited with code N
  128+n   signal n ended the command (e.g. 137 for SIGKILL)
  {EXIT_CANNOT_START}     the command could not be started (no such program or working directory)
  {EXIT_CLIENT}     trio-exec failed: the server could not be reached, or the connection was
          lost and the command's output could not be followed to its end
  {EXIT_USAGE}       usage error"""
READ_SIZE = 64 * 1024
#: The terminal's end-of-file character (VEOF), as a PTY's line discipline has it by default.
TERMINAL_EOF = b"\x04"
DEFAULT_RECONNECT_WINDOW = ReconnectPolicy().give_up_after
FORWARDED_SIGNALS = {
    signal.SIGINT: "interrupt",
    signal.SIGTERM: "terminate",
    signal.SIGHUP: "hangup",
}


class UsageError(Exception):
    pass


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = "Run a command through an exec-server, as if it ran here."
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--url", help="ws:// or wss:// URL of the exec-server (default: "
                        "$TRIO_EXEC_SERVER_URL, else $CODEX_EXEC_SERVER_URL)")
    parser.add_argument("--via", metavar="COMMAND",
                        help="start COMMAND and speak to the exec-server on its stdin and "
                        "stdout, e.g. 'ssh devbox trio-exec serve --listen stdio' (split like a "
                        "shell would; no resume)")
    parser.add_argument("--tty", action="store_true", help="run the command on a PTY")
    parser.add_argument("--cwd", help="working directory on the server (default: ours)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="set a variable for the command (repeatable)")
    parser.add_argument("--clear-env", action="store_true",
                        help="do not pass our environment, only the --env variables")
    parser.add_argument("--auth-token-file", help="send `Authorization: Bearer <token>`")
    parser.add_argument("--ca-file", metavar="PEM",
                        help="trust the CAs in this file for a wss:// server (default: the "
                        "system store, or $SSL_CERT_FILE)")
    parser.add_argument("--reconnect-window", type=_seconds, default=DEFAULT_RECONNECT_WINDOW,
                        metavar="SECONDS", help="how long to keep reconnecting after the "
                        f"connection drops (default {DEFAULT_RECONNECT_WINDOW:g})")
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS",
                        help="the command and its arguments")


def _command(args: argparse.Namespace) -> list[str]:
    argv: list[str] = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise UsageError("no command given (trio-exec exec [options] -- CMD ARGS...)")
    return argv


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env = {} if args.clear_env else dict(os.environ)
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env expects K=V, got {item!r}")
        env[key] = value
    return env


def _token(path: str | None) -> str | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as exc:
        raise UsageError(f"cannot read --auth-token-file: {exc.strerror}") from None


def _check_ca_file(path: str | None) -> None:
    if path is None:
        return
    try:
        client_tls_context(path)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot use --ca-file: {reason}") from None


def _server_url(given: str | None) -> str:
    if given:
        return given
    try:
        spec = spec_from_environ()
    except EnvironmentConfigError as exc:
        raise UsageError(str(exc)) from None
    if spec.kind == REMOTE and spec.url is not None:
        return spec.url
    if spec.kind == DISABLED:
        raise UsageError(f"no server: {spec.variable}=none disables remote execution; "
                         "pass --url")
    raise UsageError(f"no server: pass --url or set {' or '.join(VARIABLES)}")


def _via_command(text: str | None) -> list[str] | None:
    if text is None:
        return None
    try:
        command = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"--via: {exc}") from None
    if not command:
        raise UsageError("--via: empty command")
    return command


def run(args: argparse.Namespace) -> int:
    """The `exec` subcommand; returns the exit status."""
    try:
        via = _via_command(args.via)
        url = "" if via else _server_url(args.url)
        argv = _command(args)
        env = _environment(args)
        token = _token(args.auth_token_file)
        _check_ca_file(args.ca_file)
    except UsageError as exc:
        print(f"trio-exec exec: {exc}", file=sys.stderr)
        return EXIT_USAGE
    cwd = args.cwd if args.cwd is not None else os.getcwd()
    try:
        policy = ReconnectPolicy(give_up_after=args.reconnect_window)
        return trio.run(
            functools.partial(_main, ca_file=args.ca_file),
            via or url, token, argv, cwd, env, bool(args.tty), policy,
        )
    except ClientError as exc:
        print(f"trio-exec exec: {exc}", file=sys.stderr)
        return EXIT_CLIENT
    except ValueError as exc:  # a malformed URL
        print(f"trio-exec exec: {exc}", file=sys.stderr)
        return EXIT_USAGE


def exit_status(process: RemoteProcess, code: int) -> int:
    if process.signal_name is not None:
        try:
            return 128 + signal.Signals[process.signal_name].value
        except KeyError:
            return EXIT_CLIENT
    return code & 0xFF if code >= 0 else EXIT_CLIENT


def _window_size() -> TerminalSize | None:
    for fd in (0, 1, 2):
        try:
            size = os.get_terminal_size(fd)
        except OSError:
            continue
        return TerminalSize(rows=U16(size.lines), cols=U16(size.columns))
    return None


@contextlib.contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    if not enabled or not os.isatty(0):
        yield
        return
    saved = termios.tcgetattr(0)
    ttymod.setraw(0)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


async def _main(
    server: str | list[str],
    token: str | None,
    argv: list[str],
    cwd: str,
    env: dict[str, str],
    tty: bool,
    policy: ReconnectPolicy,
    *,
    ca_file: str | None = None,
) -> int:
    def server_down(cause: str, seconds_left: float) -> None:
        _complain(f"{cause}; reconnecting for up to {seconds_left:.3g} s…", tty)

    connecting = (
        open_client_via(server, client_name="trio-exec exec")
        if isinstance(server, list)
        else open_client(
            server, client_name="trio-exec exec", auth_token=token, reconnect=policy,
            on_server_down=server_down, ca_file=ca_file,
        )
    )
    async with connecting as client:
        try:
            process = await client.process_start(
                argv, cwd=cwd, env=env, tty=tty, pipe_stdin=None if tty else True,
                size=_window_size() if tty else None,
            )
        except RpcError as exc:
            why = await _why_not_started(client, cwd, exc)
            print(f"trio-exec exec: cannot start {argv[0]}: {why}", file=sys.stderr)
            return EXIT_CANNOT_START
        with _raw_terminal(tty):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_forward_stdin, process)
                nursery.start_soon(_forward_signals, client, process, tty)
                status = await _copy_output(process)
                nursery.cancel_scope.cancel()
        if status is not None:
            return status
        return exit_status(process, await process.wait())


async def _why_not_started(client: ExecClient, cwd: str, error: RpcError) -> str:
    """The server's error, unless the working directory is what is missing there (the server
    gives the same OS error for a missing program and a missing directory)."""
    if not posixpath.isabs(cwd):
        return error.message
    try:
        metadata = await client.fs_get_metadata(cwd)
    except NotFound:
        return f"working directory {cwd} does not exist on the server"
    except (RpcError, ClientError):
        return error.message  # no filesystem service, or the connection went: nothing learnt
    if not metadata.is_directory:
        return f"working directory {cwd} is not a directory on the server"
    return error.message


async def _copy_output(process: RemoteProcess) -> int | None:
    """Until the process is closed; a status to exit with early, or None."""
    try:
        async for first in process.output():
            batch = [first, *process.take_queued()]
            await trio.to_thread.run_sync(_write_batch, batch)
    except BrokenPipeError:
        with contextlib.suppress(RpcError, ClientError):
            await process.terminate()
        return 128 + signal.SIGPIPE.value
    except ClientError as exc:
        _complain(str(exc), process.tty)
        return EXIT_CLIENT
    return None


def _complain(text: str, raw_terminal: bool) -> None:
    """A message on stderr; on a raw terminal it starts on a fresh line."""
    prefix = "\r\n" if raw_terminal and os.isatty(2) else ""
    end = "\r\n" if raw_terminal and os.isatty(2) else "\n"
    print(f"{prefix}trio-exec exec: {text}", file=sys.stderr, end=end)


def _write_batch(batch: list[Output]) -> None:
    """Consecutive chunks of one stream are written with one call."""
    pending: list[bytes] = []
    fd = 1
    for chunk in batch:
        chunk_fd = 2 if chunk.stream == "stderr" else 1
        if chunk_fd != fd and pending:
            _write_all(fd, b"".join(pending))
            pending = []
        fd = chunk_fd
        pending.append(chunk.data)
    if pending:
        _write_all(fd, b"".join(pending))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_stdin() -> bytes:
    try:
        return os.read(0, READ_SIZE)
    except OSError as exc:
        if exc.errno in (errno.EBADF, errno.EIO, errno.EINVAL):
            return b""
        raise


def _terminal_eof(line_ended: bool) -> bytes:
    """What ends a PTY's input in canonical mode: ^D at the start of a line; after a partial
    line the first ^D only hands that line to the reader."""
    return TERMINAL_EOF if line_ended else TERMINAL_EOF * 2


async def _forward_stdin(process: RemoteProcess) -> None:
    """Our stdin to the command. Cancellation: a read in progress is abandoned (its thread
    ends with the program)."""
    line_ended = True
    while True:
        data = await trio.to_thread.run_sync(_read_stdin, abandon_on_cancel=True)
        at_end = not data
        if at_end and process.tty:
            data = _terminal_eof(line_ended)
        try:
            status = await process.write(data, close_stdin=at_end and not process.tty)
        except ClientError as exc:
            if isinstance(exc, ConnectionLost) and not exc.maybe_applied:
                return  # the connection is gone for good: the output side says so
            _complain(f"input may not have been delivered: {exc}", process.tty)
            continue
        except RpcError:
            return
        if at_end or status != "accepted":
            return
        line_ended = data.endswith((b"\n", b"\r"))


async def _forward_signals(client: ExecClient, process: RemoteProcess, tty: bool) -> None:
    wanted = [*FORWARDED_SIGNALS, signal.SIGWINCH] if tty else list(FORWARDED_SIGNALS)
    with trio.open_signal_receiver(*wanted) as signals:
        async for signum in signals:
            with contextlib.suppress(ClientError, RpcError):
                if signum == signal.SIGWINCH:
                    size = _window_size()
                    if size is not None:
                        await process.resize(size.rows, size.cols)
                    continue
                try:
                    await process.send_signal(FORWARDED_SIGNALS[signal.Signals(signum)])
                except MethodNotFound:
                    await process.terminate()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="trio-exec exec", description=__doc__)
    configure_parser(parser)
    return run(parser.parse_args(argv))
