"""One `fs/*` request must never hang the daemon, kill it, or escape its sandbox.

Through a real trio-exec daemon (and, where the answer is the wire contract, the reference
servers of the dialect):
- a symlink swapped by a thread between a directory inside a writable root and one outside,
  while thousands of writes, opens, directory creations, copies and reads go through it, in
  both dialects: nothing is ever created outside, nothing outside is ever returned;
- 64 concurrent reads of FIFOs nobody writes: another client's `fs/getMetadata` and
  `process/start` still answer at once, and after the attacker leaves no reader is left;
- endless files (`/dev/zero`) end at the 512 MiB bound (0.120) or as "not a file" (0.169);
- a NUL byte in a path is bad input with the reference's code and text.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket
from support import servers
from support.servers import REFERENCES_0169_DIALECT, TRIO_EXEC, ServerHandle
from support.wsclient import WireClient, b64, session, unb64

from trio_exec.fs import target as fs_target
from trio_exec.fs.local import LocalFilesystem
from trio_exec.proto.errors import RpcError
from trio_exec.proto.sandbox import WorkspaceWrite
from trio_exec.sandbox.access import for_policy

#: How many requests each daemon race sends (the loop stops there; a few seconds).
RACE_ATTEMPTS = 2000
#: How long the in-process race (without openat2) runs.
RACE_SECONDS = 2.0


@pytest.fixture(scope="module")
def daemon() -> Iterator[ServerHandle]:
    handle = servers.launch(TRIO_EXEC)
    try:
        yield handle
    finally:
        handle.stop()


def uri(path: Path | str) -> str:
    return "file://" + str(path)


class Swapper:
    """A thread that keeps re-pointing `link` between `inside` and `outside` (atomic renames of
    prepared links), until stopped."""

    def __init__(self, link: Path, inside: Path, outside: Path) -> None:
        self.link, self.inside, self.outside = link, inside, outside
        self.stop = threading.Event()
        self.swaps = 0
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        spare = self.link.with_name(self.link.name + ".new")
        while not self.stop.is_set():
            for where in (self.inside, self.outside):
                spare.unlink(missing_ok=True)
                spare.symlink_to(where)
                os.replace(spare, self.link)
                self.swaps += 1

    def __enter__(self) -> Swapper:
        self.link.symlink_to(self.inside)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


def make_tree(tmp_path: Path) -> tuple[Path, Path, Path]:
    root = (tmp_path / "root").resolve()
    inside = root / "inside"
    outside = (tmp_path / "outside").resolve()
    inside.mkdir(parents=True)
    outside.mkdir()
    (inside / "secret").write_bytes(b"inside")
    (outside / "secret").write_bytes(b"OUTSIDE")
    (root / "src").write_bytes(b"payload")
    (root / "srcdir").mkdir()
    (root / "srcdir" / "f").write_bytes(b"payload")
    return root, inside, outside


def policy(root: Path) -> dict[str, Any]:
    return {"type": "workspace-write", "writable_roots": [str(root)],
            "read_only_access": {"type": "restricted", "readable_roots": [],
                                 "include_platform_defaults": False},
            "network_access": False, "exclude_tmpdir_env_var": True, "exclude_slash_tmp": True}


def context(root: Path) -> dict[str, Any]:
    entry = {"path": {"type": "path", "path": uri(root)}, "access": "write"}
    return {"permissions": {"type": "managed", "network": "restricted",
                            "file_system": {"type": "restricted", "entries": [entry]}},
            "cwd": uri(root), "workspaceRoots": [uri(root)], "windowsSandboxLevel": "disabled",
            "windowsSandboxProxySettingsMode": "reconcile", "useLegacyLandlock": False}


def requests_120(root: Path, n: int) -> list[tuple[str, dict[str, Any]]]:
    link = root / "sw"
    sandbox = policy(root)
    return [
        ("fs/writeFile", {"path": f"{link}/w{n}", "dataBase64": b64("x"), "sandboxPolicy": sandbox}),
        ("fs/createDirectory", {"path": f"{link}/d{n}/e", "sandboxPolicy": sandbox}),
        ("fs/copy", {"sourcePath": str(root / "src"), "destinationPath": f"{link}/c{n}",
                     "recursive": False, "sandboxPolicy": sandbox}),
        ("fs/copy", {"sourcePath": str(root / "srcdir"), "destinationPath": f"{link}/t{n}",
                     "recursive": True, "sandboxPolicy": sandbox}),
        ("fs/remove", {"path": f"{link}/secret", "recursive": False, "force": True,
                       "sandboxPolicy": sandbox}),
        ("fs/readFile", {"path": f"{link}/secret", "sandboxPolicy": sandbox}),
    ]


def requests_169(root: Path, n: int) -> list[tuple[str, dict[str, Any]]]:
    link = root / "sw"
    sandbox = context(root)
    return [
        ("fs/writeFile", {"path": uri(f"{link}/w{n}"), "dataBase64": b64("x"), "sandbox": sandbox}),
        ("fs/open", {"handleId": f"h{n}", "path": uri(f"{link}/o{n}"), "mode": "replace",
                     "sandbox": sandbox}),
        ("fs/createDirectory", {"path": uri(f"{link}/d{n}/e"), "sandbox": sandbox}),
        ("fs/copy", {"sourcePath": uri(root / "src"), "destinationPath": uri(f"{link}/c{n}"),
                     "recursive": False, "sandbox": sandbox}),
        ("fs/remove", {"path": uri(f"{link}/secret"), "recursive": False, "force": True,
                       "sandbox": sandbox}),
        ("fs/readFile", {"path": uri(f"{link}/secret"), "sandbox": sandbox}),
    ]


async def run_race(client: WireClient, root: Path, dialect: str) -> tuple[int, int]:
    """Pipelined batches until RACE_ATTEMPTS replies came: (attempts, successes)."""
    build = requests_120 if dialect == "0.120" else requests_169
    attempts = succeeded = 0
    n = 0
    while attempts < RACE_ATTEMPTS:
        sent = []
        for _ in range(20):
            n += 1
            for method, params in build(root, n):
                sent.append((method, params, await client.send_request(method, params)))
        for method, params, id in sent:
            reply = await client.reply_for(id)
            attempts += 1
            if "result" not in reply:
                continue
            if method == "fs/readFile":
                assert unb64(reply["result"]["dataBase64"]) == b"inside", reply
            elif method == "fs/open":
                await client.request("fs/close", {"handleId": params["handleId"]})
            succeeded += 1
    return attempts, succeeded


@pytest.mark.parametrize("dialect", ["0.120", "0.169"])
async def test_symlink_swap_race_never_escapes_the_root(
    daemon: ServerHandle, tmp_path: Path, dialect: str
) -> None:
    """A thread swaps `root/sw` between `root/inside` and `outside` while writes, opens,
    directory creations, copies and reads go through it: nothing appears outside, no read
    returns the outside file, and the attempts number in the thousands."""
    root, inside, outside = make_tree(tmp_path)
    with Swapper(root / "sw", inside, outside) as swapper:
        with trio.fail_after(60):
            async with session(daemon.url) as client:
                attempts, succeeded = await run_race(client, root, dialect)
    print(f"\nsymlink swap race ({dialect}): {attempts} requests, {succeeded} succeeded, "
          f"{swapper.swaps} swaps, files outside the root afterwards: "
          f"{sorted(os.listdir(outside))}")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert (outside / "secret").read_bytes() == b"OUTSIDE"
    assert attempts >= RACE_ATTEMPTS
    assert succeeded > 0 and swapper.swaps > 1000, (succeeded, swapper.swaps)


async def test_symlink_swap_race_without_openat2(tmp_path: Path) -> None:
    """The same race on `LocalFilesystem` with `openat2` switched off: the component-wise
    `O_NOFOLLOW` walk keeps every write inside too."""
    root, inside, outside = make_tree(tmp_path)
    fs = LocalFilesystem(cwd=str(root), tmpdir=None)
    sandbox = WorkspaceWrite(writable_roots=[str(root)], exclude_slash_tmp=True,
                             exclude_tmpdir_env_var=True)
    fs_target.OPENAT2.usable = False
    try:
        with Swapper(root / "sw", inside, outside):
            attempts = 0
            deadline = time.monotonic() + RACE_SECONDS
            with trio.fail_after(30):
                while time.monotonic() < deadline:
                    attempts += 1
                    for work in (
                        fs.write_file(f"{root}/sw/w{attempts}", b"x", policy=for_policy(sandbox)),
                        fs.create_directory(f"{root}/sw/d{attempts}", policy=for_policy(sandbox)),
                        fs.copy(str(root / "src"), f"{root}/sw/c{attempts}", recursive=False,
                                policy=for_policy(sandbox)),
                    ):
                        with contextlib.suppress(RpcError):  # refusals and ELOOP are fine
                            await work
    finally:
        fs_target.OPENAT2.usable = True
    print(f"\nsymlink swap race without openat2: {attempts} rounds of write, mkdir and copy, "
          f"files outside the root afterwards: {sorted(os.listdir(outside))}")
    assert sorted(os.listdir(outside)) == ["secret"]
    assert attempts >= 300, attempts


# ------------------------------------------------------------------------------- FIFOs


def fifo_read(dialect: str, path: Path) -> dict[str, Any]:
    return {"path": str(path) if dialect == "0.120" else uri(path)}


@pytest.fixture(scope="module")
def quick_ping_daemon() -> Iterator[ServerHandle]:
    """A daemon that drops a peer after 1 s without a pong."""
    handle = servers.launch(TRIO_EXEC, "--ping-interval", "1", "--ping-timeout", "1")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.parametrize("dialect", ["0.120", "0.169"])
async def test_fifo_reads_do_not_tie_up_the_daemon(
    quick_ping_daemon: ServerHandle, tmp_path: Path, dialect: str
) -> None:
    """64 readFiles of FIFOs that nobody writes: another client's getMetadata and process/start
    answer promptly meanwhile, and once the attacker is gone no reader holds any FIFO.

    0.120 waits for a writer, so the attacker's reads stay in flight and the daemon stops
    reading its socket at the read-pause bound (`--read-pause-requests`): it cannot see the
    attacker's Close behind the unread requests (nor answer it: the attacker's close times out).
    The silent peer is dropped at the ping timeout, which cancels its reads: that is the bound
    on how long an abandoned connection holds its FIFOs."""
    daemon = quick_ping_daemon
    fifos = []
    for n in range(64):
        fifo = tmp_path / f"fifo{n}"
        os.mkfifo(fifo)
        fifos.append(fifo)
    with trio.fail_after(30):
        with contextlib.suppress(trio_websocket.DisconnectionTimeout):
            async with session(daemon.url) as attacker:
                ids = [await attacker.send_request("fs/readFile", fifo_read(dialect, f)) for f in fifos]
                async with session(daemon.url) as other:
                    meta = await other.request("fs/getMetadata", {"path": str(tmp_path)}, within=2)
                    assert meta["result"]["isDirectory"] is True
                    started = await other.request("process/start", {
                        "processId": "p1", "argv": ["/bin/true"], "cwd": "/", "env": {},
                        "tty": False, "arg0": None}, within=2)
                    assert "result" in started, started
                if dialect == "0.169":
                    for fifo, id in zip(fifos, ids, strict=True):
                        reply = await attacker.reply_for(id)
                        assert reply["error"] == {
                            "code": -32600, "message": f"path `{fifo}` is not a file"}
        # the attacker is gone: every FIFO is without a reader (poll until the daemon has
        # cleaned up, bounded)
        for fifo in fifos:
            while True:
                try:
                    os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                except OSError as exc:
                    assert exc.errno == errno.ENXIO
                    break
                await trio.sleep(0.02)


async def test_fifo_read_gets_what_a_late_writer_writes(
    daemon: ServerHandle, tmp_path: Path
) -> None:
    """0.120: the read waits for a writer (as the reference does) and returns its bytes."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with trio.fail_after(10):
        async with session(daemon.url) as client:
            id = await client.send_request("fs/readFile", {"path": str(fifo)})
            while True:  # the daemon opens the FIFO without blocking, then waits
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                    break
                except OSError:
                    await trio.sleep(0.02)
            os.write(fd, b"late")
            os.close(fd)
            reply = await client.reply_for(id)
    assert unb64(reply["result"]["dataBase64"]) == b"late"


