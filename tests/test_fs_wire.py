"""`fs/*` on the wire, differentially: the same requests against trio-exec and the codex 0.120.0
reference, with the exact replies (codes, texts, member order) protocol.md section 12 gives.

Both servers run from a cwd outside /tmp, with `$TMPDIR` pointing to a directory of their own,
so the implicit writable roots of `workspace-write` can be told apart. Where trio-exec
deliberately differs (contract section 2: #15, and the two fs fixes in `trio_exec.fs`), the test
states both behaviours side by side, keyed on `server.kind`.
"""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
from support import servers
from support.servers import REFERENCE, TRIO_EXEC, ServerHandle
from support.wsclient import WireClient, connect

LIMIT = 536_870_912
ENOENT = {"code": -32004, "message": "No such file or directory (os error 2)"}
EISDIR = {"code": -32603, "message": "Is a directory (os error 21)"}
ENOTDIR = {"code": -32603, "message": "Not a directory (os error 20)"}
EEXIST = {"code": -32603, "message": "File exists (os error 17)"}
ENOTEMPTY = {"code": -32603, "message": "Directory not empty (os error 39)"}
ELOOP = {"code": -32603, "message": "Symbolic link loop (os error 40)"}
RELATIVE = {"code": -32602, "message": "AbsolutePathBuf deserialized without a base path"}
OK: dict[str, Any] = {"result": {}}


def invalid(message: str) -> dict[str, Any]:
    return {"error": {"code": -32600, "message": message}}


def err(error: dict[str, Any]) -> dict[str, Any]:
    return {"error": error}


@attrs.frozen
class FsServer:
    handle: ServerHandle
    base: Path  # holds cwd/, tmpd/ and one work directory per test

    @property
    def cwd(self) -> Path:
        return self.base / "cwd"

    @property
    def tmpdir(self) -> Path:
        return self.base / "tmpd"

    @property
    def is_reference(self) -> bool:
        return self.handle.is_reference


