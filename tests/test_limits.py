"""The daemon's own limits: each refusal names the limit and its value, and another client does
not notice a client held at a limit.

Every test runs the daemon as its own process with small limits. Client B starts `cat` in a
PTY and measures its echo round trip (write a byte, wait for its `process/output`): first idle,
then while client A sits at a limit and keeps asking for more (one refused attempt every
`PACE` seconds, a client retrying 200 times a second: a flood of any request costs the loop
whether it is refused or not; this measures what being at the limit costs). B's median round
trip under the limit stays within 2x of its idle median.
"""

from __future__ import annotations

import statistics
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import trio
from support.servers import TRIO_EXEC, ServerHandle, launch
from support.wsclient import WireClient, b64, connect, session, unb64

SAMPLES = 40
POLL_SECONDS = 15
PACE = 0.005
LIMIT_ERROR = -32603


@asynccontextmanager
async def daemon(*flags: str) -> AsyncIterator[ServerHandle]:
    server = launch(TRIO_EXEC, *flags)
    try:
        yield server
    finally:
        server.stop()


async def echo_median(client: WireClient, samples: int = SAMPLES) -> float:
    """Median PTY echo round trip of the client's `cat` (process id `echo`), in seconds."""
    times = []
    for i in range(samples):
        mark = f"<{i}>".encode()
        began = trio.current_time()
        reply = await client.request("process/write", {"processId": "echo", "chunk": b64(mark)})
        assert reply["result"] == {"status": "accepted"}, reply
        await client.wait_output("echo", mark)
        times.append(trio.current_time() - began)
    return statistics.median(times)


def report(limit: str, idle: float, loaded: float) -> None:
    """One line per limit for docs/reliability.md (shown with `pytest -s`)."""
    print(f"\n{limit}: B's echo median {idle * 1000:.2f} ms idle, {loaded * 1000:.2f} ms with A "
          f"at the limit ({loaded / idle:.2f}x)")


async def assert_b_unaffected(
    b: WireClient, keep_at_limit: Callable[[], Awaitable[None]], limit: str
) -> None:
    await b.start_ok("echo", ["cat"], tty=True)
    await echo_median(b, 5)  # warm up
    idle = await echo_median(b)
    async with trio.open_nursery() as nursery:

        async def pressure() -> None:
            while True:
                await keep_at_limit()
                await trio.sleep(PACE)

        nursery.start_soon(pressure)
        loaded = await echo_median(b)
        nursery.cancel_scope.cancel()
    report(limit, idle, loaded)
    assert loaded <= 2 * idle, f"echo median {loaded * 1000:.2f} ms under the limit, {idle * 1000:.2f} ms idle"


