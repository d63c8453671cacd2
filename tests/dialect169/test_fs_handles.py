"""`fs/open` / `fs/readBlock` / `fs/writeBlock` / `fs/close` (0.169 only), differentially:
the same requests to trio-exec and to the codex 0.169.0 exec-server must get the same replies
(trio_exec/fs/handles.py states the rules). Plus: handles die with their connection, and
trio-exec's descriptors with them (no fd leak)."""

from __future__ import annotations

import base64
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.servers import ServerHandle
from support.wsclient import WireClient, connect, session

from .test_dialect import call, uri


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def open_(client: WireClient, handle: str, path: Path, **extra: Any) -> Any:
    return await call(client, "fs/open", {"handleId": handle, "path": uri(path), **extra})


async def read(client: WireClient, handle: str, offset: int, length: int) -> Any:
    return await call(client, "fs/readBlock", {"handleId": handle, "offset": offset, "len": length})


async def write(client: WireClient, handle: str, offset: int, data: bytes) -> Any:
    return await call(
        client, "fs/writeBlock", {"handleId": handle, "offset": offset, "chunk": b64(data)})


def unknown(handle: str) -> dict[str, Any]:
    return {"code": -32004, "message": f"unknown file handle `{handle}`"}


async def test_read_blocks(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    async with session(server169.url) as client:
        assert (await open_(client, "h1", tmp_path / "f"))["result"] == {"handleId": "h1"}
        assert (await read(client, "h1", 0, 2))["result"] == {"chunk": b64(b"ab"), "eof": False}
        assert (await read(client, "h1", 0, 3))["result"] == {"chunk": b64(b"abc"), "eof": False}
        assert (await read(client, "h1", 0, 4))["result"] == {"chunk": b64(b"abc"), "eof": True}
        assert (await read(client, "h1", 1, 100))["result"] == {"chunk": b64(b"bc"), "eof": True}
        assert (await read(client, "h1", 3, 1))["result"] == {"chunk": "", "eof": True}
        assert (await read(client, "h1", 100, 1))["result"] == {"chunk": "", "eof": True}
        big = await read(client, "h1", 0, 1048576)
        assert big["result"] == {"chunk": b64(b"abc"), "eof": True}
        for bad_len in (0, 1048577):
            reply = await read(client, "h1", 0, bad_len)
            assert reply["error"] == {
                "code": -32600, "message": "file read block length must be between 1 and 1048576"}
        # a refused length leaves the handle open
        assert (await read(client, "h1", 0, 1))["result"] == {"chunk": b64(b"a"), "eof": False}
        assert (await call(client, "fs/close", {"handleId": "h1"}))["result"] == {}
        assert (await call(client, "fs/close", {"handleId": "h1"}))["result"] == {}
        assert (await call(client, "fs/close", {"handleId": "never"}))["result"] == {}
        assert (await read(client, "h1", 0, 1))["error"] == unknown("h1")


async def test_failed_read_closes_the_handle(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    async with session(server169.url) as client:
        await open_(client, "k", tmp_path / "f")
        reply = await read(client, "k", 2**63, 3)
        assert reply["error"] == {"code": -32600, "message": "Invalid argument (os error 22)"}
        assert (await read(client, "k", 0, 1))["error"] == unknown("k")
        await open_(client, "w", tmp_path / "out", mode="replace")
        reply = await read(client, "w", 0, 1)
        assert reply["error"] == {"code": -32603, "message": "Bad file descriptor (os error 9)"}
        assert (await write(client, "w", 0, b"x"))["error"] == unknown("w")


async def test_write_blocks(server169: ServerHandle, tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"original-content")
    async with session(server169.url) as client:
        assert (await open_(client, "w", target, mode="replace"))["result"] == {"handleId": "w"}
        assert target.read_bytes() == b""  # truncated in place at open
        assert (await write(client, "w", 0, b"hello"))["result"] == {}
        assert (await write(client, "w", 10, b"xy"))["result"] == {}
        assert (await write(client, "w", 3, b"ZZ"))["result"] == {}
        assert target.read_bytes() == b"helZZ\0\0\0\0\0xy"
        too_far = await write(client, "w", 2**63 - 1, b"hi")
        assert too_far["error"] == {
            "code": -32600,
            "message": "file write range exceeds the signed 64-bit file offset limit"}
        empty = await call(client, "fs/writeBlock", {"handleId": "w", "offset": 0, "chunk": ""})
        assert empty["error"] == {
            "code": -32600, "message": "file write block length must be between 1 and 1048576"}
        assert (await write(client, "w", 0, b"H"))["result"] == {}  # still open
        assert (await call(client, "fs/close", {"handleId": "w"}))["result"] == {}
        assert target.read_bytes() == b"HelZZ\0\0\0\0\0xy"
        # a new file (0666 & ~umask), written through a handle
        assert (await open_(client, "n", tmp_path / "new", mode="replace"))["result"]
        assert (await write(client, "n", 0, b"data"))["result"] == {}
        await call(client, "fs/close", {"handleId": "n"})
        assert (tmp_path / "new").read_bytes() == b"data"
        umask = os.umask(0)
        os.umask(umask)
        assert (tmp_path / "new").stat().st_mode & 0o777 == 0o666 & ~umask
        # writing a read handle fails but leaves it open
        await open_(client, "r", target)
        reply = await write(client, "r", 0, b"x")
        assert reply["error"] == {"code": -32603, "message": "Bad file descriptor (os error 9)"}
        assert (await read(client, "r", 0, 3))["result"] == {"chunk": b64(b"Hel"), "eof": False}
        assert (await write(client, "zz", 0, b"x"))["error"] == unknown("zz")


async def test_open_refusals(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "d").mkdir()
    async with session(server169.url) as client:
        await open_(client, "h1", tmp_path / "f")
        assert (await open_(client, "h1", tmp_path / "f"))["error"] == {
            "code": -32600, "message": "file handle `h1` already exists"}
        assert (await open_(client, "x" * 32, tmp_path / "f"))["result"] == {"handleId": "x" * 32}
        assert (await open_(client, "é" * 17, tmp_path / "f"))["error"] == {
            "code": -32600, "message": "file handle ID must not exceed 32 bytes"}
        assert (await open_(client, "", tmp_path / "f"))["result"] == {"handleId": ""}
        assert (await open_(client, "m", tmp_path / "nope"))["error"] == {
            "code": -32004, "message": "No such file or directory (os error 2)"}
        assert (await open_(client, "m", tmp_path / "d"))["error"] == {
            "code": -32600, "message": f"path `{tmp_path / 'd'}` is not a file"}
        assert (await open_(client, "m", tmp_path / "d", mode="replace"))["error"] == {
            "code": -32603, "message": "Is a directory (os error 21)"}
        assert (await open_(client, "m", tmp_path / "no/new", mode="replace"))["error"] == {
            "code": -32004, "message": "No such file or directory (os error 2)"}
        assert (await open_(client, "s", tmp_path / "f", mode="read", sandbox=None))["result"]


@pytest.mark.parametrize(("method", "params", "message"), [
    ("fs/open", {"handleId": "a", "path": "file:///x", "mode": "write"},
     "unknown variant `write`, expected `read` or `replace`"),
    ("fs/open", {"handleId": "a", "path": "file:///x", "mode": None},
     "invalid type: null, expected string or map"),
    ("fs/open", {"handleId": "a", "path": "file:///x", "mode": {"replace": {}}},
     "invalid type: map, expected unit"),
    ("fs/readBlock", {"handleId": "a"}, "missing field `offset`"),
    ("fs/writeBlock", {"handleId": "a", "offset": 0}, "missing field `chunk`"),
    ("fs/writeBlock", {"handleId": "a", "offset": 0, "chunk": "!!"},
     "Invalid symbol 33, offset 0."),
    ("fs/writeBlock", {"handleId": "a", "offset": 0, "chunk": "aGk"}, "Invalid padding"),
    ("fs/close", {}, "missing field `handleId`"),
])
async def test_params_refusals(
    server169: ServerHandle, method: str, params: Any, message: str
) -> None:
    async with session(server169.url) as client:
        reply = await call(client, method, params)
        assert reply["error"] == {"code": -32602, "message": message}


async def test_at_most_128_handles(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    async with session(server169.url) as client:
        for i in range(128):
            assert (await open_(client, f"h{i}", tmp_path / "f"))["result"]
        assert (await open_(client, "one-more", tmp_path / "f"))["error"] == {
            "code": -32600, "message": "at most 128 file handles may be open per connection"}
        await call(client, "fs/close", {"handleId": "h0"})
        assert (await open_(client, "one-more", tmp_path / "f"))["result"]


async def test_handles_end_with_their_connection(
    server169: ServerHandle, tmp_path: Path
) -> None:
    """A resumed session does not get the handles back (the reference scopes them to the
    connection, and so does trio-exec)."""
    (tmp_path / "f").write_bytes(b"abc")
    async with connect(server169.url) as client:
        sid = await client.handshake()
        await open_(client, "k", tmp_path / "f")
    async with connect(server169.url) as client:
        assert await client.handshake(resumeSessionId=sid) == sid
        assert (await read(client, "k", 0, 1))["error"] == unknown("k")
        assert (await open_(client, "k", tmp_path / "f"))["result"] == {"handleId": "k"}


def open_fds(pid: int, under: Path) -> list[str]:
    fd_dir = Path(f"/proc/{pid}/fd")
    found = []
    for fd in fd_dir.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(under)):
            found.append(target)
    return found


async def test_no_descriptor_leak(server169: ServerHandle, tmp_path: Path) -> None:
    """Descriptors are released by `fs/close`, by a failed read, and by the end of the
    connection (with the session still alive, detached)."""
    for name in ("a", "b", "c"):
        (tmp_path / name).write_bytes(b"abc")
    async with connect(server169.url) as client:
        await client.handshake()
        for name in ("a", "b", "c"):
            await open_(client, name, tmp_path / name)
        await open_(client, "w", tmp_path / "w", mode="replace")
        assert len(open_fds(server169.pid, tmp_path)) == 4
        await call(client, "fs/close", {"handleId": "a"})
        await read(client, "b", 2**63, 1)
        assert sorted(open_fds(server169.pid, tmp_path)) == [
            str(tmp_path / "c"), str(tmp_path / "w")]
    for _ in range(250):  # the server notices the close asynchronously
        if not open_fds(server169.pid, tmp_path):
            break
        await trio.sleep(0.02)
    assert open_fds(server169.pid, tmp_path) == []


async def test_capability_flags(server169: ServerHandle) -> None:
    """Both flags that announce these methods are on (trio-exec: proven by this module)."""
    async with session(server169.url) as client:
        capabilities = (await call(client, "environment/info", None))["result"]["capabilities"]
        assert capabilities["fileWriteStreaming"] is True
        assert capabilities["sandboxedFileStreaming"] is True


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside every writable root of the sandbox (not under /tmp)."""
    path = Path(f"/var/tmp/trio-exec-fsopen-{os.getpid()}")
    path.mkdir(exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_sandboxed_open(server169: ServerHandle, tmp_path: Path, outside: Path) -> None:
    """The `sandbox` context is enforced at open: a read-only context refuses `replace`, as
    `fs/writeFile` does; reading stays allowed (trio-exec serves `sandboxedFileStreaming`)."""
    from .test_sandbox import sandbox

    work = (tmp_path / "work").resolve()
    (work / ".git").mkdir(parents=True)
    (work / "f").write_bytes(b"abc")
    async with session(server169.url) as client:
        writable = sandbox(work, write=True)
        read_only = sandbox(work, write=False)
        assert (await open_(client, "r", work / "f", sandbox=read_only))["result"]
        assert (await read(client, "r", 0, 3))["result"] == {"chunk": b64(b"abc"), "eof": False}
        assert (await open_(client, "w", work / "g", sandbox=writable, mode="replace"))["result"]
        assert (await write(client, "w", 0, b"x"))["result"] == {}
        refused = await open_(client, "x", work / "h", sandbox=read_only, mode="replace")
        expected = await call(client, "fs/writeFile", {
            "path": uri(work / "h"), "dataBase64": "", "sandbox": read_only})
        assert "error" in refused
        assert refused["error"] == expected["error"]
        assert not (work / "h").exists()
        denied = await open_(client, "y", outside / "z", sandbox=writable, mode="replace")
        expected = await call(client, "fs/writeFile", {
            "path": uri(outside / "z"), "dataBase64": "", "sandbox": writable})
        assert "error" in denied, denied
        assert denied["error"] == expected["error"] == {
            "code": -32603, "message": "Read-only file system (os error 30)"}
        assert not (outside / "z").exists()
