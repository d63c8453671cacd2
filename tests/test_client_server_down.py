"""The server going away: a shutdown (Close 1001) or a refused reconnect is told at once
through `on_server_down`, recovery goes on for the rest of the window, and the final error
names the cause; a socket the server closed is closed on our side too.

The shutdown runs on `MockClock` over the in-memory daemon (the 25 s window passes in virtual
time); the refused reconnect needs a real kernel, so it runs on 127.0.0.1 with a short window.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing
from support.daemon import in_memory_daemon, tcp_daemon

from trio_exec.client import (
    ConnectionLost,
    ReconnectPolicy,
    open_client_over_stream,
    open_client_with,
    stream_connector,
)

TIMEOUT = 15
SHUTDOWN = "server shutting down (Close 1001)"
REFUSED = "Error connecting to ('127.0.0.1', %d): Connection refused"


class Told:
    """Records `on_server_down` calls with the (virtual) time of each."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float, float]] = []
        self.event = trio.Event()

    def __call__(self, cause: str, seconds_left: float) -> None:
        self.calls.append((cause, seconds_left, trio.current_time()))
        self.event.set()


async def test_a_shutdown_is_told_at_once_and_the_end_names_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """stop() at t0 → Close 1001 → told at t0 with the whole 25 s left → every reconnect meets
    a stopped daemon → at t0 + 25 the call fails naming the shutdown, not just "lost"."""
    told = Told()
    policy = ReconnectPolicy(give_up_after=25.0)
    async with in_memory_daemon() as daemon, open_client_over_stream(
        daemon.connect, reconnect=policy, on_server_down=told
    ) as client:
        await client.fs_get_metadata("/")
        stopped_at = trio.current_time()
        daemon.daemon.stop()
        await told.event.wait()
        [(cause, seconds_left, told_at)] = told.calls
        assert (cause, seconds_left, told_at) == (SHUTDOWN, 25.0, stopped_at)
        with pytest.raises(ConnectionLost) as lost:
            await client.fs_get_metadata("/")
        assert trio.current_time() == stopped_at + 25.0
        assert str(lost.value).startswith(
            f"connection to the exec-server lost: {SHUTDOWN}; not recovered within 25s "
            "(last attempt: connection closed (1001 GOING_AWAY: server shutting down))"
        )
        assert len(told.calls) == 1


async def test_a_refused_reconnect_is_told_at_once() -> None:
    """The link drops (not a shutdown), the daemon stops before the reconnect, and the kernel
    refuses it: told at once, while the window still runs; the final error names it."""
    told = Told()
    reconnect_now = trio.Event()
    attempts = 0

    async with tcp_daemon() as served:
        daemon, port = served.daemon, served.port

        async def open_stream() -> trio.abc.Stream:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                await reconnect_now.wait()
            return await trio.open_tcp_stream("127.0.0.1", port)

        policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, give_up_after=1.0)
        with trio.fail_after(TIMEOUT):
            async with open_client_with(
                stream_connector(open_stream), reconnect=policy, ping_interval=None,
                on_server_down=told,
            ) as client:
                await client.fs_get_metadata("/")
                dropped_at = trio.current_time()
                assert client.break_connection("test drops the socket")
                daemon.stop()
                await trio.testing.wait_all_tasks_blocked()
                reconnect_now.set()
                await told.event.wait()
                [(cause, seconds_left, told_at)] = told.calls
                assert cause == f"server not accepting connections ({REFUSED % port})"
                assert 0 < seconds_left <= 1.0
                with pytest.raises(ConnectionLost) as lost:
                    await client.fs_get_metadata("/")
                assert told_at < dropped_at + 1.0 <= trio.current_time()
    assert str(lost.value) == (
        f"connection to the exec-server lost: {cause}; not recovered within 1s "
        f"(last attempt: {REFUSED % port})"
    )
    assert len(told.calls) == 1


async def test_the_socket_of_a_connection_the_server_closed_is_closed() -> None:
    """trio-websocket leaves the stream open when the server closes first (here its Close
    1001); the client closes it when the connection ends, not at garbage collection."""
    streams: list[trio.SocketStream] = []

    async with tcp_daemon() as served:
        daemon, port = served.daemon, served.port

        async def open_stream() -> trio.abc.Stream:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            streams.append(stream)
            return stream

        with trio.fail_after(TIMEOUT):
            async with open_client_with(
                stream_connector(open_stream), reconnect=None, ping_interval=None
            ) as client:
                await client.fs_get_metadata("/")
                daemon.stop()
                with pytest.raises(ConnectionLost, match="1001 GOING_AWAY"):
                    await client.fs_get_metadata("/")
    [stream] = streams
    assert stream.socket.fileno() == -1
