"""``process/read`` (protocol.md §8; contract §1 and §2 #9).

Output chunk boundaries are made deterministic with file gates: every ``printf`` before a gate
is its own pipe read, so its own chunk and seq.
"""

from __future__ import annotations

import pytest
import trio
from support.expect import READ_KEYS, invalid_params, invalid_request
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import WireClient, b64, session

MIB = 1024 * 1024


def read_state(reply: dict[str, object], server: ServerHandle) -> dict[str, object]:
    """The six reference members of a read result, checking their order.

    trio-exec may add members after them (contract §3: ``signal``, a retention-gap marker).
    """
    result = reply["result"]
    assert isinstance(result, dict), reply
    assert list(result)[:6] == READ_KEYS, list(result)
    if server.is_reference:
        assert list(result) == READ_KEYS
    return {k: result[k] for k in READ_KEYS}


def chunk(seq: int, data: str, stream: str = "stdout") -> dict[str, object]:
    return {"seq": seq, "stream": stream, "chunk": b64(data)}


async def three_chunks(client: WireClient, gates: Gates, process_id: str = "three") -> None:
    """A closed process with three 10-byte stdout chunks: seq 1-3, exited 4, closed 5."""
    script = (f"printf 0123456789; {gates.wait('1')}; printf abcdefghij; {gates.wait('2')}; "
              f"printf ABCDEFGHIJ; {gates.wait('3')}")
    await client.start_ok(process_id, ["/bin/sh", "-c", script])
    for n, seen in enumerate([b"0123456789", b"0123456789abcdefghij",
                              b"0123456789abcdefghijABCDEFGHIJ"], start=1):
        await client.wait_output(process_id, seen)
        gates.open(str(n))
    events = await client.wait_process_closed(process_id)
    assert [e["params"]["seq"] for e in events] == [1, 2, 3, 4, 5]


THREE = [chunk(1, "0123456789"), chunk(2, "abcdefghij"), chunk(3, "ABCDEFGHIJ")]


async def test_read_result_members_and_next_seq_rule(server: ServerHandle, gates: Gates) -> None:
    """out 1, err 2, exited 3, closed 4 (the protocol.md §8 example)."""
    script = f"printf out; {gates.wait('a')}; printf err >&2; {gates.wait('b')}; exit 3"
    async with session(server.url) as client:
        await client.start_ok("example", ["/bin/sh", "-c", script])
        await client.wait_output("example", b"out")
        gates.open("a")
        await client.wait_output("example", b"outerr")
        gates.open("b")
        await client.wait_process_closed("example")
        both = [chunk(1, "out"), chunk(2, "err", "stderr")]
        done = {"exited": True, "exitCode": 3, "closed": True, "failure": None}
        for params, chunks, next_seq in [
            ({}, both, 3),
            ({"afterSeq": None, "maxBytes": None, "waitMs": None}, both, 3),
            ({"afterSeq": 0}, both, 3),
            ({"afterSeq": 1}, both[1:], 3),
            ({"afterSeq": 2}, [], 5),
            ({"afterSeq": 3}, [], 5),
            ({"afterSeq": 4}, [], 5),
            ({"afterSeq": 100}, [], 5),
            ({"afterSeq": 2**64 - 1}, [], 5),
        ]:
            reply = await client.read("example", **params)
            assert read_state(reply, server) == {
                "chunks": chunks, "nextSeq": next_seq, **done}, params
        raw = client.inbound[-1].raw
        assert raw == (
            f'{{"id":{reply["id"]},"result":{{"chunks":[],"nextSeq":5,"exited":true,'
            '"exitCode":3,"closed":true,"failure":null'
        ) + raw[raw.index('"failure":null') + len('"failure":null'):]


# protocol.md §8.1, three 10-byte chunks
MAX_BYTES_TABLE = [(0, 1), (1, 1), (5, 1), (10, 1), (11, 1), (19, 1), (20, 2), (21, 2),
                   (29, 2), (30, 3), (1000, 3)]


async def test_max_bytes_never_splits_chunks_and_always_returns_the_first(
    server: ServerHandle, gates: Gates
) -> None:
    async with session(server.url) as client:
        await three_chunks(client, gates)
        for max_bytes, count in MAX_BYTES_TABLE:
            result = read_state(await client.read("three", maxBytes=max_bytes), server)
            assert result["chunks"] == THREE[:count], max_bytes
            assert result["nextSeq"] == count + 1, max_bytes
        # from the middle: afterSeq 1 with room for one chunk
        result = read_state(await client.read("three", afterSeq=1, maxBytes=10), server)
        assert (result["chunks"], result["nextSeq"]) == (THREE[1:2], 3)
        result = read_state(await client.read("three", afterSeq=1, maxBytes=0), server)
        assert (result["chunks"], result["nextSeq"]) == (THREE[1:2], 3)


