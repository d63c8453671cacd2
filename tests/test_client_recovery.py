"""Recovery: the connection drops at scripted points and every process's output is still
seen exactly once, in order, with no gap — or the loss is reported, never skipped.

The daemon is the real one, served over in-memory streams the test breaks on cue (or a real
socket); the child processes are real and paced with file gates (the child waits for the
test) and FIFOs (the test waits for the child), so no test sleeps to wait for anything.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from support.daemon import InMemoryDaemon, in_memory_daemon, tcp_daemon
from support.gates import Gates

from trio_exec.client import (
    ConnectionLost,
    OutputLost,
    ProcessLost,
    ReconnectPolicy,
    RemoteProcess,
    open_client,
    open_client_over_stream,
)
from trio_exec.proto import codec

TIMEOUT = 15
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
POLICY = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, give_up_after=10.0)


def lines(n: int) -> bytes:
    return b"".join(b"line %d\n" % i for i in range(n))


def loop_lines(n: int) -> str:
    return f"i=0; while [ $i -lt {n} ]; do printf 'line %d\\n' $i; i=$((i+1)); done"


class Fifo:
    """The child says "done" through a FIFO; the test blocks (in a thread) until it does."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "fifo"
        os.mkfifo(self.path)

    def signal(self) -> str:
        return f"echo done > {self.path}"

    async def wait(self) -> None:
        def read() -> None:
            with open(self.path) as handle:
                handle.read()

        await trio.to_thread.run_sync(read, abandon_on_cancel=True)


class GatedConnector:
    """Connects at once the first time; later attempts wait until `allow()`."""

    def __init__(self, daemon: InMemoryDaemon) -> None:
        self.daemon = daemon
        self.allowed = trio.Event()
        self.attempts = 0

    def allow(self) -> None:
        self.allowed.set()

    async def __call__(self) -> trio.abc.Stream:
        self.attempts += 1
        if self.attempts > 1:
            await self.allowed.wait()
        return await self.daemon.connect()


async def read_all(process: RemoteProcess) -> bytes:
    data = b""
    async for chunk in process.output():
        data += chunk.data
    return data


async def read_until(process: RemoteProcess, wanted: bytes) -> bytes:
    data = b""
    while wanted not in data:
        chunk = await process.receive()
        assert chunk is not None, data
        data += chunk.data
    return data


async def test_drop_mid_output_while_output_is_produced_parked(tmp_path: Path, gates: Gates) -> None:
    """out "start" → drop → the child writes 300 lines while the client is away (the
    server discards their notifications) → reconnect, resume, catch up → more live output."""
    fifo = Fifo(tmp_path)
    script = (f"printf 'start\\n'; {gates.wait('a')}; {loop_lines(300)}; {fifo.signal()}; "
              f"{gates.wait('b')}; printf 'end\\n'")
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            connector = GatedConnector(daemon)
            async with open_client_over_stream(connector, reconnect=POLICY) as client:
                process = await client.process_start(["/bin/sh", "-c", script], cwd="/", env=ENV)
                seen = await read_until(process, b"start\n")
                daemon.break_current()
                gates.open("a")
                await fifo.wait()
                connector.allow()
                rest = b""
                while b"line 299\n" not in rest:
                    chunk = await process.receive()
                    assert chunk is not None
                    rest += chunk.data
                gates.open("b")
                rest += await read_all(process)
                assert seen + rest == b"start\n" + lines(300) + b"end\n"
                assert await process.wait() == 0
                assert client.connections == 2


async def test_drop_before_the_start_response_starts_once(tmp_path: Path, gates: Gates) -> None:
    """process/start is applied, its response is lost with the connection: the client asks
    the resumed session (process/read) instead of starting the command a second time."""
    marker = tmp_path / "runs"
    script = f"echo run >> {marker}; printf 'out\\n'; {gates.wait('a')}; printf 'more\\n'"
    state: dict[str, InMemoryDaemon] = {}

    def drop_start_response(message: codec.Message) -> bool:
        if isinstance(message, codec.Response) and isinstance(message.result, dict) \
                and "processId" in message.result:
            state["daemon"].break_current()
            return True
        return False

    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            state["daemon"] = daemon
            async with open_client_over_stream(
                daemon.connect, reconnect=POLICY, tap=drop_start_response
            ) as client:
                process = await client.process_start(["/bin/sh", "-c", script], cwd="/", env=ENV)
                assert client.connections == 2
                gates.open("a")
                assert await read_all(process) == b"out\nmore\n"
                assert [p.process_id for p in await client.process_list()] == [process.process_id]
    assert marker.read_text() == "run\n"


