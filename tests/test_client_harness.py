"""Test harness for the consumer side: an in-memory daemon and connections breakable on cue.

`InMemoryDaemon` runs the real `Daemon` with no listener; every `connect()` is one end of a
`trio.testing.memory_stream_pair()` whose other end is served by `Daemon.handle_stream`, wrapped
in a `BreakableStream` the test can break at a scripted point (what a network failure does:
both directions die at once, the daemon sees EOF and parks the session). `open_environment`
gives the same suite a local and a remote (a daemon on TCP) environment alike.
This module holds no tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing

from trio_exec.config import Config
from trio_exec.environment import Environment
from trio_exec.environment.local import open_local_environment
from trio_exec.environment.remote import open_remote_environment
from trio_exec.server import Daemon


@attrs.define(eq=False)
class BreakableStream(trio.abc.Stream):
    """A stream that fails in both directions once `break_()` is called."""

    _inner: trio.StapledStream[trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]
    broken: bool = False

    def break_(self) -> None:
        if not self.broken:
            self.broken = True
            self._inner.send_stream.close()
            self._inner.receive_stream.close()

    def _check(self) -> None:
        if self.broken:
            raise trio.BrokenResourceError("connection broken by the test")

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self._check()
        try:
            await self._inner.send_all(data)
        except trio.ClosedResourceError:
            raise trio.BrokenResourceError("connection broken by the test") from None

    async def wait_send_all_might_not_block(self) -> None:
        self._check()
        await self._inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        self._check()
        try:
            return await self._inner.receive_some(max_bytes)
        except trio.ClosedResourceError:
            raise trio.BrokenResourceError("connection broken by the test") from None

    async def aclose(self) -> None:
        self.break_()
        await trio.lowlevel.checkpoint()


@attrs.define(eq=False)
class InMemoryDaemon:
    daemon: Daemon
    nursery: trio.Nursery
    streams: list[BreakableStream] = attrs.field(factory=list)

    async def connect(self) -> BreakableStream:
        client_end, server_end = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.daemon.handle_stream, server_end)
        stream = BreakableStream(client_end)
        self.streams.append(stream)
        await trio.lowlevel.checkpoint()
        return stream

    def break_current(self) -> None:
        self.streams[-1].break_()


@asynccontextmanager
async def in_memory_daemon(**config: object) -> AsyncIterator[InMemoryDaemon]:
    settings: dict[str, object] = {"ping_interval": None, "shutdown_grace": 2.0}
    settings.update(config)
    daemon = Daemon(Config(**settings))  # type: ignore[arg-type]
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run, [])
        try:
            yield InMemoryDaemon(daemon, nursery)
        finally:
            daemon.stop()


@asynccontextmanager
async def tcp_daemon(**config: object) -> AsyncIterator[str]:
    """A real daemon on 127.0.0.1:0 (via `serve`); yields its URL."""
    from trio_exec.server import serve

    settings: dict[str, object] = {"ping_interval": None, "shutdown_grace": 2.0}
    settings.update(config)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, Config(**settings))  # type: ignore[arg-type]
        assert address is not None
        try:
            yield address.url
        finally:
            nursery.cancel_scope.cancel()


ENVIRONMENT_KINDS = ("local", "remote")


@asynccontextmanager
async def open_environment(kind: str) -> AsyncIterator[Environment]:
    """`local`: in-process; `remote`: through a daemon on 127.0.0.1:0."""
    if kind == "local":
        async with open_local_environment() as local:
            yield local
    else:
        async with tcp_daemon() as url, open_remote_environment(url) as remote:
            yield remote
