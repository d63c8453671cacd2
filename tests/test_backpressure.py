"""A client that sends requests and does not read the replies cannot grow the daemon.

The daemon runs as its own process with small in-flight bounds. A raw WebSocket client (wsproto
on a TCP socket, reading nothing) sends many `fs/readFile`s of an 8 MiB file: the daemon stops
reading its socket at the bound instead of running them all and keeping every reply. Meanwhile
another client's requests are answered promptly. Then the slow client reads: every reply
arrives, complete, none lost. The daemon's peak RSS (`VmHWM` in /proc/PID/status, so no peak
is missed between samples) may grow by at most the bound the settings promise plus allocator
slack; the old daemon, with no bound, grew by every reply (~11 MiB each, ~530 MiB here).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable
from pathlib import Path

import trio
from support.rawws import RawWs, handshake_answer, open_raw
from support.servers import TRIO_EXEC, ServerHandle
from support.wsclient import session
from wsproto.events import Message, Ping, Pong, TextMessage

MiB = 1024 * 1024
FILE_SIZE = 8 * MiB
REQUESTS = 48
PAUSE_REQUESTS = 4
PAUSE_BYTES = 16 * MiB
#: One reply: the base64 of the file plus a few bytes of JSON.
REPLY_SIZE = (FILE_SIZE + 2) // 3 * 4
#: What the bounds allow (`trio_exec/inflight.py`): the queued replies, plus one reply for each
#: request running when the bound was reached, each beside its file's raw bytes while encoded.
ALLOWED_GROWTH = PAUSE_BYTES + PAUSE_REQUESTS * (REPLY_SIZE + FILE_SIZE)
#: The allocator's and the interpreter's own share on top (freed replies are not always given
#: back at once).
SLACK = 48 * MiB
#: Longest acceptable wait of the other client for a reply while the slow one is stuck.
PROMPT = 1.0


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


async def send_json(raw: RawWs, obj: object) -> None:
    await raw.send(Message(data=json.dumps(obj)))


async def next_message(raw: RawWs, *, within: float) -> str:
    """The next whole text message (wsproto hands a large one over in pieces); pings are
    answered as any live client would."""
    parts: list[str] = []
    with trio.fail_after(within):
        while True:
            while raw.events:
                event = raw.events.pop(0)
                if isinstance(event, Ping):
                    await raw.send(event.response())
                elif isinstance(event, TextMessage):
                    parts.append(event.data)
                    if event.message_finished:
                        return "".join(parts)
                elif not isinstance(event, Pong):
                    raise AssertionError(f"unexpected {event!r}")
            assert not raw.eof, "the daemon closed the connection"
            await raw._receive_once()


async def test_a_client_that_does_not_read_cannot_grow_the_daemon(
    launch_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = launch_server(
        TRIO_EXEC,
        "--read-pause-requests", str(PAUSE_REQUESTS),
        "--read-pause-bytes", f"{PAUSE_BYTES // MiB}MiB",
        "--ping-interval", "600",
    )
    big = tmp_path / "big"
    content = os.urandom(FILE_SIZE)
    big.write_bytes(content)
    expected = base64.b64encode(content).decode()
    del content

    async with open_raw(server.host, server.port) as slow:
        assert await handshake_answer(slow) is not None and slow.accepted is not None
        await send_json(slow, {"id": 0, "method": "initialize", "params": {"clientName": "slow"}})
        assert "result" in json.loads(await next_message(slow, within=10))
        await send_json(slow, {"method": "initialized", "params": {}})
        baseline = memory_kib(server.pid, "VmRSS")

        async with trio.open_nursery() as nursery:
            # The requests go out from their own task: once the daemon stops reading, the
            # socket's buffers fill up and this send may wait for the reads below.
            async def send_requests() -> None:
                for n in range(1, REQUESTS + 1):
                    await send_json(slow, {"id": n, "method": "fs/readFile",
                                           "params": {"path": str(big)}})

            nursery.start_soon(send_requests)
            # Replies have begun to arrive (unread): the daemon is busy with the slow client's
            # backlog and keeps what the bound allows; meanwhile another client is served.
            with trio.fail_after(30):
                await trio.lowlevel.wait_readable(slow.stream.socket)
            async with session(server.url) as other:
                probe = tmp_path / "probe"
                probe.write_bytes(b"x")
                for _ in range(10):
                    started = trio.current_time()
                    reply = await other.request("fs/getMetadata", {"path": str(probe)}, within=10)
                    assert "result" in reply, reply
                    assert trio.current_time() - started < PROMPT
                    await trio.sleep(0.05)

            # Now the slow client reads: every reply arrives, complete, each id exactly once.
            seen: set[int] = set()
            while len(seen) < REQUESTS:
                message = json.loads(await next_message(slow, within=60))
                assert message["result"]["dataBase64"] == expected, message["id"]
                assert message["id"] not in seen
                seen.add(message["id"])
            assert seen == set(range(1, REQUESTS + 1))

    peak_growth = (memory_kib(server.pid, "VmHWM") - baseline) * 1024
    assert peak_growth <= ALLOWED_GROWTH + SLACK, (
        f"the daemon grew by {peak_growth / MiB:.0f} MiB, more than the bound allows "
        f"({ALLOWED_GROWTH / MiB:.0f} MiB + {SLACK / MiB:.0f} MiB slack)"
    )


async def test_a_peer_that_neither_reads_nor_pongs_is_still_dropped_at_the_bound(
    launch_server: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    """The same flood from a peer that also ignores pings: reading is paused, the writer is
    stuck on the full socket, and the ping timeout still ends the connection (the daemon logs
    it) instead of the pause hiding a dead peer."""
    server = launch_server(
        TRIO_EXEC,
        "--read-pause-requests", "2",
        "--ping-interval", "0.5", "--ping-timeout", "0.5",
        "--log-level", "INFO",
    )
    big = tmp_path / "big"
    big.write_bytes(bytes(FILE_SIZE))
    async with open_raw(server.host, server.port) as dead:
        assert await handshake_answer(dead) is not None and dead.accepted is not None
        await send_json(dead, {"id": 0, "method": "initialize", "params": {"clientName": "dead"}})
        await send_json(dead, {"method": "initialized", "params": {}})
        for n in range(1, 9):  # more replies than the socket buffers hold, none read
            await send_json(dead, {"id": n, "method": "fs/readFile", "params": {"path": str(big)}})
        with trio.fail_after(20):  # the daemon's own account, in its log
            while True:
                if "no pong within" in server.stderr_text():
                    break
                await trio.sleep(0.05)
        await dead.wait_eof(within=20)  # and the connection is gone, whatever it had queued