@pytest.fixture(
    scope="module",
    params=[TRIO_EXEC, pytest.param(REFERENCE, marks=pytest.mark.reference)],
)
def fs_server(request: pytest.FixtureRequest) -> Iterator[FsServer]:
    kind = request.param
    if kind == REFERENCE and not servers.reference_binary().exists():
        if servers.skip_reference():
            pytest.skip("reference server skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(servers.missing_reference_message(), pytrace=False)
    base = Path(tempfile.mkdtemp(prefix=f"fs-wire-{kind}-", dir="/var/tmp"))
    (base / "cwd").mkdir()
    (base / "tmpd").mkdir()
    env = dict(os.environ, TMPDIR=str(base / "tmpd"))
    handle = servers.launch(kind, cwd=base / "cwd", env=env)
    try:
        yield FsServer(handle, base)
    finally:
        handle.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def work(fs_server: FsServer) -> Path:
    """A fresh directory for one test: `f` (hello), `d/x`, `link -> f`."""
    root = fs_server.base / f"work-{uuid.uuid4().hex[:8]}"
    (root / "d").mkdir(parents=True)
    (root / "f").write_bytes(b"hello")
    (root / "d" / "x").write_bytes(b"x")
    (root / "link").symlink_to("f")
    return root


@pytest.fixture
async def client(fs_server: FsServer) -> AsyncIterator[WireClient]:
    async with connect(fs_server.handle.url) as c:
        await c.handshake()
        yield c


async def call(client: WireClient, method: str, params: Any) -> dict[str, Any]:
    """The reply to one request, without its id (checked to be echoed)."""
    id = client.next_id()
    reply = await client.request(method, params, id=id)
    assert reply.pop("id") == id
    return reply


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- fs/readFile -----------------------------------------------------------------------------


async def test_read_file(client: WireClient, work: Path) -> None:
    w = str(work)
    assert await call(client, "fs/readFile", {"path": w + "/f"}) == {
        "result": {"dataBase64": b64(b"hello")}
    }
    assert await call(client, "fs/readFile", {"path": w + "/link"}) == {
        "result": {"dataBase64": b64(b"hello")}
    }
    assert await call(client, "fs/readFile", {"path": w + "/d/../f"}) == {
        "result": {"dataBase64": b64(b"hello")}
    }
    assert await call(client, "fs/readFile", {"path": "/dev/null"}) == {
        "result": {"dataBase64": ""}
    }
    assert await call(client, "fs/readFile", {"path": w}) == err(EISDIR)
    assert await call(client, "fs/readFile", {"path": w + "/missing"}) == err(ENOENT)
    assert await call(client, "fs/readFile", {"path": w + "/f/x"}) == err(ENOTDIR)
    assert await call(client, "fs/readFile", {"path": "f"}) == err(RELATIVE)


async def test_read_file_size_limit(client: WireClient, work: Path) -> None:
    with open(work / "big", "wb") as file:  # noqa: ASYNC230 - test setup, a truncate
        file.truncate(LIMIT + 1)
    assert await call(client, "fs/readFile", {"path": str(work / "big")}) == invalid(
        f"file is too large to read: limit is {LIMIT} bytes"
    )


async def test_large_files_in_one_message(fs_server: FsServer, work: Path) -> None:
    """A 32 MiB file reads back byte for byte (trio-exec splices its reply around the base64);
    a 32 MiB `fs/writeFile` in one message is written by trio-exec, while the reference drops
    the connection (contract: trio-exec takes messages up to 64 MiB)."""
    data = os.urandom(32 * 1024 * 1024)
    (work / "big").write_bytes(data)
    async with connect(fs_server.handle.url) as client:
        await client.handshake()
        reply = await call(client, "fs/readFile", {"path": str(work / "big")})
        assert base64.b64decode(reply["result"]["dataBase64"]) == data
    async with connect(fs_server.handle.url) as client:
        await client.handshake()
        request = {"path": str(work / "copy"), "dataBase64": b64(data)}
        if fs_server.is_reference:
            await client.send_raw(orjson.dumps(
                {"id": 1, "method": "fs/writeFile", "params": request}).decode(), may_close=True)
            assert (await client.wait_closed(within=30)).code == 1006
            assert not (work / "copy").exists()
        else:
            assert await call(client, "fs/writeFile", request) == OK
            assert (work / "copy").read_bytes() == data


# --- fs/writeFile ----------------------------------------------------------------------------


async def test_write_file(client: WireClient, work: Path) -> None:
    w = str(work)
    assert (
        await call(client, "fs/writeFile", {"path": w + "/new", "dataBase64": b64(b"\x00\xff")})
        == OK
    )
    assert (work / "new").read_bytes() == b"\x00\xff"
    assert (work / "new").stat().st_mode & 0o777 == 0o644
    assert await call(client, "fs/writeFile", {"path": w + "/f", "dataBase64": ""}) == OK
    assert (work / "f").read_bytes() == b""
    assert await call(client, "fs/writeFile", {"path": w + "/no/new", "dataBase64": ""}) == err(
        ENOENT
    )
    assert await call(client, "fs/writeFile", {"path": w + "/d", "dataBase64": ""}) == err(EISDIR)
    assert await call(client, "fs/writeFile", {"path": w + "/x"}) == err(
        {"code": -32602, "message": "missing field `dataBase64`"}
    )


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("!!", "Invalid symbol 33, offset 0."),
        ("aGVsbG8", "Invalid padding"),
        ("aGVsbG9=", "Invalid last symbol 57, offset 6."),
        ("aG Vs", "Invalid symbol 32, offset 2."),
    ],
)
async def test_write_file_bad_base64(client: WireClient, work: Path, data: str, text: str) -> None:
    params = {"path": str(work / "b"), "dataBase64": data, "sandboxPolicy": {"type": "read-only"}}
    assert await call(client, "fs/writeFile", params) == invalid(
        f"fs/writeFile requires valid base64 dataBase64: {text}"
    )


LARGE = 3 * 64 * 1024  # whole base64 quanta, so a tail can follow