# ----------------------------------------------------------------------- endless files


async def test_dev_zero_ends_at_the_limit(daemon: ServerHandle) -> None:
    """0.120: `/dev/zero` is read up to the 512 MiB bound and refused, and the daemon lives."""
    with trio.fail_after(60):
        async with session(daemon.url) as client:
            reply = await client.request("fs/readFile", {"path": "/dev/zero"}, within=60)
            assert reply["error"] == {
                "code": -32600, "message": "file is too large to read: limit is 536870912 bytes"}
            assert (await client.request("fs/readFile", {"path": "/dev/null"}))["result"] == {
                "dataBase64": ""}
    assert daemon.alive()


@pytest.fixture(
    scope="module",
    params=[TRIO_EXEC, *(pytest.param(kind, marks=pytest.mark.reference)
                         for kind in REFERENCES_0169_DIALECT)],
)
def server169(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    handle = servers.launch(request.param)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
async def test_0169_refuses_what_is_not_a_file(server169: ServerHandle, path: str) -> None:
    with trio.fail_after(10):
        async with session(server169.url) as client:
            reply = await client.request("fs/readFile", {"path": uri(path)})
            assert reply["error"] == {"code": -32600, "message": f"path `{path}` is not a file"}
            reply = await client.request(
                "fs/open", {"handleId": "h", "path": uri(path), "mode": "read"})
            assert reply["error"] == {"code": -32600, "message": f"path `{path}` is not a file"}


# --------------------------------------------------------------------------- NUL bytes


NUL_CASES_169 = [
    ("file:///tmp/a%00b", "'file:///tmp/a%00b' is invalid on 'linux'"),
    ("file://localhost/tmp/x/../a%00", "'file:///tmp/a%00' is invalid on 'linux'"),
    ("file:///tmp/%41 b\x00c", "'file:///tmp/%41%20b%00c' is invalid on 'linux'"),
    ("file://host/a%00", "'file://host/a%00' is invalid on 'linux'"),
]


@pytest.mark.parametrize(("path", "message"), NUL_CASES_169)
async def test_nul_in_a_uri_is_invalid_params(
    server169: ServerHandle, path: str, message: str
) -> None:
    with trio.fail_after(10):
        async with session(server169.url) as client:
            for method, extra in (("fs/getMetadata", {}), ("fs/writeFile", {"dataBase64": ""})):
                reply = await client.request(method, {"path": path, **extra})
                assert reply["error"] == {"code": -32602, "message": message}


@pytest.mark.parametrize("kind", [TRIO_EXEC, pytest.param(servers.REFERENCE,
                                                          marks=pytest.mark.reference)])
async def test_nul_in_a_path_is_invalid_request(kind: str, tmp_path: Path) -> None:
    handle = servers.launch(kind)
    try:
        with trio.fail_after(15):
            async with session(handle.url) as client:
                bad = f"{tmp_path}/a\x00b"
                for method, params in (
                    ("fs/readFile", {"path": bad}),
                    ("fs/writeFile", {"path": bad, "dataBase64": ""}),
                    ("fs/createDirectory", {"path": bad}),
                    ("fs/getMetadata", {"path": bad}),
                    ("fs/readDirectory", {"path": bad}),
                    ("fs/remove", {"path": bad}),
                    ("fs/copy", {"sourcePath": bad, "destinationPath": str(tmp_path / "x"),
                                 "recursive": False}),
                ):
                    reply = await client.request(method, params)
                    assert reply["error"] == {
                        "code": -32600, "message": "file name contained an unexpected NUL byte"
                    }, (method, reply)
    finally:
        handle.stop()
        if kind == TRIO_EXEC:
            assert "Traceback" not in handle.stderr_text()

