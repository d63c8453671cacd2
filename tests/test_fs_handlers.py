"""The `fs/*` handlers: params as the wire sends them in, result objects out, defaults applied.

Params are built with `structure_params` from wire JSON (as the dispatcher does), and results
are checked in their unstructured wire form, member order included.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio

from trio_exec.fs import LocalFilesystem
from trio_exec.proto import codec, methods
from trio_exec.proto.convert import structure_params, unstructure
from trio_exec.proto.errors import InternalError, InvalidRequest, NotFound, RpcError
from trio_exec.rpc.fs_methods import FS_HANDLERS, THREAD_CODEC_BYTES


@pytest.fixture
def fs(tmp_path: Path) -> LocalFilesystem:
    return LocalFilesystem(cwd=str(tmp_path), tmpdir=None)


async def call(fs: LocalFilesystem, method: str, params: dict[str, Any]) -> Any:
    """Structure `params` as the dispatcher does, run the handler, encode its result as the
    connection does and decode it as a client would: the result as it is on the wire."""
    typed = structure_params(params, methods.METHODS[method].params)
    with trio.fail_after(10):
        encoded = codec.encode_result(1, unstructure(await FS_HANDLERS[method](fs, typed)))
    wire = b"".join(encoded.parts) if isinstance(encoded, codec.Pieces) else encoded
    return orjson.loads(wire)["result"]


def test_every_fs_method_has_a_handler() -> None:
    fs_methods = {
        name for name, spec in methods.METHODS.items() if spec.service == methods.FILESYSTEM
    }
    # fs/watchMissing is session-scoped (its notification goes to the session), the file
    # handle methods connection-scoped (rpc/fs_methods.py, fs/handles.py): not here
    scoped = {
        methods.FS_WATCH_MISSING, methods.FS_OPEN, methods.FS_READ_BLOCK,
        methods.FS_WRITE_BLOCK, methods.FS_CLOSE,
    }
    assert set(FS_HANDLERS) == fs_methods - scoped
    assert len(FS_HANDLERS) == 9


async def test_round_trip_through_the_handlers(tmp_path: Path, fs: LocalFilesystem) -> None:
    d = str(tmp_path)
    assert await call(fs, methods.FS_CREATE_DIRECTORY, {"path": d + "/a/b"}) == {}
    payload = bytes(range(256))
    encoded = base64.b64encode(payload).decode()
    assert (
        await call(fs, methods.FS_WRITE_FILE, {"path": d + "/a/b/f", "dataBase64": encoded}) == {}
    )
    assert await call(fs, methods.FS_READ_FILE, {"path": d + "/a/b/f"}) == {"dataBase64": encoded}
    meta = await call(fs, methods.FS_GET_METADATA, {"path": d + "/a/b/f", "sandboxPolicy": None})
    assert list(meta) == ["isDirectory", "isFile", "createdAtMs", "modifiedAtMs"]
    assert (meta["isDirectory"], meta["isFile"], meta["createdAtMs"]) == (False, True, 0)
    assert await call(fs, methods.FS_READ_DIRECTORY, {"path": d + "/a/b"}) == {
        "entries": [{"fileName": "f", "isDirectory": False, "isFile": True}]
    }
    assert (
        await call(
            fs,
            methods.FS_COPY,
            {"sourcePath": d + "/a", "destinationPath": d + "/c", "recursive": True},
        )
        == {}
    )
    assert (tmp_path / "c" / "b" / "f").read_bytes() == payload
    assert await call(fs, methods.FS_REMOVE, {"path": d + "/a"}) == {}
    assert not (tmp_path / "a").exists()


async def test_defaults_of_absent_and_null_members(tmp_path: Path, fs: LocalFilesystem) -> None:
    d = str(tmp_path)
    # createDirectory: recursive defaults to true (absent or null)
    await call(fs, methods.FS_CREATE_DIRECTORY, {"path": d + "/x/y"})
    await call(fs, methods.FS_CREATE_DIRECTORY, {"path": d + "/p/q", "recursive": None})
    assert (tmp_path / "x" / "y").is_dir()
    assert (tmp_path / "p" / "q").is_dir()
    with pytest.raises(NotFound):
        await call(fs, methods.FS_CREATE_DIRECTORY, {"path": d + "/m/n", "recursive": False})
    # remove: recursive and force default to true
    await call(fs, methods.FS_REMOVE, {"path": d + "/x", "recursive": None, "force": None})
    assert not (tmp_path / "x").exists()
    await call(fs, methods.FS_REMOVE, {"path": d + "/missing"})
    with pytest.raises(NotFound):
        await call(fs, methods.FS_REMOVE, {"path": d + "/missing", "force": False})
    with pytest.raises(InternalError, match=r"^Directory not empty \(os error 39\)$"):
        await call(fs, methods.FS_REMOVE, {"path": d + "/p", "recursive": False})


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("!!", "Invalid symbol 33, offset 0."),
        ("aGVsbG8", "Invalid padding"),
        ("aGVsbG8==", "Invalid symbol 61, offset 7."),
        ("aGVsbG9=", "Invalid last symbol 57, offset 6."),
        ("é", "Invalid symbol 195, offset 0."),
    ],
)
async def test_write_file_bad_base64(
    tmp_path: Path, fs: LocalFilesystem, data: str, text: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        await call(fs, methods.FS_WRITE_FILE, {"path": str(tmp_path / "f"), "dataBase64": data})
    assert info.value.message == f"fs/writeFile requires valid base64 dataBase64: {text}"
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize(
    ("tail", "text"),
    [
        ("aGVsbG9=", "Invalid last symbol 57, offset {}."),
        ("aGVsbG8", "Invalid padding"),
        ("aGV!", "Invalid symbol 33, offset {}."),
    ],
)
async def test_write_file_bad_base64_in_a_large_payload(
    tmp_path: Path, fs: LocalFilesystem, tail: str, text: str
) -> None:
    """Large payloads take the thread path; the refusal texts are the same."""
    head = "AAAA" * (THREAD_CODEC_BYTES // 4)
    data = head + tail
    with pytest.raises(InvalidRequest) as info:
        await call(fs, methods.FS_WRITE_FILE, {"path": str(tmp_path / "f"), "dataBase64": data})
    offset = len(head) + (6 if "9=" in tail else 3)
    assert info.value.message == "fs/writeFile requires valid base64 dataBase64: " + text.format(
        offset
    )


async def test_bad_base64_is_reported_before_the_sandbox(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    with pytest.raises(InvalidRequest, match=r"^fs/writeFile requires valid base64"):
        await call(
            fs,
            methods.FS_WRITE_FILE,
            {
                "path": str(tmp_path / "f"),
                "dataBase64": "!!",
                "sandboxPolicy": {"type": "read-only"},
            },
        )


async def test_write_file_empty_payload(tmp_path: Path, fs: LocalFilesystem) -> None:
    assert (
        await call(fs, methods.FS_WRITE_FILE, {"path": str(tmp_path / "f"), "dataBase64": ""}) == {}
    )
    assert (tmp_path / "f").read_bytes() == b""


async def test_sandbox_policy_reaches_the_filesystem(tmp_path: Path, fs: LocalFilesystem) -> None:
    target = str(tmp_path / "f")
    with pytest.raises(InvalidRequest) as info:
        await call(
            fs,
            methods.FS_WRITE_FILE,
            {"path": target, "dataBase64": "", "sandboxPolicy": {"type": "read-only"}},
        )
    assert info.value.message == f"fs/write is not permitted for path {target}"


async def test_large_payloads_do_not_stall_the_event_loop(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    """Above `THREAD_CODEC_BYTES`, base64 runs in a worker thread with the GIL released, and a
    read's reply is encoded around its base64 (`codec.Pieces`), never through it."""
    size = 64 * 1024 * 1024
    assert size > THREAD_CODEC_BYTES
    big = tmp_path / "big"
    big.write_bytes(os.urandom(1024) * (size // 1024))
    gaps: list[float] = []
    done = trio.Event()

    async def ticker() -> None:
        last = trio.current_time()
        while not done.is_set():
            await trio.sleep(0.002)
            now = trio.current_time()
            gaps.append(now - last)
            last = now

    async def encoded_read() -> codec.Encoded:
        typed = structure_params({"path": str(big)}, methods.METHODS[methods.FS_READ_FILE].params)
        return codec.encode_result(1, unstructure(await FS_HANDLERS[methods.FS_READ_FILE](fs, typed)))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            encoded = await encoded_read()
            done.set()
        assert isinstance(encoded, codec.Pieces)
        head, text, tail = encoded.parts
        assert (head, tail) == (b'{"id":1,"result":{"dataBase64":"', b'"}}')
        payload = text.decode()  # the client's side of the wire, outside the measured window
        done = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            await call(
                fs, methods.FS_WRITE_FILE, {"path": str(tmp_path / "back"), "dataBase64": payload}
            )
            done.set()
    assert (tmp_path / "back").read_bytes() == big.read_bytes()
    assert max(gaps) < 0.1, max(gaps)


async def test_errors_are_rpc_errors(tmp_path: Path, fs: LocalFilesystem) -> None:
    with pytest.raises(RpcError) as info:
        await call(fs, methods.FS_READ_FILE, {"path": str(tmp_path / "missing")})
    assert info.value.to_wire() == {
        "code": -32004,
        "message": "No such file or directory (os error 2)",
    }