@pytest.mark.parametrize(
    ("tail", "text"),
    [
        ("aGVsbG8=", None),
        ("aGVsbG9=", "Invalid last symbol 57, offset {}."),
        ("aGVsbG8", "Invalid padding"),
        ("aGV!", "Invalid symbol 33, offset {}."),
    ],
)
async def test_write_file_large_payload(
    client: WireClient, work: Path, tail: str, text: str | None
) -> None:
    """A payload large enough for the daemon to take it straight out of the frame: written
    byte for byte, or refused with the same text as a small one."""
    data = os.urandom(LARGE)
    params = {"path": str(work / "big"), "dataBase64": b64(data) + tail}
    if text is None:
        assert await call(client, "fs/writeFile", params) == OK
        assert (work / "big").read_bytes() == data + b"hello"
        return
    offset = len(b64(data)) + (6 if "9=" in tail else 3)
    assert await call(client, "fs/writeFile", params) == invalid(
        f"fs/writeFile requires valid base64 dataBase64: {text.format(offset)}"
    )
    assert not (work / "big").exists()


async def test_write_file_large_payload_after_escaped_members(
    client: WireClient, work: Path
) -> None:
    """Quotes and backslashes in the members before the payload (a path with a quote)."""
    data = os.urandom(LARGE)
    target = work / 'a "quoted\\ name'
    params = {"path": str(target), "dataBase64": b64(data)}
    assert await call(client, "fs/writeFile", params) == OK
    assert target.read_bytes() == data


# --- fs/createDirectory ----------------------------------------------------------------------


async def test_create_directory(client: WireClient, work: Path) -> None:
    w = str(work)
    assert await call(client, "fs/createDirectory", {"path": w + "/a/b/c"}) == OK
    assert (work / "a" / "b" / "c").is_dir()
    assert await call(client, "fs/createDirectory", {"path": w + "/a/b", "recursive": None}) == OK
    assert await call(client, "fs/createDirectory", {"path": w + "/one", "recursive": False}) == OK
    assert await call(
        client, "fs/createDirectory", {"path": w + "/one", "recursive": False}
    ) == err(EEXIST)
    assert await call(
        client, "fs/createDirectory", {"path": w + "/m/n", "recursive": False}
    ) == err(ENOENT)
    assert await call(client, "fs/createDirectory", {"path": w + "/f"}) == err(EEXIST)
    assert await call(client, "fs/createDirectory", {"path": w + "/f", "recursive": False}) == err(
        EEXIST
    )
    assert await call(client, "fs/createDirectory", {"path": w + "/f/sub"}) == err(ENOTDIR)


# --- fs/getMetadata --------------------------------------------------------------------------


async def test_get_metadata(client: WireClient, work: Path) -> None:
    w = str(work)
    os.utime(work / "f", ns=(0, 1_700_000_000_999_999_999))
    os.mkfifo(work / "fifo")
    (work / "old").write_bytes(b"")
    os.utime(work / "old", ns=(0, -315_619_200_000_000_000))
    (work / "dang").symlink_to("nowhere")
    reply = await call(client, "fs/getMetadata", {"path": w + "/link", "sandboxPolicy": None})
    assert reply == {
        "result": {
            "isDirectory": False,
            "isFile": True,
            "createdAtMs": 0,
            "modifiedAtMs": 1_700_000_000_999,
        }
    }
    assert list(reply["result"]) == ["isDirectory", "isFile", "createdAtMs", "modifiedAtMs"]
    directory = (await call(client, "fs/getMetadata", {"path": w + "/d"}))["result"]
    assert (directory["isDirectory"], directory["isFile"], directory["createdAtMs"]) == (
        True,
        False,
        0,
    )
    for special in (w + "/fifo", "/dev/null"):
        result = (await call(client, "fs/getMetadata", {"path": special}))["result"]
        assert (result["isDirectory"], result["isFile"]) == (False, False)
    assert (await call(client, "fs/getMetadata", {"path": w + "/old"}))["result"][
        "modifiedAtMs"
    ] == 0
    assert await call(client, "fs/getMetadata", {"path": w + "/dang"}) == err(ENOENT)


# --- fs/readDirectory ------------------------------------------------------------------------


async def test_read_directory(client: WireClient, work: Path) -> None:
    os.mkfifo(work / "fifo")
    (work / "dirlink").symlink_to("d")
    os.close(os.open(os.fsencode(work) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY))
    reply = await call(client, "fs/readDirectory", {"path": str(work)})
    kinds = {
        "f": (False, True),
        "d": (True, False),
        "link": (False, True),
        "dirlink": (True, False),
        "fifo": (False, False),
        "bad\ufffdname": (False, True),
    }
    order = [name.decode("utf-8", "replace") for name in os.listdir(os.fsencode(work))]
    assert reply == {
        "result": {
            "entries": [
                {"fileName": n, "isDirectory": kinds[n][0], "isFile": kinds[n][1]} for n in order
            ]
        }
    }
    assert await call(client, "fs/readDirectory", {"path": str(work / "f")}) == err(ENOTDIR)
    assert await call(client, "fs/readDirectory", {"path": str(work / "missing")}) == err(ENOENT)