async def test_read_of_a_running_process(server: ServerHandle, gates: Gates) -> None:
    async with session(server.url) as client:
        await client.start_ok("running", ["/bin/sh", "-c", f"printf hi; {gates.wait('end')}"])
        await client.wait_output("running", b"hi")
        assert read_state(await client.read("running"), server) == {
            "chunks": [chunk(1, "hi")], "nextSeq": 2, "exited": False, "exitCode": None,
            "closed": False, "failure": None,
        }
        assert read_state(await client.read("running", afterSeq=1), server)["nextSeq"] == 2
        gates.open("end")
        await client.wait_process_closed("running")


async def test_read_of_an_unknown_process(server: ServerHandle) -> None:
    async with session(server.url) as client:
        for process_id in ["nope", ""]:
            reply = await client.read(process_id)
            assert reply == invalid_request(f"unknown process id {process_id}", reply["id"])


async def test_out_of_range_numbers_are_refused(server: ServerHandle) -> None:
    """serde_json reads an integer beyond u64 as a float, hence the float texts."""
    async with session(server.url) as client:
        await client.start_ok("nums", ["/bin/true"])
        for params, text in [
            ({"afterSeq": 2**64}, "invalid type: floating point `1.8446744073709552e+19`, "
                                  "expected u64"),
            ({"waitMs": 2**64}, "invalid type: floating point `1.8446744073709552e+19`, "
                                "expected u64"),
            ({"maxBytes": 2**64}, "invalid type: floating point `1.8446744073709552e+19`, "
                                  "expected usize"),
            ({"maxBytes": -5}, "invalid value: integer `-5`, expected usize"),
        ]:
            reply = await client.read("nums", **params)
            assert reply == invalid_params(text, reply["id"]), params


# ------------------------------------------------------------------------- long-poll


async def timed_read(client: WireClient, process_id: str, **params: object
                     ) -> tuple[dict[str, object], float]:
    start = trio.current_time()
    reply = await client.read(process_id, within=30, **params)
    return reply, trio.current_time() - start


async def test_long_poll_times_out_with_the_current_state(
    server: ServerHandle, gates: Gates
) -> None:
    async with session(server.url) as client:
        await client.start_ok("quiet", ["/bin/sh", "-c", gates.wait("end")])
        reply, elapsed = await timed_read(client, "quiet", waitMs=300)
        assert 0.28 <= elapsed < 3, elapsed
        assert read_state(reply, server) == {
            "chunks": [], "nextSeq": 1, "exited": False, "exitCode": None, "closed": False,
            "failure": None,
        }
        gates.open("end")
        await client.wait_process_closed("quiet")


async def test_long_poll_returns_when_output_arrives(server: ServerHandle, gates: Gates) -> None:
    async with session(server.url) as client:
        await client.start_ok("later", ["/bin/sh", "-c", f"{gates.wait('go')}; printf late; "
                                                         f"{gates.wait('end')}"])
        request_id = await client.send_request("process/read", {
            "processId": "later", "afterSeq": 0, "waitMs": 20000})
        gates.open("go")
        reply = await client.reply_for(request_id, within=10)
        assert read_state(reply, server)["chunks"] == [chunk(1, "late")]
        gates.open("end")
        await client.wait_process_closed("later")


async def test_long_poll_returns_at_exit_without_output(
    server: ServerHandle, gates: Gates
) -> None:
    async with session(server.url) as client:
        await client.start_ok("exits", ["/bin/sh", "-c", f"{gates.wait('go')}; exit 4"])
        request_id = await client.send_request("process/read", {
            "processId": "exits", "waitMs": 20000})
        gates.open("go")
        result = read_state(await client.reply_for(request_id, within=10), server)
        assert (result["chunks"], result["exited"], result["exitCode"]) == ([], True, 4)
        await client.wait_process_closed("exits")


async def test_long_poll_on_a_closed_process_returns_at_once(server: ServerHandle) -> None:
    async with session(server.url) as client:
        await client.run("closed", ["/bin/true"])
        reply, elapsed = await timed_read(client, "closed", afterSeq=2, waitMs=5000)
        assert elapsed < 1, elapsed
        assert read_state(reply, server) == {
            "chunks": [], "nextSeq": 3, "exited": True, "exitCode": 0, "closed": True,
            "failure": None,
        }


