"""Tty mode (protocol.md §6, §7, §9, §11; contract §1 and §2 #11, #13)."""

from __future__ import annotations

import re

from support.expect import exit_members, signal_exit
from support.servers import ServerHandle
from support.wsclient import b64, session


async def test_tty_output_is_one_pty_stream_with_stderr_merged(server: ServerHandle) -> None:
    async with session(server.url) as client:
        output, exited = await client.run(
            "merged", ["/bin/sh", "-c", "echo out; echo err >&2"], tty=True)
        assert output == b"out\r\nerr\r\n"
        assert exited["exitCode"] == 0
        streams = {e["params"]["stream"] for e in client.events("merged")
                   if e["method"] == "process/output"}
        assert streams == {"pty"}
        read = (await client.read("merged"))["result"]
        assert {c["stream"] for c in read["chunks"]} == {"pty"}


async def test_tty_child_has_the_pty_as_stdio_and_a_24x80_size(server: ServerHandle) -> None:
    async with session(server.url) as client:
        output, _ = await client.run(
            "tty", ["/bin/sh", "-c", "tty; stty size; readlink /proc/$$/fd/0 /proc/$$/fd/1 "
                                     "/proc/$$/fd/2"], tty=True)
        lines = output.decode().split("\r\n")
        assert re.fullmatch(r"/dev/pts/\d+", lines[0]), output
        assert lines[1] == "24 80"
        assert lines[2:5] == [lines[0]] * 3
        assert lines[5:] == [""]


async def test_ctrl_c_raises_sigint_in_the_foreground_group(server: ServerHandle) -> None:
    script = 'trap "echo got-int; exit 7" INT; echo ready; while :; do sleep 1; done'
    async with session(server.url) as client:
        await client.start_ok("intr", ["/bin/sh", "-c", script], tty=True)
        await client.wait_output("intr", b"ready\r\n")
        reply = await client.request("process/write", {"processId": "intr", "chunk": b64("\x03")})
        assert reply["result"] == {"status": "accepted"}
        exited = await client.wait_exited("intr")
        assert exited["exitCode"] == 7
        await client.wait_output("intr", b"got-int")


async def test_ctrl_c_kills_a_program_without_a_handler(server: ServerHandle) -> None:
    """Reference: signal deaths of tty children report 1. trio-exec (contract §2 #11): -1 and
    ``"signal": "SIGINT"``."""
    script = "echo ready; exec sleep 30"
    async with session(server.url) as client:
        await client.start_ok("sleeper", ["/bin/sh", "-c", script], tty=True)
        await client.wait_output("sleeper", b"ready\r\n")
        await client.request("process/write", {"processId": "sleeper", "chunk": b64("\x03")})
        await client.wait_process_closed("sleeper")
        exited = await client.wait_exited("sleeper")
        assert exit_members(exited) == signal_exit(server, tty=True, signal="SIGINT")


async def test_tty_echo_is_on(server: ServerHandle) -> None:
    async with session(server.url) as client:
        await client.start_ok("echo", ["/bin/sh", "-c", "read line; echo got=$line"], tty=True)
        await client.request("process/write", {"processId": "echo", "chunk": b64("abc\n")})
        await client.wait_process_closed("echo")
        assert client.output("echo") == b"abc\r\ngot=abc\r\n"