@pytest.mark.parametrize(("target", "reference_error"), [("nowhere", ENOENT), ("self", ELOOP)])
async def test_read_directory_with_an_unreadable_entry(
    client: WireClient,
    fs_server: FsServer,
    work: Path,
    target: str,
    reference_error: dict[str, Any],
) -> None:
    """Contract fix #15: the reference fails the whole call; trio-exec lists the entry."""
    (work / "d" / "self").symlink_to(target)
    reply = await call(client, "fs/readDirectory", {"path": str(work / "d")})
    if fs_server.is_reference:
        assert reply == err(reference_error)
    else:
        entries = sorted(reply["result"]["entries"], key=lambda e: e["fileName"])
        assert entries == [
            {"fileName": "self", "isDirectory": False, "isFile": False},
            {"fileName": "x", "isDirectory": False, "isFile": True},
        ]


# --- fs/remove -------------------------------------------------------------------------------


async def test_remove(client: WireClient, work: Path) -> None:
    w = str(work)
    (work / "empty").mkdir()
    assert await call(client, "fs/remove", {"path": w + "/link"}) == OK
    assert (work / "f").exists()
    assert await call(client, "fs/remove", {"path": w + "/d", "recursive": False}) == err(ENOTEMPTY)
    assert await call(client, "fs/remove", {"path": w + "/empty", "recursive": False}) == OK
    assert await call(client, "fs/remove", {"path": w + "/missing"}) == OK
    assert await call(client, "fs/remove", {"path": w + "/missing", "force": None}) == OK
    assert await call(client, "fs/remove", {"path": w + "/missing", "force": False}) == err(ENOENT)
    assert await call(client, "fs/remove", {"path": w + "/f/x"}) == err(ENOTDIR)
    assert (
        await call(client, "fs/remove", {"path": w + "/d", "recursive": None, "force": None}) == OK
    )
    assert sorted(os.listdir(work)) == ["f"]


# --- fs/copy ---------------------------------------------------------------------------------


async def test_copy(client: WireClient, work: Path) -> None:
    w = str(work)
    (work / "f").chmod(0o741)
    (work / "d" / "lx").symlink_to("x")
    os.mkfifo(work / "d" / "fifo")

    async def copy(src: str, dst: str, recursive: Any = False) -> dict[str, Any]:
        return await call(
            client, "fs/copy", {"sourcePath": src, "destinationPath": dst, "recursive": recursive}
        )

    assert await copy(w + "/f", w + "/f2") == OK
    assert (work / "f2").read_bytes() == b"hello"
    assert (work / "f2").stat().st_mode & 0o777 == 0o741
    assert await copy(w + "/link", w + "/link2") == OK
    assert os.readlink(work / "link2") == "f"
    assert await copy(w + "/d", w + "/new/parents/d2", True) == OK
    assert sorted(os.listdir(work / "new" / "parents" / "d2")) == ["lx", "x"]  # FIFO skipped
    assert os.readlink(work / "new" / "parents" / "d2" / "lx") == "x"
    assert await copy(w + "/f", w + "/d") == err(EISDIR)
    assert await copy(w + "/d", w + "/f", True) == err(EEXIST)
    assert await copy(w + "/link", w + "/f2") == err(EEXIST)
    assert await copy(w + "/missing", w + "/z") == err(ENOENT)
    assert await copy(w + "/f", w + "/no/z") == err(ENOENT)
    assert await copy(w + "/d", w + "/z") == invalid(
        "fs/copy requires recursive: true when sourcePath is a directory"
    )
    assert await copy(w + "/d", w + "/d/sub", True) == invalid(
        "fs/copy cannot copy a directory to itself or one of its descendants"
    )
    assert await copy(w + "/d", w + "/d", True) == invalid(
        "fs/copy cannot copy a directory to itself or one of its descendants"
    )
    assert await copy(w + "/d/fifo", w + "/z") == invalid(
        "fs/copy only supports regular files, directories, and symlinks"
    )
    assert await call(
        client, "fs/copy", {"sourcePath": w + "/f", "destinationPath": w + "/z"}
    ) == err({"code": -32602, "message": "missing field `recursive`"})
    assert await copy(w + "/f", w + "/z", None) == err(
        {"code": -32602, "message": "invalid type: null, expected a boolean"}
    )