async def test_drop_during_a_long_poll_repeats_the_read(gates: Gates) -> None:
    """A process/read long-poll is in flight when the connection drops; reads are harmless to
    repeat, so it is sent again on the resumed session and answers when output comes."""
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            connector = GatedConnector(daemon)
            async with open_client_over_stream(connector, reconnect=POLICY) as client:
                process = await client.process_start(
                    ["/bin/sh", "-c", f"{gates.wait('a')}; printf 'late\\n'"], cwd="/", env=ENV
                )
                result = None

                async def long_poll() -> None:
                    nonlocal result
                    result = await client.process_read(process.process_id, after_seq=0, wait_ms=30_000)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(long_poll)
                    await trio.testing.wait_all_tasks_blocked()
                    daemon.break_current()
                    connector.allow()
                    while client.connections < 2:
                        await trio.testing.wait_all_tasks_blocked()
                        await trio.lowlevel.checkpoint()
                    gates.open("a")
                assert result is not None
                assert [c.chunk for c in result.chunks] == ["bGF0ZQo="]
                assert await read_all(process) == b"late\n"


async def test_write_whose_response_is_lost_is_not_replayed() -> None:
    """process/write is not harmless to repeat: when its response is lost the caller gets
    ConnectionLost(maybe_applied=True); the client itself recovers for later calls."""
    state: dict[str, InMemoryDaemon] = {}

    def drop_write_response(message: codec.Message) -> bool:
        if isinstance(message, codec.Response) and isinstance(message.result, dict) \
                and "status" in message.result and "dropped" not in state:
            state["dropped"] = state["daemon"]
            state["daemon"].break_current()
            return True
        return False

    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            state["daemon"] = daemon
            async with open_client_over_stream(
                daemon.connect, reconnect=POLICY, tap=drop_write_response
            ) as client:
                process = await client.process_start(["cat"], cwd="/", env=ENV, pipe_stdin=True)
                with pytest.raises(ConnectionLost, match=r"may have been applied") as lost:
                    await process.write(b"once\n")
                assert lost.value.maybe_applied
                assert await process.write(b"", close_stdin=True) == "accepted"
                assert await read_all(process) == b"once\n"


async def test_session_expired_while_away_fails_its_processes_clearly(gates: Gates) -> None:
    """TTL 0: the session ends as soon as it is parked. The resume is refused, the old
    process fails with ProcessLost (after its already received output), and the client
    carries on with a fresh session."""
    with trio.fail_after(TIMEOUT):
        async with (
            in_memory_daemon(session_ttl=0.0) as daemon,
            open_client_over_stream(daemon.connect, reconnect=POLICY) as client,
        ):
            old_session = client.session_id
            process = await client.process_start(
                ["/bin/sh", "-c", f"printf 'before\\n'; {gates.wait('a')}"], cwd="/", env=ENV
            )
            assert await read_until(process, b"before\n") == b"before\n"
            daemon.break_current()
            with pytest.raises(ProcessLost, match=f"session {old_session} expired"):
                await process.receive()
            assert process.failure is not None
            assert (await client.fs_get_metadata("/")).is_directory
            assert client.session_id not in (None, old_session)
            fresh = await client.process_start(["/bin/echo", "fresh"], cwd="/", env=ENV)
            assert await read_all(fresh) == b"fresh\n"


async def test_output_lost_to_the_retention_cap_is_reported(tmp_path: Path, gates: Gates) -> None:
    """2 MB are written while the client is away; the server keeps 1 MiB: the catch-up read
    carries retentionGap and the process fails with OutputLost instead of skipping bytes."""
    fifo = Fifo(tmp_path)
    script = (f"printf 'first\\n'; {gates.wait('a')}; head -c 2000000 /dev/zero; "
              f"{fifo.signal()}; {gates.wait('b')}")
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            connector = GatedConnector(daemon)
            async with open_client_over_stream(connector, reconnect=POLICY) as client:
                process = await client.process_start(["/bin/sh", "-c", script], cwd="/", env=ENV)
                assert await read_until(process, b"first\n") == b"first\n"
                daemon.break_current()
                gates.open("a")
                await fifo.wait()
                connector.allow()
                with pytest.raises(OutputLost, match=r"dropped by the server's retention cap"):
                    await read_all(process)
                gates.open("b")


