"""``process/write`` (protocol.md §9; contract §1 and §2 #12, #20)."""

from __future__ import annotations

import pytest
from support.expect import invalid_params
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import WireClient, b64, session


async def write(client: WireClient, process_id: str, data: bytes | str) -> object:
    reply = await client.request("process/write", {"processId": process_id, "chunk": b64(data)})
    assert list(reply) == ["id", "result"], reply
    return reply["result"]


async def test_write_to_a_tty_process_is_accepted_and_reaches_it(server: ServerHandle) -> None:
    async with session(server.url) as client:
        await client.start_ok("cat", ["/bin/cat"], tty=True)
        assert await write(client, "cat", "hello\n") == {"status": "accepted"}
        # echo on: the line comes back twice, once echoed, once from cat
        await client.wait_output("cat", b"hello\r\nhello\r\n")
        assert await write(client, "cat", "") == {"status": "accepted"}
        assert await write(client, "cat", "\x04") == {"status": "accepted"}  # ^D: EOF
        exited = await client.wait_exited("cat")
        assert exited["exitCode"] == 0


async def test_large_write_to_a_tty_process_is_accepted(server: ServerHandle) -> None:
    data = (b"x" * 99 + b"\n") * 2000
    async with session(server.url) as client:
        await client.start_ok("sink", ["/bin/sh", "-c", "stty -echo; echo ready; wc -c"],
                              tty=True)
        await client.wait_output("sink", b"ready\r\n")
        assert await write(client, "sink", data) == {"status": "accepted"}
        assert await write(client, "sink", "\x04") == {"status": "accepted"}
        await client.wait_process_closed("sink", within=20)
        assert client.output("sink").split()[-1] == str(len(data)).encode()


async def test_write_to_a_pipe_process_is_stdin_closed(server: ServerHandle, gates: Gates) -> None:
    async with session(server.url) as client:
        await client.start_ok("pipe", ["/bin/sh", "-c", gates.wait("end")])
        assert await write(client, "pipe", "data") == {"status": "stdinClosed"}
        assert await write(client, "pipe", "") == {"status": "stdinClosed"}
        gates.open("end")
        await client.wait_process_closed("pipe")
        assert await write(client, "pipe", "data") == {"status": "stdinClosed"}


async def test_write_with_pipe_stdin(server: ServerHandle) -> None:
    """Reference: ``pipeStdin`` is ignored, so ``stdinClosed`` and cat sees EOF at once.
    trio-exec (contract §2 #12): ``accepted`` and the bytes reach the child."""
    async with session(server.url) as client:
        await client.start_ok("piped", ["/bin/cat"], pipeStdin=True)
        status = await write(client, "piped", "through the pipe\n")
        if server.is_reference:
            assert status == {"status": "stdinClosed"}
            await client.wait_process_closed("piped")
            assert client.output("piped") == b""
            return
        assert status == {"status": "accepted"}
        await client.wait_output("piped", b"through the pipe\n")
        assert (await client.result("process/terminate", {"processId": "piped"})) == {
            "running": True}
        await client.wait_process_closed("piped")


async def test_write_to_an_unknown_process(server: ServerHandle) -> None:
    async with session(server.url) as client:
        for process_id in ["never-started", ""]:
            assert await write(client, process_id, "x") == {"status": "unknownProcess"}


async def test_write_to_an_exited_tty_process(server: ServerHandle) -> None:
    """Reference (oddity 20): still ``accepted``. trio-exec (contract §2 #20): ``stdinClosed``."""
    async with session(server.url) as client:
        await client.run("gone", ["/bin/true"], tty=True)
        expected = "accepted" if server.is_reference else "stdinClosed"
        assert await write(client, "gone", "x") == {"status": expected}


@pytest.mark.parametrize("chunk,text", [
    ("!", "Invalid symbol 33, offset 0."),
    ("aGk", "Invalid padding"),
    ("aGVs\nbG8=", "Invalid symbol 10, offset 4."),
    ("aGVs bG8=", "Invalid symbol 32, offset 4."),
], ids=["bad-symbol", "missing-padding", "newline", "space"])
async def test_invalid_base64_chunk_is_refused_with_the_decoder_text(
    server: ServerHandle, chunk: str, text: str
) -> None:
    async with session(server.url) as client:
        await client.start_ok("b64", ["/bin/cat"], tty=True)
        reply = await client.request("process/write", {"processId": "b64", "chunk": chunk})
        assert reply == invalid_params(text, reply["id"])
        await client.result("process/terminate", {"processId": "b64"})
        await client.wait_process_closed("b64")
