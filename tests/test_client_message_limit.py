"""Requests that cannot fit in one message: refused by the client before sending when over its
own `max_message_size`, and, when the daemon's limit is lower than the client believed (Close
1009), failed at once and never sent again, while the other calls recover with the connection.
The daemon is the real one (in memory or on 127.0.0.1:0), the children real processes."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.testing
from support.daemon import in_memory_daemon, tcp_daemon
from support.gates import Gates

from trio_exec.client import (
    ExecClient,
    ReconnectPolicy,
    RequestTooLarge,
    open_client,
    open_client_over_stream,
)
from trio_exec.proto.codec import DEFAULT_MAX_MESSAGE_SIZE

TIMEOUT = 15
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
POLICY = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, give_up_after=10.0)
SMALL_LIMIT = 16 * 1024


async def test_a_request_over_the_client_limit_is_refused_without_sending(tmp_path: Path) -> None:
    """Over `max_message_size`: RequestTooLarge naming the size and the limit, nothing sent
    (the file is not created), the connection untouched, a long-poll in flight on it and
    every later call go on."""
    target = tmp_path / "big"
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(
            daemon.connect, reconnect=POLICY, max_message_size=SMALL_LIMIT
        ) as client:
            process = await client.process_start(["cat"], cwd="/", env=ENV, pipe_stdin=True)
            async with trio.open_nursery() as nursery:
                polled: list[bytes] = []

                async def long_poll() -> None:
                    result = await client.process_read(process.process_id, wait_ms=10_000)
                    polled.extend(chunk.chunk.encode() for chunk in result.chunks)

                nursery.start_soon(long_poll)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(RequestTooLarge) as refused:
                    await client.fs_write_file(str(target), b"x" * (2 * SMALL_LIMIT))
                await process.write(b"still here\n")
            assert polled, "the long-poll in flight was answered on the same connection"
            assert refused.value.limit == SMALL_LIMIT and refused.value.size > SMALL_LIMIT
            assert refused.value.method == "fs/writeFile"
            assert str(refused.value) == (
                f"fs/writeFile request not sent: its message is {refused.value.size} bytes, "
                f"over the message size limit of {SMALL_LIMIT} bytes"
            )
            assert not target.exists()
            await client.fs_write_file(str(target), b"small")
            assert target.read_bytes() == b"small"
            assert client.connections == 1
            await process.terminate()


async def test_a_start_over_the_limit_is_refused_and_its_id_stays_free() -> None:
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(
            daemon.connect, max_message_size=SMALL_LIMIT
        ) as client:
            with pytest.raises(RequestTooLarge, match="process/start request not sent"):
                await client.process_start(
                    ["true"], cwd="/", env={**ENV, "HUGE": "y" * SMALL_LIMIT}, process_id="p"
                )
            process = await client.process_start(["true"], cwd="/", env=ENV, process_id="p")
            assert await process.wait() == 0
            assert client.connections == 1


def test_the_default_limit_is_the_daemons() -> None:
    assert open_client.__kwdefaults__["max_message_size"] == DEFAULT_MAX_MESSAGE_SIZE


@pytest.mark.parametrize("transport", ["memory", "tcp"])
async def test_close_1009_fails_the_refused_call_at_once_and_never_replays_it(
    transport: str, tmp_path: Path, gates: Gates
) -> None:
    """The daemon's limit (64 KiB) is below the client's (the default 64 MiB): the daemon
    closes with 1009 on a 1 MiB `fs/writeFile` (a repeatable method, replayed forever before).
    That call fails with RequestTooLarge naming 1009; the client reconnects once, and a
    long-poll that was in flight on the closed connection is answered on the new one."""
    target = tmp_path / "big"
    with trio.fail_after(TIMEOUT):
        async with _client(transport, daemon_limit=64 * 1024) as client:
            process = await client.process_start(
                ["/bin/sh", "-c", f"{gates.wait('a')}; echo after"], cwd="/", env=ENV
            )
            async with trio.open_nursery() as nursery:
                polled: list[str] = []

                async def long_poll() -> None:
                    result = await client.process_read(process.process_id, wait_ms=10_000)
                    polled.extend(chunk.chunk for chunk in result.chunks)

                nursery.start_soon(long_poll)
                await trio.testing.wait_all_tasks_blocked()
                with pytest.raises(RequestTooLarge) as refused:
                    await client.fs_write_file(str(target), b"x" * (1024 * 1024))
                gates.open("a")
            assert polled == ["YWZ0ZXIK"]  # "after\n", read on the recovered connection
            assert refused.value.limit is None
            assert "closed the connection with 1009 (message too big)" in str(refused.value)
            assert not target.exists()
            assert client.connections == 2
            await client.fs_write_file(str(target), b"fits")
            assert target.read_bytes() == b"fits"
            assert client.connections == 2


@asynccontextmanager
async def _client(transport: str, *, daemon_limit: int) -> AsyncIterator[ExecClient]:
    """A client with the default limit and a reconnect policy, to a daemon with a lower one."""
    if transport == "memory":
        async with in_memory_daemon(max_message_size=daemon_limit) as daemon, \
                open_client_over_stream(daemon.connect, reconnect=POLICY) as client:
            yield client
    else:
        async with tcp_daemon(max_message_size=daemon_limit) as served, \
                open_client(served.url, reconnect=POLICY, ping_interval=None) as client:
            yield client