async def test_copy_file_onto_itself(client: WireClient, fs_server: FsServer, work: Path) -> None:
    """The reference truncates the file; trio-exec leaves it alone (a fix)."""
    params = {
        "sourcePath": str(work / "f"),
        "destinationPath": str(work / "link"),
        "recursive": False,
    }
    assert await call(client, "fs/copy", params) == OK
    assert (work / "f").read_bytes() == (b"" if fs_server.is_reference else b"hello")


# --- sandboxPolicy ---------------------------------------------------------------------------


async def test_sandbox_enforcement(client: WireClient, fs_server: FsServer, work: Path) -> None:
    w = str(work)
    outside = fs_server.base / f"outside-{uuid.uuid4().hex[:8]}"
    outside.mkdir()
    (outside / "g").write_bytes(b"g")
    (work / "esc").symlink_to(outside)
    o, cwd, tmpd = str(outside), str(fs_server.cwd), str(fs_server.tmpdir)
    ww = {"type": "workspace-write", "writable_roots": [w]}
    restricted = {"type": "read-only", "access": {"type": "restricted", "readable_roots": [w]}}

    def denied(access: str, path: str) -> dict[str, Any]:
        return invalid(f"fs/{access} is not permitted for path {path}")

    async def write(path: str, policy: Any) -> dict[str, Any]:
        return await call(
            client, "fs/writeFile", {"path": path, "dataBase64": "", "sandboxPolicy": policy}
        )

    async def read(path: str, policy: Any) -> dict[str, Any]:
        return await call(client, "fs/getMetadata", {"path": path, "sandboxPolicy": policy})

    assert await write(w + "/a", ww) == OK
    assert await write(o + "/a", ww) == denied("write", o + "/a")
    assert await write(o + "/no/such/a", ww) == denied("write", o + "/no/such/a")
    assert await write(w + "/no/such/a", ww) == err(ENOENT)
    assert await write(w + "/esc/a", ww) == denied("write", w + "/esc/a")
    assert await write(cwd + "/a", ww) == OK
    assert await write(tmpd + "/a", ww) == OK
    assert await write(tmpd + "/b", {**ww, "exclude_tmpdir_env_var": True}) == denied(
        "write", tmpd + "/b"
    )
    assert await write(cwd + "/b", {"type": "read-only"}) == denied("write", cwd + "/b")
    assert await write(o + "/a", {"type": "danger-full-access"}) == OK
    assert await write(o + "/b", {"type": "external-sandbox", "network_access": "enabled"}) == OK
    assert await write(o + "/c", {"type": "workspace-write", "writableRoots": [o]}) == denied(
        "write", o + "/c"
    )
    assert (await read(w + "/f", restricted))["result"]["isFile"] is True
    assert (await read(cwd, restricted))["result"]["isDirectory"] is True
    assert await read(o + "/g", restricted) == denied("read", o + "/g")
    assert await read(w + "/esc/g", restricted) == denied("read", w + "/esc/g")
    assert await read(tmpd, restricted) == denied("read", tmpd)
    assert await read(o + "/nothing", restricted) == denied("read", o + "/nothing")
    assert await read(
        "/etc/hostname",
        {**restricted, "access": {**restricted["access"], "include_platform_defaults": True}},
    ) == denied("read", "/etc/hostname")
    ww_restricted = {**ww, "read_only_access": {"type": "restricted"}}
    assert (await read(tmpd, ww_restricted))["result"]["isDirectory"] is True
    assert await read(o, ww_restricted) == denied("read", o)
    # remove and the copy source act on the link itself
    copy = {"sourcePath": w + "/esc", "destinationPath": w + "/esc2", "recursive": False}
    assert await call(client, "fs/copy", {**copy, "sandboxPolicy": ww_restricted}) == OK
    assert await call(client, "fs/remove", {"path": w + "/esc/g", "sandboxPolicy": ww}) == denied(
        "write", w + "/esc/g"
    )
    assert await call(client, "fs/remove", {"path": w + "/esc", "sandboxPolicy": ww}) == OK
    assert (outside / "g").read_bytes() == b"g"
    copy = {
        "sourcePath": w + "/f",
        "destinationPath": o + "/f",
        "recursive": False,
        "sandboxPolicy": ww,
    }
    assert await call(client, "fs/copy", copy) == denied("write", o + "/f")