async def test_long_poll_on_an_exited_but_unclosed_process(
    server: ServerHandle, gates: Gates
) -> None:
    """Reference (oddity 9): returns at once whenever the process has exited, even with
    nothing new. trio-exec (contract §2 #9): waits for an event newer than ``afterSeq`` (the
    close) or the deadline."""
    async with session(server.url) as client:
        await client.start_ok("unclosed", ["/bin/sh", "-c", f"({gates.wait('end')}) & exit 0"])
        await client.wait_exited("unclosed")
        reply, elapsed = await timed_read(client, "unclosed", afterSeq=1, waitMs=1000)
        assert read_state(reply, server) == {
            "chunks": [], "nextSeq": 2, "exited": True, "exitCode": 0, "closed": False,
            "failure": None,
        }
        if server.is_reference:
            assert elapsed < 0.5, elapsed
        else:
            assert 0.95 <= elapsed < 5, elapsed
        # a long-poll in flight when the close happens returns with it
        request_id = await client.send_request("process/read", {
            "processId": "unclosed", "afterSeq": 1, "waitMs": 20000})
        gates.open("end")
        result = read_state(await client.reply_for(request_id, within=10), server)
        assert result["chunks"] == []
        assert result["exited"] is True
        await client.wait_process_closed("unclosed")
        result = read_state(await client.read("unclosed", afterSeq=1, waitMs=5000), server)
        assert (result["nextSeq"], result["closed"]) == (3, True)


async def test_long_poll_with_after_seq_beyond_the_end_waits_the_full_time(
    server: ServerHandle, gates: Gates
) -> None:
    async with session(server.url) as client:
        await client.start_ok("beyond", ["/bin/sh", "-c", f"printf x; {gates.wait('end')}"])
        await client.wait_output("beyond", b"x")
        reply, elapsed = await timed_read(client, "beyond", afterSeq=100, waitMs=300)
        assert 0.28 <= elapsed < 3, elapsed
        result = read_state(reply, server)
        assert (result["chunks"], result["nextSeq"], result["exited"]) == ([], 2, False)
        gates.open("end")
        await client.wait_process_closed("beyond")


@pytest.mark.parametrize("wait_ms", [2**40, 2**63, 2**64 - 1])
async def test_huge_wait_ms_is_accepted(server: ServerHandle, gates: Gates, wait_ms: int) -> None:
    async with session(server.url) as client:
        await client.start_ok("forever", ["/bin/sh", "-c", f"{gates.wait('go')}; printf done"])
        request_id = await client.send_request("process/read", {
            "processId": "forever", "waitMs": wait_ms})
        gates.open("go")
        result = read_state(await client.reply_for(request_id, within=10), server)
        # it returns with the output, or at the exit if that was seen first; the reference may
        # also number the exit before the output (oddity 8: then the output is seq 2)
        outputs = [[chunk(1, "done")]] + ([[chunk(2, "done")]] if server.is_reference else [])
        assert result["chunks"] in outputs or (
            result["chunks"] == [] and result["exited"] is True), result
        await client.wait_process_closed("forever")


# ------------------------------------------------------------------ retained window


async def test_retained_output_is_a_one_mebibyte_window_of_whole_chunks(
    server: ServerHandle,
) -> None:
    total = 3_000_000
    async with session(server.url) as client:
        await client.run("burst", ["/bin/sh", "-c", f"head -c {total} /dev/zero"], within=30)
        outputs = [e["params"] for e in client.events("burst") if e["method"] == "process/output"]
        # notifications are not capped
        assert len(client.output("burst")) == total
        last_seq = max(p["seq"] for p in outputs)
        result = read_state(await client.read("burst"), server)
        chunks = result["chunks"]
        retained = sum(len(c["chunk"]) // 4 * 3 - c["chunk"].count("=") for c in chunks)
        seqs = [c["seq"] for c in chunks]
        largest = max(len(p["chunk"]) // 4 * 3 for p in outputs)
        assert MIB - largest < retained <= MIB, (retained, largest)
        # a suffix of the output chunks (the exit event may sit between two of them)
        assert seqs == sorted(p["seq"] for p in outputs if p["seq"] >= seqs[0])
        assert seqs[0] > 1, "the oldest chunks were dropped"
        assert result["nextSeq"] == last_seq + 1
        # notified chunks and retained chunks are the same chunks
        by_seq = {p["seq"]: p["chunk"] for p in outputs}
        assert all(by_seq[c["seq"]] == c["chunk"] for c in chunks)
        # an afterSeq inside the dropped region starts at the oldest retained chunk
        again = read_state(await client.read("burst", afterSeq=1, maxBytes=1), server)
        assert [c["seq"] for c in again["chunks"]] == [seqs[0]]
        if server.is_reference:
            assert max(len(p["chunk"]) for p in outputs) <= 8192 * 4 // 3 + 4
