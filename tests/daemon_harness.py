"""An in-process daemon fed by in-memory streams, for deterministic session and race tests.

Rule: nothing here sleeps. Virtual time moves only when a test calls `mock_clock.jump()`, so
TTL boundaries are exact; real child processes and the in-memory transport still run normally.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing
import trio_websocket
from support.wsclient import WireClient, _run_client

from trio_exec.config import Config
from trio_exec.server import Daemon


@attrs.define(eq=False)
class MemoryLink:
    """One client connection over an in-memory stream pair; `drop()` cuts it like a TCP reset."""

    client: WireClient
    _stream: trio.abc.Stream

    async def drop(self) -> None:
        await trio.aclose_forcefully(self._stream)


@asynccontextmanager
async def running_daemon(**settings: object) -> AsyncIterator[Daemon]:
    config = Config(**{"ping_interval": None, **settings})  # type: ignore[arg-type]
    daemon = Daemon(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run, [])
        try:
            yield daemon
        finally:
            daemon.stop()


@asynccontextmanager
async def memory_link(daemon: Daemon) -> AsyncIterator[MemoryLink]:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(daemon.handle_stream, server_stream)
        ws = await trio_websocket.wrap_client_stream(
            nursery, client_stream, "localhost", "/",  # type: ignore[arg-type]
            max_message_size=64 * 1024 * 1024,
        )
        try:
            async with _run_client(ws) as client:
                yield MemoryLink(client, client_stream)
        finally:
            await trio.aclose_forcefully(client_stream)
            nursery.cancel_scope.cancel()


def alive(pid: int) -> bool:
    """Whether `pid` still exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
