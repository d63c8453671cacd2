"""``process/read`` and the seq of process notifications in the 0.169 dialect, differentially
against the codex 0.169.0 and 0.171.0 exec-servers (docs/protocol-dialects.md §4.3; the
probe is docs/probes/p11_seq.py, its table docs/probes/captures/p11-seq.md).

The rule these pin, probed rather than assumed: a read **without** ``maxBytes`` (absent or
null, as the codex client sends it) answers ``nextSeq`` = the process's next unallocated seq,
which counts the ``exited`` and ``closed`` events (three chunks, an exit and a close → 6);
a read **with** ``maxBytes`` answers the 0.120 rule (last returned chunk + 1; the next
unallocated seq when no chunk is returned). The 0.120 dialect keeps its own rule
(``tests/conformance/test_process_read.py``).

Chunk boundaries are deterministic with file gates: every ``printf`` before a gate is its own
pipe read, so its own chunk and seq.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import WireClient, b64, session

from .test_dialect import start169, uri

READ_KEYS = ["chunks", "nextSeq", "exited", "exitCode", "closed", "failure", "sandboxDenied"]
MIB = 1024 * 1024


def chunk(seq: int, data: str, stream: str = "stdout") -> dict[str, Any]:
    return {"seq": seq, "stream": stream, "chunk": b64(data)}


def read_state(reply: dict[str, Any], server: ServerHandle) -> dict[str, Any]:
    """The seven reference members of a 0.169 read result, checking their order (trio-exec
    may add members after them: contract §3)."""
    result = reply["result"]
    assert list(result)[:7] == READ_KEYS, list(result)
    if server.is_reference:
        assert list(result) == READ_KEYS
    return {k: result[k] for k in READ_KEYS}


def seqs(client: WireClient, process_id: str) -> list[str]:
    """The notifications of a process as ``o1 x2 c3`` tokens (output, exited, closed)."""
    letter = {"process/output": "o", "process/exited": "x", "process/closed": "c"}
    return [f"{letter[n['method']]}{n['params']['seq']}" for n in client.events(process_id)]


async def read(client: WireClient, process_id: str, **params: Any) -> dict[str, Any]:
    return await client.read(process_id, within=30, **params)


async def timed_read(client: WireClient, process_id: str, **params: Any
                     ) -> tuple[dict[str, Any], float]:
    start = trio.current_time()
    reply = await read(client, process_id, **params)
    return reply, trio.current_time() - start


async def three_chunks(client: WireClient, gates: Gates, cwd: Path) -> None:
    """Process ``three``: 10-byte stdout chunks 1-3, exited 4 (code 3), closed 5."""
    script = (f"printf 0123456789; {gates.wait('1')}; printf abcdefghij; {gates.wait('2')}; "
              f"printf ABCDEFGHIJ; {gates.wait('3')}; exit 3")
    await start169(client, "three", ["/bin/sh", "-c", script], uri(cwd))
    seen = b""
    for n, text in enumerate([b"0123456789", b"abcdefghij", b"ABCDEFGHIJ"], start=1):
        seen += text
        await client.wait_output("three", seen)
        gates.open(str(n))
    await client.wait_process_closed("three")


THREE = [chunk(1, "0123456789"), chunk(2, "abcdefghij"), chunk(3, "ABCDEFGHIJ")]
CLOSED_3 = {"exited": True, "exitCode": 3, "closed": True, "failure": None,
            "sandboxDenied": False}


async def test_a_read_to_the_end_of_a_closed_process_counts_exit_and_close(
    server169: ServerHandle, gates: Gates, tmp_path: Path
) -> None:
    """out 1-3, exited 4, closed 5: without ``maxBytes`` ``nextSeq`` is 6 with or without
    chunks — the 0.169/0.171 clients take ``nextSeq - 1`` as the seq of the close event."""
    async with session(server169.url) as client:
        await three_chunks(client, gates, tmp_path)
        assert seqs(client, "three") == ["o1", "o2", "o3", "x4", "c5"]
        for params, chunks in [
            ({}, THREE),
            ({"afterSeq": None, "maxBytes": None, "waitMs": None}, THREE),
            ({"afterSeq": 0}, THREE),
            ({"afterSeq": 1}, THREE[1:]),
            ({"afterSeq": 2, "maxBytes": None, "waitMs": 0}, THREE[2:]),  # the client's read
            ({"afterSeq": 3}, []),
            ({"afterSeq": 4}, []),
            ({"afterSeq": 5}, []),
            ({"afterSeq": 6}, []),
            ({"afterSeq": 100}, []),
            ({"afterSeq": 2**64 - 1}, []),
        ]:
            reply = await read(client, "three", **params)
            assert read_state(reply, server169) == {
                "chunks": chunks, "nextSeq": 6, **CLOSED_3}, params
        raw = client.inbound[-1].raw
        assert raw.startswith(
            f'{{"id":{reply["id"]},"result":{{"chunks":[],"nextSeq":6,"exited":true,'
            '"exitCode":3,"closed":true,"failure":null,"sandboxDenied":false'), raw


# three 10-byte chunks: maxBytes → chunks returned (0.120's §8.1 table, unchanged)
MAX_BYTES_TABLE = [(0, 1), (1, 1), (10, 1), (19, 1), (20, 2), (29, 2), (30, 3), (1000, 3),
                   (2**40, 3)]


async def test_max_bytes_gives_the_seq_after_the_last_chunk(
    server169: ServerHandle, gates: Gates, tmp_path: Path
) -> None:
    """With ``maxBytes`` — even one that cuts nothing — ``nextSeq`` is the last returned chunk
    + 1, and the next unallocated seq when no chunk is returned."""
    async with session(server169.url) as client:
        await three_chunks(client, gates, tmp_path)
        for max_bytes, count in MAX_BYTES_TABLE:
            result = read_state(await read(client, "three", maxBytes=max_bytes), server169)
            assert result == {"chunks": THREE[:count], "nextSeq": count + 1, **CLOSED_3}, max_bytes
        for params, chunks, next_seq in [
            ({"afterSeq": 1, "maxBytes": 10}, THREE[1:2], 3),
            ({"afterSeq": 2, "maxBytes": 1}, THREE[2:], 4),
            ({"afterSeq": 3, "maxBytes": 10}, [], 6),
            ({"afterSeq": 0, "maxBytes": 1000, "waitMs": 1000}, THREE, 4),
        ]:
            result = read_state(await read(client, "three", **params), server169)
            assert (result["chunks"], result["nextSeq"]) == (chunks, next_seq), params


async def test_read_of_a_running_process(
    server169: ServerHandle, gates: Gates, tmp_path: Path
) -> None:
    async with session(server169.url) as client:
        await start169(client, "run", ["/bin/sh", "-c", f"printf hi; {gates.wait('end')}"],
                       uri(tmp_path))
        await client.wait_output("run", b"hi")
        running = {"exited": False, "exitCode": None, "closed": False, "failure": None,
                   "sandboxDenied": False}
        for params, chunks in [({}, [chunk(1, "hi")]), ({"afterSeq": 1}, []),
                               ({"afterSeq": 5}, []), ({"afterSeq": 1, "maxBytes": 10}, []),
                               ({"maxBytes": 10}, [chunk(1, "hi")])]:
            result = read_state(await read(client, "run", **params), server169)
            assert result == {"chunks": chunks, "nextSeq": 2, **running}, params
        # a long-poll with nothing newer (also beyond the end) waits for its deadline
        for after in (1, 100):
            reply, elapsed = await timed_read(client, "run", afterSeq=after, waitMs=400)
            assert 0.38 <= elapsed < 5, elapsed
            assert read_state(reply, server169) == {"chunks": [], "nextSeq": 2, **running}
        gates.open("end")
        await client.wait_process_closed("run")
        assert seqs(client, "run") == ["o1", "x2", "c3"]


async def test_output_after_the_exit_and_reads_before_the_close(
    server169: ServerHandle, gates: Gates, tmp_path: Path
) -> None:
    """The shell exits (code 5) while a background child holds its stdout and prints after
    the exit: the late output takes the seq after ``exited``. Before the close, a read without
    ``maxBytes`` ends at the exit event (``nextSeq`` = exit seq + 1); a long-poll with nothing
    newer waits (0.169 does not return at once for an exited process, unlike 0.120)."""
    script = (f"printf a; {gates.wait('exit')}; "
              f"({gates.wait('late')}; printf late; {gates.wait('close')}) & exit 5")
    async with session(server169.url) as client:
        await start169(client, "bg", ["/bin/sh", "-c", script], uri(tmp_path))
        await client.wait_output("bg", b"a")
        gates.open("exit")
        await client.wait_exited("bg")
        assert seqs(client, "bg") == ["o1", "x2"]
        exited = {"exited": True, "exitCode": 5, "closed": False, "failure": None,
                  "sandboxDenied": False}
        for params, chunks, next_seq in [
            ({}, [chunk(1, "a")], 3),
            ({"afterSeq": 1}, [], 3),
            ({"afterSeq": 2}, [], 3),
            ({"afterSeq": 100}, [], 3),
            ({"maxBytes": 1}, [chunk(1, "a")], 2),
            ({"maxBytes": 1000}, [chunk(1, "a")], 2),
            ({"afterSeq": 1, "maxBytes": 10}, [], 3),
        ]:
            result = read_state(await read(client, "bg", **params), server169)
            assert result == {"chunks": chunks, "nextSeq": next_seq, **exited}, params
        reply, elapsed = await timed_read(client, "bg", afterSeq=2, waitMs=400)
        assert 0.38 <= elapsed < 5, elapsed
        assert read_state(reply, server169) == {"chunks": [], "nextSeq": 3, **exited}

        # a long-poll in flight returns with the late output
        request_id = await client.send_request("process/read", {
            "processId": "bg", "afterSeq": 2, "waitMs": 20000})
        gates.open("late")
        result = read_state(await client.reply_for(request_id, within=10), server169)
        assert (result["chunks"], result["nextSeq"]) == ([chunk(3, "late")], 4)
        await client.wait_output("bg", b"alate")
        assert seqs(client, "bg") == ["o1", "x2", "o3"]
        for params, chunks in [({}, [chunk(1, "a"), chunk(3, "late")]),
                               ({"afterSeq": 2}, [chunk(3, "late")]), ({"afterSeq": 3}, [])]:
            result = read_state(await read(client, "bg", **params), server169)
            assert result == {"chunks": chunks, "nextSeq": 4, **exited}, params

        gates.open("close")
        await client.wait_process_closed("bg")
        assert seqs(client, "bg") == ["o1", "x2", "o3", "c4"]
        closed = {**exited, "closed": True}
        for params, chunks, next_seq in [
            ({}, [chunk(1, "a"), chunk(3, "late")], 5),
            ({"afterSeq": 1}, [chunk(3, "late")], 5),
            ({"afterSeq": 3}, [], 5),
            ({"afterSeq": 100}, [], 5),
            ({"maxBytes": 1000}, [chunk(1, "a"), chunk(3, "late")], 4),
        ]:
            result = read_state(await read(client, "bg", **params), server169)
            assert result == {"chunks": chunks, "nextSeq": next_seq, **closed}, params


async def test_a_process_without_output(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        await start169(client, "quiet", ["/bin/true"], uri(tmp_path))
        await client.wait_process_closed("quiet")
        assert seqs(client, "quiet") == ["x1", "c2"]
        for after in (0, 1, 2, 3):
            result = read_state(await read(client, "quiet", afterSeq=after), server169)
            assert (result["chunks"], result["nextSeq"], result["closed"]) == ([], 3, True)


@pytest.mark.parametrize("after", [0, 3, 5, 6, 100])
async def test_a_long_poll_on_a_closed_process_returns_at_once(
    server169: ServerHandle, gates: Gates, tmp_path: Path, after: int
) -> None:
    """Once everything is read (and also before), nothing newer can come: no wait."""
    async with session(server169.url) as client:
        await three_chunks(client, gates, tmp_path)
        reply, elapsed = await timed_read(client, "three", afterSeq=after, waitMs=20000)
        assert elapsed < 5, elapsed
        assert read_state(reply, server169) == {
            "chunks": THREE[after:], "nextSeq": 6, **CLOSED_3}


async def test_reads_beyond_the_retained_window(server169: ServerHandle, tmp_path: Path) -> None:
    """3 000 000 bytes: the read starts at the oldest retained chunk (1 MiB window); without
    ``maxBytes`` its ``nextSeq`` is after the close, with ``maxBytes`` after its one chunk.
    The exit may take any seq among the output's (the references number it when the child is
    reaped, trio-exec after the output drained): every seq is used once and close is last."""
    async with session(server169.url) as client:
        await start169(client, "burst", ["/bin/sh", "-c", "head -c 3000000 /dev/zero"],
                       uri(tmp_path))
        events = await client.wait_process_closed("burst", within=60)
        assert sorted(n["params"]["seq"] for n in events) == list(range(1, len(events) + 1))
        assert events[-1]["method"] == "process/closed"
        close_seq = events[-1]["params"]["seq"]
        assert len(client.output("burst")) == 3_000_000

        result = read_state(await read(client, "burst"), server169)
        retained = [c["seq"] for c in result["chunks"]]
        assert retained[0] > 1, "the oldest chunks were dropped"
        assert MIB // 2 < sum(len(c["chunk"]) * 3 // 4 for c in result["chunks"]) <= MIB * 2
        assert result["nextSeq"] == close_seq + 1
        again = read_state(await read(client, "burst", afterSeq=1, maxBytes=1), server169)
        assert ([c["seq"] for c in again["chunks"]], again["nextSeq"]) == (
            [retained[0]], retained[0] + 1)
