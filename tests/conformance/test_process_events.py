"""Process notifications and exit codes (protocol.md §7, §11; contract §1 and §2 #8, #11)."""

from __future__ import annotations

import pytest
import trio
from support.expect import exit_members, normal_exit, signal_exit
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import b64, connect, session

TTY_MODES = pytest.mark.parametrize("tty", [False, True], ids=["pipe", "tty"])


async def test_output_exit_and_close_share_one_seq_counter(
    server: ServerHandle, gates: Gates
) -> None:
    script = f"printf out; {gates.wait('a')}; printf err >&2; {gates.wait('b')}; exit 3"
    async with session(server.url) as client:
        await client.start_ok("basic", ["/bin/sh", "-c", script])
        await client.wait_output("basic", b"out")
        gates.open("a")
        await client.wait_output("basic", b"outerr")
        gates.open("b")
        events = await client.wait_process_closed("basic")
        assert [e["method"] for e in events] == [
            "process/output", "process/output", "process/exited", "process/closed"]
        output1, output2, exited, closed = (e["params"] for e in events)
        assert output1 == {"processId": "basic", "seq": 1, "stream": "stdout", "chunk": b64("out")}
        assert output2 == {"processId": "basic", "seq": 2, "stream": "stderr", "chunk": b64("err")}
        assert list(exited)[:3] == ["processId", "seq", "exitCode"]
        assert (exited["processId"], exited["seq"]) == ("basic", 3)
        assert normal_exit(exited) == {"exitCode": 3}
        assert closed == {"processId": "basic", "seq": 4}
        raws = [item.raw for item in client.inbound if item.is_notification]
        assert raws[0] == (
            '{"method":"process/output","params":{"processId":"basic","seq":1,'
            '"stream":"stdout","chunk":"b3V0"}}'
        )
        assert raws[-1] == '{"method":"process/closed","params":{"processId":"basic","seq":4}}'


@TTY_MODES
@pytest.mark.parametrize("status,reported", [(0, 0), (3, 3), (255, 255), (300, 44)])
async def test_exit_status_is_reported_modulo_256(
    server: ServerHandle, tty: bool, status: int, reported: int
) -> None:
    async with session(server.url) as client:
        _, exited = await client.run("exit", ["/bin/sh", "-c", f"exit {status}"], tty=tty)
        assert normal_exit(exited) == {"exitCode": reported}


@TTY_MODES
@pytest.mark.parametrize("signal", ["SIGKILL", "SIGTERM"])
async def test_signal_death(server: ServerHandle, tty: bool, signal: str) -> None:
    """Reference: exitCode -1 (pipe) or 1 (tty), the signal lost. trio-exec (contract §2
    #11): -1 in both modes plus ``"signal"`` in process/exited and process/read."""
    async with session(server.url) as client:
        _, exited = await client.run("killed", ["/bin/sh", "-c", f"kill -{signal[3:]} $$"],
                                     tty=tty)
        expected = signal_exit(server, tty=tty, signal=signal)
        assert exit_members(exited) == expected
        read = (await client.read("killed"))["result"]
        assert {k: read[k] for k in expected} == expected


async def test_closed_waits_until_grandchildren_release_the_output(
    server: ServerHandle, gates: Gates
) -> None:
    """``process/closed`` comes after the exit *and* EOF on both pipes."""
    script = f"({gates.wait('late')}; echo late) & exit 0"
    async with session(server.url) as client:
        await client.start_ok("holder", ["/bin/sh", "-c", script])
        exited = await client.wait_exited("holder")
        assert normal_exit(exited) == {"exitCode": 0}
        read = (await client.read("holder"))["result"]
        assert (read["exited"], read["closed"]) == (True, False)
        assert [e["method"] for e in client.events("holder")] == ["process/exited"]
        gates.open("late")
        events = await client.wait_process_closed("holder")
        assert [e["method"] for e in events] == [
            "process/exited", "process/output", "process/closed"]
        assert [e["params"]["seq"] for e in events] == [1, 2, 3]
        assert client.output("holder") == b"late\n"


async def test_notifications_go_only_to_the_owning_session(server: ServerHandle) -> None:
    async with session(server.url) as owner, session(server.url) as other:
        await owner.run("mine", ["/bin/echo", "hi"])
        # the other session proves it is served after the process closed: nothing leaked
        await other.assert_usable()
        assert other.notifications == []


async def test_many_quick_processes_notification_order(server: ServerHandle) -> None:
    """Reference (oddity 8): notifications may precede the start response and come out of
    seq order. trio-exec (contract §2 #8): the start response first, then strictly
    increasing seq, ``process/closed`` last and exactly once. Both: one counter, no gaps."""
    count = 20
    async with session(server.url) as client:
        ids = {}
        for i in range(count):
            ids[f"echo-{i}"] = await client.send_request("process/start", {
                "processId": f"echo-{i}", "argv": ["/bin/echo", f"line {i}"], "cwd": "/",
                "env": {}, "tty": False,
            })
        for process_id, request_id in ids.items():
            assert (await client.reply_for(request_id)) == {
                "id": request_id, "result": {"processId": process_id}}
        with trio.fail_after(20):
            for process_id in ids:
                await client.wait_process_closed(process_id)
        for process_id, request_id in ids.items():
            events = client.events(process_id)
            methods = [e["method"] for e in events]
            seqs = [e["params"]["seq"] for e in events]
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), events
            assert methods.count("process/exited") == 1 and methods.count("process/closed") == 1
            assert client.output(process_id) == f"line {process_id[5:]}\n".encode()
            if server.is_reference:
                continue
            assert seqs == sorted(seqs), events
            assert methods[-1] == "process/closed", events
            positions = [
                i for i, item in enumerate(client.inbound)
                if (item.is_reply and item.msg["id"] == request_id)
                or (item.is_notification and item.msg["params"].get("processId") == process_id)
            ]
            first = client.inbound[positions[0]]
            assert first.is_reply, f"{process_id}: a notification preceded the start response"


async def test_output_chunks_are_standard_padded_base64(server: ServerHandle) -> None:
    payload = bytes(range(256)) * 3 + b"\xff\xfe"  # not UTF-8, length not a multiple of 3
    async with connect(server.url) as client:
        await client.handshake()
        await client.run("binary", ["/bin/sh", "-c", 'printf "%b" "$DATA"'],
                         env={"DATA": "".join(f"\\0{b:o}" for b in payload)})
        assert client.output("binary") == payload
        for event in client.events("binary"):
            if event["method"] == "process/output":
                assert len(event["params"]["chunk"]) % 4 == 0