async def test_giving_up_fails_everything_with_connection_lost(gates: Gates) -> None:
    attempts = 0

    async def connect_once(daemon: InMemoryDaemon) -> trio.abc.Stream:
        nonlocal attempts
        attempts += 1
        if attempts > 1:
            raise OSError("refused by the test")
        return await daemon.connect()

    policy = ReconnectPolicy(initial_delay=0.01, max_delay=0.05, give_up_after=0.3)
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(
            lambda: connect_once(daemon), reconnect=policy
        ) as client:
            process = await client.process_start(
                ["/bin/sh", "-c", gates.wait("a")], cwd="/", env=ENV
            )
            daemon.break_current()
            with pytest.raises(ConnectionLost, match=r"not recovered within 0.3s"):
                await process.wait()
            with pytest.raises(ConnectionLost):
                await client.fs_get_metadata("/")
            assert attempts > 2
            gates.open("a")


async def test_processes_nobody_reads_are_caught_up_after_a_reconnect(gates: Gates) -> None:
    """Exit state follows the server even without a consumer: the eager catch-up after the
    resume sees the exit whose notification was dropped while parked."""
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            connector = GatedConnector(daemon)
            async with open_client_over_stream(connector, reconnect=POLICY) as client:
                processes = [
                    await client.process_start(["/bin/sh", "-c", f"{gates.wait('a')}; exit {i}"],
                                               cwd="/", env=ENV)
                    for i in range(3)
                ]
                daemon.break_current()
                gates.open("a")
                # the exits happen while the client is away; nothing notifies them later
                await wait_for_exits_in_daemon(daemon)
                connector.allow()
                assert [await p.wait() for p in processes] == [0, 1, 2]
                assert all(p.has_exited for p in processes)


async def wait_for_exits_in_daemon(daemon: InMemoryDaemon) -> None:
    """Block on the daemon's own process logs (their long-poll) until every child exited."""
    [session] = daemon.daemon.registry.sessions()
    for managed in session.list_processes():
        while not managed.log.exited:
            await managed.read(managed.log.last_seq, 0, 10_000)


async def test_drop_mid_output_over_a_real_socket(gates: Gates) -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served, open_client(served.url, reconnect=POLICY) as client:
            script = f"{loop_lines(100)}; {gates.wait('a')}; {loop_lines(100)}"
            process = await client.process_start(["/bin/sh", "-c", script], cwd="/", env=ENV)
            seen = await read_until(process, b"line 99\n")
            client.break_connection("test drops the socket")
            gates.open("a")
            seen += await read_all(process)
            assert seen == lines(100) * 2
            assert client.connections == 2



async def test_exactly_once_across_100_random_drops_while_4_processes_stream() -> None:
    """Four producers stream numbered lines; the connection is broken 100 times at random
    moments (seeded), each time once the client has reconnected. Every process's output
    arrives exactly once, in order, with no gap."""
    rng = random.Random(20261125)
    count = 2500
    producer = "import time\nfor i in range({n}):\n    print('{tag}', i)\n    time.sleep(0.001)"
    async with (
        in_memory_daemon() as daemon,
        open_client_over_stream(daemon.connect, reconnect=POLICY) as client,
    ):
        processes = {
            tag: await client.process_start(
                ["python3", "-u", "-c", producer.format(n=count, tag=tag)], cwd="/", env=ENV
            )
            for tag in "abcd"
        }
        received = {tag: b"" for tag in processes}

        async def collect(tag: str) -> None:
            received[tag] = await read_all(processes[tag])

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                for tag in processes:
                    nursery.start_soon(collect, tag)
                drops = 0
                while drops < 100:
                    await trio.sleep(rng.uniform(0, 0.02))  # a random moment, not a wait
                    if client.break_connection(f"random drop {drops}"):
                        drops += 1
        assert client.connections >= 101
    for tag, data in received.items():
        assert data == b"".join(b"%s %d\n" % (tag.encode(), i) for i in range(count)), tag


async def test_a_resume_whose_initialize_is_never_answered_still_gives_up(gates: Gates) -> None:
    """The new socket opens but the server never answers `initialize` (a hung server, or the
    network dying right after the upgrade): the reconnect must still end within
    `give_up_after`, not wait for that reply forever."""
    state = {"drop_initialize": False}

    def drop_initialize_reply(message: codec.Message) -> bool:
        return state["drop_initialize"] and isinstance(message, codec.Response) \
            and message.id == 1

    policy = ReconnectPolicy(
        initial_delay=0.01, max_delay=0.05, give_up_after=0.3, connect_timeout=0.2
    )
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(
            daemon.connect, reconnect=policy, tap=drop_initialize_reply
        ) as client:
            process = await client.process_start(
                ["/bin/sh", "-c", gates.wait("a")], cwd="/", env=ENV
            )
            state["drop_initialize"] = True
            daemon.break_current()
            with pytest.raises(ConnectionLost, match=r"not recovered within 0.3s"):
                await process.wait()
            gates.open("a")
