"""`trio-exec serve --listen stdio`: one session over stdin and stdout, as the codex client
drives an exec-server child (`program`/`args` in its `environments.toml`).

Rules:
- The protocol owns the process's stdin and stdout (newline-delimited JSON,
  `jsonrpc/lines.py`); fds 0 and 1 are then pointed at /dev/null and stderr, so nothing else —
  a stray print, a child — can write into the protocol or read from it. Logs go to stderr.
- One connection, one session; there is no resume (a second connection cannot reach it).
- The end of stdin ends the server: every process group it started is killed and reaped, and
  it exits 0. The codex client closes stdin and SIGTERMs the process group at the same
  moment, so SIGTERM is logged and ignored: it must not cut that clean-up short. SIGINT (a
  terminal's Ctrl-C) stops it the same way as the end of stdin.
"""

from __future__ import annotations

import logging
import os
import signal

import trio

from trio_exec.config import Config, ListenAddress
from trio_exec.jsonrpc.lines import LineMessages
from trio_exec.server import Daemon

log = logging.getLogger(__name__)


def take_stdio() -> tuple[int, int]:
    """Private copies of fds 0 and 1 for the protocol; fd 0 becomes /dev/null and fd 1 a copy
    of stderr."""
    protocol_in, protocol_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return protocol_in, protocol_out


async def serve_stdio(config: Config, stdin_fd: int, stdout_fd: int) -> None:
    """Serve one session over the two fds (taken over and closed) until stdin ends, then kill
    and reap every process. Cancellation: the same clean-up."""
    stream = LineMessages(
        trio.lowlevel.FdStream(stdin_fd),
        trio.lowlevel.FdStream(stdout_fd),
        max_message_size=config.max_message_size,
    )
    daemon = Daemon(config)
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with trio.open_nursery() as nursery:

            async def watch_signals() -> None:
                async for signum in signals:
                    if signum == signal.SIGTERM:
                        log.info("SIGTERM ignored: over stdio, the end of stdin stops the server")
                    else:
                        log.info("SIGINT: stopping")
                        daemon.stop()

            async def run_then_stop_watching(
                *, task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED
            ) -> None:
                await daemon.run([], task_status=task_status)
                nursery.cancel_scope.cancel()

            nursery.start_soon(watch_signals)
            await nursery.start(run_then_stop_watching)

            async def serve_the_connection() -> None:
                await daemon.serve_connection(stream)
                log.info("stdin ended: stopping")
                daemon.stop()

            nursery.start_soon(serve_the_connection)


def run_stdio(config: Config) -> None:
    """The CLI's `serve --listen stdio` (blocking)."""
    stdin_fd, stdout_fd = take_stdio()
    # The group SIGTERM codex sends with the end of stdin may arrive after the signal receiver
    # has closed (the clean-up done, the interpreter exiting): ignored then too. Children are
    # only spawned while the receiver's handler is in place, so none inherits the SIG_IGN.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    trio.run(serve_stdio, config, stdin_fd, stdout_fd)
