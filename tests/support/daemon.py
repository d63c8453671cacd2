"""The daemon under test, run inside the test's own Trio run: in memory, or on 127.0.0.1:0.

- `in_memory_daemon(**config)` runs the real `Daemon` with no listener. `connect()` hands the
  test one end of a `trio.testing.memory_stream_pair()` whose other end `Daemon.handle_stream`
  serves, as a `BreakableStream` the test breaks on cue (what a network failure does: both
  directions die at once; the daemon sees the end and parks the session). `wire_link()` opens
  a raw `WireClient` (support.wsclient) over such a stream, for tests that speak the wire.
- `tcp_daemon(**config)` runs the same daemon on real sockets; its `url` is what a client
  dials, `daemon` the object a test inspects or stops.
- `open_environment(kind)` gives a suite the local and the remote environment alike.
- The daemon's `_for_testing_*` events (session parked and ended, process registered, watch
  polled) are waited on through `parked()`, `ended()` and `next_poll()`, never by polling.

Rule: nothing here sleeps. On `MockClock`, virtual time moves only when a test jumps it, so
TTL boundaries are exact; real child processes and the in-memory transport still run normally.
Every daemon here has pings off and a 2 s shutdown grace unless the test says otherwise.
"""

from __future__ import annotations

import os
import select
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio
import trio.testing
import trio_websocket

from support.wsclient import WireClient, _run_client
from trio_exec.config import Config, ListenAddress
from trio_exec.environment import Environment
from trio_exec.environment.local import open_local_environment
from trio_exec.environment.remote import open_remote_environment
from trio_exec.fs.watch import MissingWatches
from trio_exec.server import Daemon, open_listeners
from trio_exec.session.registry import SessionRegistry
from trio_exec.session.session import Session

DEFAULTS: dict[str, object] = {"ping_interval": None, "shutdown_grace": 2.0}


def _config(settings: dict[str, object]) -> Config:
    return Config(**{**DEFAULTS, **settings})  # type: ignore[arg-type]


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
class WireLink:
    """A raw wire client over one in-memory connection; `drop()` cuts it like a TCP reset."""

    client: WireClient
    stream: BreakableStream

    async def drop(self) -> None:
        self.stream.break_()
        await trio.lowlevel.checkpoint()


@attrs.define(eq=False)
class InMemoryDaemon:
    daemon: Daemon
    nursery: trio.Nursery
    streams: list[BreakableStream] = attrs.field(factory=list)

    async def connect(self) -> BreakableStream:
        """A new connection to the daemon (a `stream_connector` for `ExecClient`)."""
        return await self._connect(self.nursery)

    async def _connect(self, nursery: trio.Nursery) -> BreakableStream:
        client_end, server_end = trio.testing.memory_stream_pair()
        nursery.start_soon(self.daemon.handle_stream, server_end)
        stream = BreakableStream(client_end)
        self.streams.append(stream)
        await trio.lowlevel.checkpoint()
        return stream

    def break_current(self) -> None:
        self.streams[-1].break_()

    @property
    def registry(self) -> SessionRegistry:
        return self.daemon.registry

    def stop(self) -> None:
        self.daemon.stop()

    @asynccontextmanager
    async def wire_link(self) -> AsyncIterator[WireLink]:
        """A `WireClient` on a new connection. When the block ends, the connection is cut and
        the daemon's task serving it cancelled."""
        async with trio.open_nursery() as nursery:
            stream = await self._connect(nursery)
            ws = await trio_websocket.wrap_client_stream(
                nursery, stream, "localhost", "/", max_message_size=64 * 1024 * 1024,
            )
            try:
                async with _run_client(ws) as client:
                    yield WireLink(client, stream)
            finally:
                stream.break_()
                nursery.cancel_scope.cancel()


@asynccontextmanager
async def in_memory_daemon(**config: object) -> AsyncIterator[InMemoryDaemon]:
    daemon = Daemon(_config(config))
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run, [])
        try:
            yield InMemoryDaemon(daemon, nursery)
        finally:
            daemon.stop()


@attrs.frozen
class TcpDaemon:
    daemon: Daemon
    address: ListenAddress

    @property
    def url(self) -> str:
        return self.address.url

    @property
    def port(self) -> int:
        return self.address.port


@asynccontextmanager
async def tcp_daemon(**config: object) -> AsyncIterator[TcpDaemon]:
    """The daemon on 127.0.0.1:0. Leaving the block stops it gracefully (`daemon.stop()`);
    a test may stop it earlier itself."""
    settings = _config({"listen": ListenAddress(host="127.0.0.1", port=0), **config})
    daemon = Daemon(settings)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(daemon.run, await open_listeners(settings))
        assert address is not None
        try:
            yield TcpDaemon(daemon, address)
        finally:
            daemon.stop()


ENVIRONMENT_KINDS = ("local", "remote")


@asynccontextmanager
async def open_environment(kind: str) -> AsyncIterator[Environment]:
    """`local`: in-process; `remote`: through a daemon on 127.0.0.1:0."""
    if kind == "local":
        async with open_local_environment() as local:
            yield local
    else:
        async with tcp_daemon() as served, open_remote_environment(served.url) as remote:
            yield remote


# ------------------------------------------------------------------ the daemon's test events


async def parked(session: Session) -> None:
    """Until the daemon has noticed its connection's end and parked `session`."""
    await session._for_testing_parked.wait()


async def ended(session: Session) -> None:
    """Until `session` has ended: its processes killed and reaped."""
    await session._for_testing_ended.wait()


async def next_poll(watches: MissingWatches) -> None:
    """Until the current watch has completed a poll that began after this call, without
    firing: whatever the file system showed at the call, the watch has looked at it."""
    for _ in range(2):  # the first poll may have taken its snapshot before the call
        await watches._for_testing_polled.wait()


# ------------------------------------------------------------------------ processes and fds


def alive(pid: int) -> bool:
    """Whether `pid` still exists (a reaped child does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def wait_dead(pid: int) -> None:
    """Until `pid` has died (its pidfd turns readable then); at once if it is gone already.
    The caller bounds the wait."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if not select.select([pidfd], [], [], 0)[0]:
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))