async def test_write_through_a_dangling_link_out_of_the_root(
    client: WireClient, fs_server: FsServer, work: Path
) -> None:
    """The reference judges a dangling link by where it sits and writes outside the root;
    trio-exec judges it by its target and refuses."""
    outside = fs_server.base / f"outside-{uuid.uuid4().hex[:8]}"
    outside.mkdir()
    (work / "dang").symlink_to(outside / "escaped")
    params = {
        "path": str(work / "dang"),
        "dataBase64": "",
        "sandboxPolicy": {"type": "workspace-write", "writable_roots": [str(work)]},
    }
    reply = await call(client, "fs/writeFile", params)
    if fs_server.is_reference:
        assert reply == OK
        assert (outside / "escaped").exists()
    else:
        assert reply == invalid(f"fs/write is not permitted for path {work / 'dang'}")
        assert not (outside / "escaped").exists()


@pytest.mark.parametrize(
    ("policy", "text"),
    [
        (
            "read-only",
            'invalid type: string "read-only", expected internally tagged enum SandboxPolicy',
        ),
        (
            {"type": "bogus"},
            "unknown variant `bogus`, expected one of `danger-full-access`, `read-only`, "
            "`external-sandbox`, `workspace-write`",
        ),
        ({}, "missing field `type`"),
        (
            {"type": "read-only", "access": {"type": "x"}},
            "unknown variant `x`, expected `restricted` or `full-access`",
        ),
        (
            {"type": "external-sandbox", "network_access": "x"},
            "unknown variant `x`, expected `restricted` or `enabled`",
        ),
        (
            {"type": "workspace-write", "writable_roots": ["rel"]},
            "AbsolutePathBuf deserialized without a base path",
        ),
        (
            {"type": "workspace-write", "writable_roots": [5]},
            "invalid type: integer `5`, expected path string",
        ),
        (
            {"type": "read-only", "access": {"type": 7}},
            "invalid value: integer `7`, expected variant index 0 <= i < 2",
        ),
        (["external-sandbox", "enabled", 1], "invalid length 2, expected 1 element in sequence"),
    ],
)
async def test_bad_policy_is_invalid_params_even_before_initialize(
    fs_server: FsServer, policy: Any, text: str
) -> None:
    async with connect(fs_server.handle.url) as client:
        assert await call(client, "fs/getMetadata", {"path": "/", "sandboxPolicy": policy}) == err(
            {"code": -32602, "message": text}
        )


# --- texts that follow the reference's libc (musl) and decoder -----------------------------


async def test_symlink_loop_text(
    client: WireClient, work: Path
) -> None:
    (work / "loop").symlink_to("loop")
    assert await call(client, "fs/readFile", {"path": str(work / "loop")}) == err(ELOOP)


async def test_path_of_the_wrong_type(
    client: WireClient,
) -> None:
    assert await call(client, "fs/getMetadata", {"path": 5}) == err(
        {"code": -32602, "message": "invalid type: integer `5`, expected path string"}
    )


@pytest.mark.parametrize(
    ("data", "text"),
    [
        ("a", "Invalid input length: 1"),
        ("aGVsbGxxx", "Invalid input length: 9"),
        ("aGVsbG8===", "Invalid symbol 61, offset 7."),
        ("aGVsbA===", "Invalid symbol 61, offset 6."),
    ],
)
async def test_base64_texts_of_the_reference(
    client: WireClient,
    work: Path,
    data: str,
    text: str,
) -> None:
    params = {"path": str(work / "b"), "dataBase64": data}
    assert await call(client, "fs/writeFile", params) == invalid(
        f"fs/writeFile requires valid base64 dataBase64: {text}"
    )