async def upgrade_answer(server: ServerHandle) -> tuple[bytes, bytes]:
    """The status line and body the daemon answers a WebSocket upgrade with (it closes after
    a refusal)."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        answer = b""
        with trio.fail_after(10):
            while data := await stream.receive_some(65536):
                answer += data
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], body


async def upgrade_status(server: ServerHandle) -> bytes:
    """The status line the daemon answers a WebSocket upgrade with; the socket is then closed
    (an accepted connection ends at once)."""
    stream = await trio.open_tcp_stream(server.host, server.port)
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        with trio.fail_after(10):
            while b"\r\n" not in head and (data := await stream.receive_some(65536)):
                head += data
    return head.split(b"\r\n")[0]


def assert_limit_error(reply: dict[str, object], text: str) -> None:
    assert reply.get("error") == {"code": LIMIT_ERROR, "message": text}, reply


async def test_max_processes_per_session() -> None:
    async with daemon("--max-processes-per-session", "3") as server, \
            session(server.url) as a, session(server.url) as b:
        for i in range(3):
            await a.start_ok(f"sleep-{i}", ["sleep", "600"])
        refused = await a.start("sleep-3", ["sleep", "600"])
        assert_limit_error(refused, "process limit reached: 3 per session")
        # the refused id was not registered; another session is not limited by A's count
        assert (await a.read("sleep-3"))["error"]["message"] == "unknown process id sleep-3"

        async def again() -> None:
            assert_limit_error(await a.start("more", ["sleep", "600"]),
                               "process limit reached: 3 per session")

        await assert_b_unaffected(b, again, "--max-processes-per-session 3")
        # a closed process no longer counts
        assert (await a.result("process/terminate", {"processId": "sleep-0"}))["running"]
        await a.wait_process_closed("sleep-0")
        await a.start_ok("sleep-3", ["sleep", "600"])


async def test_max_processes_in_total() -> None:
    async with daemon("--max-processes", "4") as server, \
            session(server.url) as a, session(server.url) as b:
        await b.start_ok("echo", ["cat"], tty=True)
        for i in range(3):
            await a.start_ok(f"sleep-{i}", ["sleep", "600"])
        refused = await a.start("sleep-3", ["sleep", "600"])
        assert_limit_error(refused, "process limit reached: 4 in total")

        async def again() -> None:
            assert_limit_error(await a.start("more", ["sleep", "600"]),
                               "process limit reached: 4 in total")

        idle = await echo_median(b)
        async with trio.open_nursery() as nursery:

            async def pressure() -> None:
                while True:
                    await again()
                    await trio.sleep(PACE)

            nursery.start_soon(pressure)
            loaded = await echo_median(b)
            nursery.cancel_scope.cancel()
        report("--max-processes 4", idle, loaded)
        assert loaded <= 2 * idle, (loaded, idle)


async def test_max_sessions() -> None:
    async with daemon("--max-sessions", "2") as server, \
            session(server.url) as a, session(server.url) as b:
        del a
        async with connect(server.url) as third:
            assert_limit_error(await third.initialize(), "session limit reached: 2 sessions")

            async def again() -> None:
                assert_limit_error(await third.initialize(), "session limit reached: 2 sessions")

            await assert_b_unaffected(b, again, "--max-sessions 2")


async def test_max_connections_answers_503_at_the_upgrade() -> None:
    async with daemon("--max-connections", "2") as server, \
            session(server.url) as a, session(server.url) as b:
        del a

        async def again() -> None:
            assert await upgrade_answer(server) == (
                b"HTTP/1.1 503 Service Unavailable", b"connection limit reached: 2 connections\n"
            )

        await again()
        await assert_b_unaffected(b, again, "--max-connections 2")
    async with daemon("--max-connections", "1") as server:
        async with session(server.url) as first:
            await first.assert_usable()
        # the slot comes back when a connection ends. The daemon frees it once it has finished
        # that connection, just after its Close reached the client, so the client cannot
        # know the moment: a new upgrade is accepted within a bounded time.
        with trio.fail_after(10):
            while await upgrade_status(server) != b"HTTP/1.1 101 Switching Protocols":  # noqa: ASYNC110 - a fact of another process
                await trio.sleep(0.01)


async def test_max_pending_requests_counts_long_polls() -> None:
    async with daemon("--max-pending-requests", "8", "--read-pause-requests", "4") as server, \
            session(server.url) as a, session(server.url) as b:
        await a.start_ok("quiet", ["sleep", "600"])
        polls = [
            await a.send_request("process/read",
                                 {"processId": "quiet", "afterSeq": 0, "waitMs": POLL_SECONDS * 1000})
            for _ in range(8)
        ]
        # more long-polls than the read pause: still read, so the ninth request is answered
        # at once, refused by the limit; so is any other request while eight wait
        assert_limit_error(await a.read("quiet", afterSeq=0, waitMs=60_000),
                           "pending request limit reached: 8 per connection")
        assert_limit_error(await a.request("process/list", {}),
                           "pending request limit reached: 8 per connection")

        async def again() -> None:
            assert_limit_error(await a.request("process/list", {}),
                               "pending request limit reached: 8 per connection")

        await assert_b_unaffected(b, again, "--max-pending-requests 8")
        # the polls end at their deadline: the connection takes requests again
        for poll in polls:
            reply = await a.reply_for(poll, within=POLL_SECONDS + 10)
            assert reply["result"]["chunks"] == []
        assert (await a.result("process/list", {}))["processes"][0]["processId"] == "quiet"


async def test_retained_bytes_evicts_the_oldest_closed_output_first() -> None:
    async with daemon("--max-retained-bytes", "1MiB") as server, session(server.url) as a:
        chunk_of = "head -c 700000 /dev/zero"
        _, exited = await a.run("first", ["sh", "-c", chunk_of])
        assert exited["exitCode"] == 0
        await a.start_ok("running", ["sh", "-c", f"{chunk_of}; sleep 600"])
        await a.wait_for(lambda: len(a.output("running")) >= 700000, what="the output")
        # the closed process's output made room for the running one's: a read of it from the
        # start is told where its retained output begins
        first = (await a.read("first", afterSeq=0))["result"]
        assert first["retentionGap"]["afterSeq"] == 0, first
        assert first["retentionGap"]["firstRetainedSeq"] > 1, first
        kept = sum(len(unb64(c["chunk"])) for c in first["chunks"])
        assert kept <= 1024 * 1024 - 700000
        running = (await a.read("running", afterSeq=0))["result"]
        assert running.get("retentionGap") is None
        assert sum(len(unb64(c["chunk"])) for c in running["chunks"]) == 700000
