"""The session scenarios once more over real sockets, with real TCP drops (RST, not Close).

Plus the exactly-once property under many reconnects: a producer streams numbered lines while
the client drops the connection 100 times; what the client assembles from notifications and
`process/read afterSeq` catch-ups is every line once, in order.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Awaitable, Callable

import pytest
import trio
from support.daemon import alive, ended, parked, tcp_daemon
from support.wsclient import WireClient, connect, unb64

from trio_exec.server import Daemon

LINES = 3000
PRODUCER = [
    "python3",
    "-u",
    "-c",
    f"import time\nfor i in range(1, {LINES + 1}):\n    print(i)\n    time.sleep(0.0005)",
]


def reset(client: WireClient) -> None:
    """Abort the TCP connection with an RST, as a dying network path or a killed laptop does."""
    sock = client.ws._stream.socket  # type: ignore[attr-defined]
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def parked_in(daemon: Daemon, session_id: str) -> None:
    """Until the daemon has noticed the drop and parked the session."""
    session = daemon.registry.get(session_id)
    assert session is not None
    with trio.fail_after(10):
        await parked(session)


async def end_with_a_reset(client: WireClient) -> None:
    reset(client)


async def end_with_an_oversize_message(client: WireClient) -> None:
    await client.send_raw('{"id":9,"method":"x","params":"' + "y" * 5000 + '"}', may_close=True)
    assert (await client.wait_closed()).code == 1009


@pytest.mark.parametrize("end", [end_with_a_reset, end_with_an_oversize_message])
async def test_a_connection_end_parks_the_session_and_a_resume_finds_its_process(
    end: Callable[[WireClient], Awaitable[None]],
) -> None:
    """A TCP reset, or Close 1009 after an oversize message, ends only the connection: the
    session is parked, its process keeps running, and a resume finds both."""
    async with tcp_daemon(max_message_size=4096) as served:
        daemon, url = served.daemon, served.url
        async with connect(url) as client:
            sid = await client.handshake()
            await client.start_ok("p", ["sh", "-c", "echo before; read x; echo after $x"], pipeStdin=True)
            await client.wait_output("p", b"before\n")
            await end(client)
        await parked_in(daemon, sid)
        async with connect(url) as client:
            assert await client.handshake(resumeSessionId=sid) == sid
            reply = await client.request("process/write", {"processId": "p", "chunk": "Mgo="})
            assert reply["result"] == {"status": "accepted"}
            await client.wait_process_closed("p")
            read = (await client.read("p"))["result"]
            assert b"".join(unb64(c["chunk"]) for c in read["chunks"]) == b"before\nafter 2\n"


async def test_takeover_of_a_half_dead_connection_over_tcp() -> None:
    """The old connection is never closed by the client (a half-dead peer); the new one
    resumes at once and owns the session; the old socket gets Close 4000."""
    async with tcp_daemon() as served, connect(served.url) as old, connect(served.url) as new:
        daemon = served.daemon
        sid = await old.handshake()
        await old.start_ok("s", ["sleep", "1000"])
        pid = daemon.registry.get(sid).list_processes()[0].pid  # type: ignore[union-attr]
        assert await new.handshake(resumeSessionId=sid) == sid
        assert (await old.wait_closed()).code == 4000
        assert (await new.result("process/terminate", {"processId": "s"})) == {"running": True}
        await new.wait_process_closed("s")
        assert not alive(pid)


async def test_expiry_after_a_tcp_reset_kills_the_process() -> None:
    async with tcp_daemon(session_ttl=0.2) as served:
        daemon, url = served.daemon, served.url
        async with connect(url) as client:
            sid = await client.handshake()
            await client.start_ok("s", ["sleep", "1000"])
            session = daemon.registry.get(sid)
            assert session is not None
            pid = session.list_processes()[0].pid
            reset(client)
        with trio.fail_after(10):
            await ended(session)
        assert not alive(pid)
        async with connect(url) as client:
            reply = await client.initialize(resumeSessionId=sid)
            assert reply["error"]["message"] == f"unknown session id {sid}"


async def catch_up(
    client: WireClient, process_id: str, after: int, into: list[bytes]
) -> tuple[int, bool]:
    """Read everything after `after`; fail loudly on a retention gap. Returns the last seq and
    whether the process is closed (no output will follow)."""
    while True:
        result = (await client.read(process_id, afterSeq=after))["result"]
        assert "retentionGap" not in result, result
        if not result["chunks"]:
            return after, result["closed"]
        into.extend(unb64(c["chunk"]) for c in result["chunks"])
        after = result["chunks"][-1]["seq"]


async def test_exactly_once_output_across_100_tcp_resets_while_output_flows() -> None:
    """Cycle x100: resume → catch up with `afterSeq` → take notifications in seq order until
    a few new chunks arrived → RST. Then read to the end. Every line once, in order."""
    received: list[bytes] = []
    last_seq = 0
    async with tcp_daemon() as served:
        daemon, url = served.daemon, served.url
        async with connect(url) as client:
            sid = await client.handshake()
            await client.start_ok("p", PRODUCER)
            reset(client)
        for _cycle in range(100):
            await parked_in(daemon, sid)
            async with connect(url) as client:
                await client.handshake(resumeSessionId=sid)
                last_seq, closed = await catch_up(client, "p", last_seq, received)
                if closed:
                    reset(client)
                    continue
                with trio.move_on_after(1):
                    await client.wait_for(
                        lambda seen=last_seq: sum(  # type: ignore[misc]
                            1 for n in client.events("p") if n["params"]["seq"] > seen
                        ) >= 3 or None,
                        what="new output",
                    )
                for note in sorted(client.events("p"), key=lambda n: n["params"]["seq"]):
                    params = note["params"]
                    if note["method"] == "process/output" and params["seq"] == last_seq + 1:
                        received.append(unb64(params["chunk"]))
                        last_seq = params["seq"]
                reset(client)
        await parked_in(daemon, sid)
        async with connect(url) as client:
            await client.handshake(resumeSessionId=sid)
            with trio.fail_after(30):
                while True:
                    last_seq, _ = await catch_up(client, "p", last_seq, received)
                    state = (await client.read("p", afterSeq=last_seq, waitMs=5000))["result"]
                    if state["closed"] and not state["chunks"]:
                        break
    assert b"".join(received) == b"".join(b"%d\n" % i for i in range(1, LINES + 1))
