"""`LocalFilesystem` on real files: each operation's behaviour and its error mapping.

Error texts are the wire contract (protocol.md section 12): -32004 for "not found", -32603 with
Rust's `io::Error` text for other OS errors, -32600 for the protocol's own refusals.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
import subprocess
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest
import trio

from trio_exec.fs import LocalFilesystem, blocking
from trio_exec.fs.blocking import READ_FILE_LIMIT
from trio_exec.proto.convert import unstructure
from trio_exec.proto.errors import InternalError, InvalidRequest, NotFound, RpcError
from trio_exec.proto.fs_messages import FsDirectoryEntry

ENOENT = "No such file or directory (os error 2)"
EISDIR = "Is a directory (os error 21)"
ENOTDIR = "Not a directory (os error 20)"
EEXIST = "File exists (os error 17)"
ENOTEMPTY = "Directory not empty (os error 39)"
TOO_LARGE = "file is too large to read: limit is 536870912 bytes"
NEEDS_RECURSIVE = "fs/copy requires recursive: true when sourcePath is a directory"
INTO_ITSELF = "fs/copy cannot copy a directory to itself or one of its descendants"
UNSUPPORTED = "fs/copy only supports regular files, directories, and symlinks"


@pytest.fixture
def fs(tmp_path: Path) -> LocalFilesystem:
    return LocalFilesystem(cwd=str(tmp_path), tmpdir=None)


async def raises(cls: type[RpcError], message: str, call: Awaitable[object]) -> None:
    """Await `call` (a coroutine) and check it raises exactly `cls(message)`."""
    with trio.fail_after(5), pytest.raises(cls) as info:
        await call
    assert type(info.value) is cls
    assert info.value.message == message


# --- readFile --------------------------------------------------------------------------------


async def test_read_file(tmp_path: Path, fs: LocalFilesystem) -> None:
    (tmp_path / "f").write_bytes(b"\x00\xffdata")
    (tmp_path / "link").symlink_to("f")
    with trio.fail_after(5):
        assert await fs.read_file(str(tmp_path / "f")) == b"\x00\xffdata"
        assert await fs.read_file(str(tmp_path / "link")) == b"\x00\xffdata"
        assert await fs.read_file("/dev/null") == b""
        assert b"Name:" in await fs.read_file("/proc/self/status")  # size 0 in its metadata
    await raises(InternalError, EISDIR, fs.read_file(str(tmp_path)))
    await raises(NotFound, ENOENT, fs.read_file(str(tmp_path / "missing")))
    await raises(InternalError, ENOTDIR, fs.read_file(str(tmp_path / "f" / "x")))


async def test_read_file_refuses_more_than_512_mib_on_metadata(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    big = tmp_path / "sparse"
    with open(big, "wb") as file:  # noqa: ASYNC230 - test setup, a truncate
        file.truncate(READ_FILE_LIMIT + 1)
    (tmp_path / "link").symlink_to("sparse")
    await raises(InvalidRequest, TOO_LARGE, fs.read_file(str(big)))
    await raises(InvalidRequest, TOO_LARGE, fs.read_file(str(tmp_path / "link")))


async def test_event_loop_keeps_running_during_a_500_mib_read(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    """The read runs in a worker thread: a ticking task is never held up for long."""
    big = tmp_path / "sparse"
    size = 500 * 1024 * 1024
    with open(big, "wb") as file:  # noqa: ASYNC230 - test setup, a truncate
        file.truncate(size)
    gaps: list[float] = []
    done = trio.Event()

    async def ticker() -> None:
        last = trio.current_time()
        while not done.is_set():
            await trio.sleep(0.005)
            now = trio.current_time()
            gaps.append(now - last)
            last = now

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(ticker)
            started = trio.current_time()
            data = await fs.read_file(str(big))
            elapsed = trio.current_time() - started
            done.set()
    assert len(data) == size
    assert gaps, "the ticker never ran"
    assert max(gaps) < 0.25, (max(gaps), elapsed)
    assert len(gaps) >= elapsed / 0.05


async def test_cancelled_read_returns_at_once(tmp_path: Path, fs: LocalFilesystem) -> None:
    """A read waiting on a FIFO with no writer does not hold up cancellation, and leaves
    nothing behind: no thread blocked in `open`, no descriptor (a writer finds no reader)."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with trio.fail_after(5):
        with trio.move_on_after(0.2) as scope:
            await fs.read_file(str(fifo))
        assert scope.cancelled_caught
        with pytest.raises(OSError) as raised:
            os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        assert raised.value.errno == errno.ENXIO


# --- writeFile -------------------------------------------------------------------------------


async def test_write_file_creates_and_truncates(tmp_path: Path, fs: LocalFilesystem) -> None:
    target = tmp_path / "f"
    umask = os.umask(0o022)
    os.umask(umask)
    with trio.fail_after(5):
        await fs.write_file(str(target), b"long content")
        assert target.read_bytes() == b"long content"
        assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
        await fs.write_file(str(target), b"short")
        assert target.read_bytes() == b"short"
        await fs.write_file(str(target), b"")
        assert target.read_bytes() == b""
    await raises(NotFound, ENOENT, fs.write_file(str(tmp_path / "no" / "f"), b""))
    await raises(InternalError, EISDIR, fs.write_file(str(tmp_path), b""))


def test_write_file_failing_midway_leaves_what_truncate_then_write_would(tmp_path: Path) -> None:
    """The file is written in place and cut afterwards; a write that fails part-way must still
    leave exactly the reference's outcome: the bytes written so far, none of the old content.
    RLIMIT_FSIZE makes the kernel stop the write at 1000 bytes (EFBIG; Python ignores SIGXFSZ),
    in a child so the limit stays there."""
    target = tmp_path / "f"
    target.write_bytes(b"a" * 8000)
    script = (
        "import resource, sys\n"
        "from trio_exec.fs.blocking import write_file\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "try:\n"
        "    write_file(sys.argv[1], b'b' * 4000)\n"
        "except OSError as exc:\n"
        "    print(exc.errno)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(target)], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == str(errno.EFBIG)
    assert target.read_bytes() == b"b" * 1000


def test_write_file_out_of_room_over_old_blocks_retries_after_freeing_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy-on-write file system can refuse to write over old blocks for lack of room
    (ENOSPC/EDQUOT) where truncate-then-write would have freed them first; the write is then
    retried once from a file cut to zero. (A full btrfs is not cheap to build in a test, so
    the first write is made to fail the way it would.)"""
    target = tmp_path / "f"
    target.write_bytes(b"o" * 100)
    real_write = os.write
    failures = [OSError(errno.ENOSPC, "No space left on device")]

    def write(fd: int, data: Any) -> int:
        if failures:
            real_write(fd, bytes(data[:10]))  # part of it landed, then the room ran out
            raise failures.pop()
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    blocking.write_file(str(target), b"n" * 60)
    assert target.read_bytes() == b"n" * 60


def test_write_file_where_the_file_system_refuses_to_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Some file systems refuse `ftruncate`: fine when the new content is at least as long as
    the old (nothing is left over), an error otherwise (never a stale tail)."""
    target = tmp_path / "f"
    target.write_bytes(b"o" * 10)

    def refuse(fd: int, length: int) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "ftruncate", refuse)
    blocking.write_file(str(target), b"n" * 20)
    assert target.read_bytes() == b"n" * 20
    with pytest.raises(PermissionError):
        blocking.write_file(str(target), b"short")
    assert target.read_bytes() == b"n" * 20


async def test_write_file_keeps_the_inode_and_writes_fifos_untruncated(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"x" * 4096)
    os.link(target, tmp_path / "hard")
    before = target.stat().st_ino
    await fs.write_file(str(target), b"new")
    assert target.stat().st_ino == before
    assert (tmp_path / "hard").read_bytes() == b"new"

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as reader:
            received.append(reader.read())

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(trio.to_thread.run_sync, drain, abandon_on_cancel=True))
            await fs.write_file(str(fifo), b"through the pipe")
    assert received == [b"through the pipe"]


# --- createDirectory -------------------------------------------------------------------------


async def test_create_directory(tmp_path: Path, fs: LocalFilesystem) -> None:
    (tmp_path / "file").write_bytes(b"")
    with trio.fail_after(5):
        await fs.create_directory(str(tmp_path / "a" / "b" / "c"))
        assert (tmp_path / "a" / "b" / "c").is_dir()
        await fs.create_directory(str(tmp_path / "a" / "b" / "c"))  # mkdir -p: existing is fine
        await fs.create_directory(str(tmp_path / "single"), recursive=False)
        assert (tmp_path / "single").is_dir()
    await raises(NotFound, ENOENT, fs.create_directory(str(tmp_path / "x" / "y"), recursive=False))
    await raises(
        InternalError, EEXIST, fs.create_directory(str(tmp_path / "single"), recursive=False)
    )
    await raises(InternalError, EEXIST, fs.create_directory(str(tmp_path / "file")))
    await raises(
        InternalError, EEXIST, fs.create_directory(str(tmp_path / "file"), recursive=False)
    )
    await raises(InternalError, ENOTDIR, fs.create_directory(str(tmp_path / "file" / "sub")))


async def test_create_directory_through_a_link_to_a_directory(
    tmp_path: Path, fs: LocalFilesystem
) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    with trio.fail_after(5):
        await fs.create_directory(str(tmp_path / "link"))
        await fs.create_directory(str(tmp_path / "link" / "new" / "deeper"))
    assert (tmp_path / "real" / "new" / "deeper").is_dir()


# --- getMetadata -----------------------------------------------------------------------------


async def test_get_metadata(tmp_path: Path, fs: LocalFilesystem) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x")
    os.utime(f, ns=(0, 1_700_000_000_123_456_789))
    (tmp_path / "link").symlink_to("f")
    os.mkfifo(tmp_path / "fifo")
    old = tmp_path / "old"
    old.write_bytes(b"")
    os.utime(old, ns=(0, -315_619_200_000_000_000))  # 1960
    with trio.fail_after(5):
        meta = await fs.get_metadata(str(f))
        assert unstructure(meta) == {
            "isDirectory": False,
            "isFile": True,
            "createdAtMs": 0,
            "modifiedAtMs": 1_700_000_000_123,
        }
        assert list(unstructure(meta)) == ["isDirectory", "isFile", "createdAtMs", "modifiedAtMs"]
        assert await fs.get_metadata(str(tmp_path / "link")) == meta
        directory = await fs.get_metadata(str(tmp_path))
        assert (directory.is_directory, directory.is_file) == (True, False)
        for special in (str(tmp_path / "fifo"), "/dev/null"):
            info = await fs.get_metadata(special)
            assert (info.is_directory, info.is_file) == (False, False)
        assert (await fs.get_metadata(str(old))).modified_at_ms == 0
    (tmp_path / "dangling").symlink_to("nowhere")
    await raises(NotFound, ENOENT, fs.get_metadata(str(tmp_path / "dangling")))
    await raises(NotFound, ENOENT, fs.get_metadata(str(tmp_path / "missing")))


# --- readDirectory ---------------------------------------------------------------------------


async def test_read_directory(tmp_path: Path, fs: LocalFilesystem) -> None:
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "to-file").symlink_to("file")
    (tmp_path / "to-dir").symlink_to("sub")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "loop").symlink_to("loop")
    os.close(os.open(os.fsencode(tmp_path) + b"/bad\xffname", os.O_CREAT | os.O_WRONLY))
    with trio.fail_after(5):
        entries = await fs.read_directory(str(tmp_path))
    order = [name.decode("utf-8", "replace") for name in os.listdir(os.fsencode(tmp_path))]
    assert [e.file_name for e in entries] == order  # raw readdir order, no . or ..
    kinds = {e.file_name: (e.is_directory, e.is_file) for e in entries}
    assert kinds == {
        "file": (False, True),
        "sub": (True, False),
        "to-file": (False, True),
        "to-dir": (True, False),
        "fifo": (False, False),
        # contract fix #15: listed, with both flags false, instead of failing the call
        "dangling": (False, False),
        "loop": (False, False),
        "bad\ufffdname": (False, True),
    }
    assert unstructure(entries[0]).keys() == {"fileName", "isDirectory", "isFile"}
    assert list(unstructure(FsDirectoryEntry(file_name="a", is_directory=True, is_file=False))) == [
        "fileName",
        "isDirectory",
        "isFile",
    ]
    await raises(InternalError, ENOTDIR, fs.read_directory(str(tmp_path / "file")))
    await raises(NotFound, ENOENT, fs.read_directory(str(tmp_path / "missing")))


# --- remove ----------------------------------------------------------------------------------


async def test_remove(tmp_path: Path, fs: LocalFilesystem) -> None:
    (tmp_path / "tree" / "a" / "b").mkdir(parents=True)
    (tmp_path / "tree" / "a" / "b" / "f").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "f").write_bytes(b"")
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "keep").write_bytes(b"keep")
    (tmp_path / "dirlink").symlink_to("target")
    with trio.fail_after(5):
        await fs.remove(str(tmp_path / "tree"))  # recursive by default
        assert not (tmp_path / "tree").exists()
        await fs.remove(str(tmp_path / "missing"))  # force by default
        await fs.remove(str(tmp_path / "empty"), recursive=False)
        assert not (tmp_path / "empty").exists()
        await fs.remove(str(tmp_path / "dirlink"))  # the link, never its target
        assert not (tmp_path / "dirlink").is_symlink()
        assert (tmp_path / "target" / "keep").read_bytes() == b"keep"
        await fs.remove(str(tmp_path / "file"), recursive=False, force=False)
        assert not (tmp_path / "file").exists()
    await raises(NotFound, ENOENT, fs.remove(str(tmp_path / "missing"), force=False))
    await raises(InternalError, ENOTEMPTY, fs.remove(str(tmp_path / "full"), recursive=False))
    (tmp_path / "file").write_bytes(b"")
    # force only swallows "not found"
    await raises(InternalError, ENOTDIR, fs.remove(str(tmp_path / "file" / "x")))


# --- copy ------------------------------------------------------------------------------------


@pytest.fixture
def src(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    (root / "a").write_bytes(b"a")
    (root / "a").chmod(0o741)
    (root / "sub" / "b").write_bytes(b"b")
    (root / "la").symlink_to("a")
    (root / "dang").symlink_to("/nonexistent/target")
    os.mkfifo(root / "fifo")
    return root


async def test_copy_file_keeps_permission_bits(
    tmp_path: Path, fs: LocalFilesystem, src: Path
) -> None:
    dst = tmp_path / "copy"
    with trio.fail_after(5):
        await fs.copy(str(src / "a"), str(dst), recursive=False)
        assert dst.read_bytes() == b"a"
        assert stat.S_IMODE(dst.stat().st_mode) == 0o741
        dst.write_bytes(b"older and longer")
        await fs.copy(str(src / "a"), str(dst), recursive=True)  # overwrites; recursive is fine
        assert dst.read_bytes() == b"a"


async def test_copy_file_onto_itself_keeps_its_content(fs: LocalFilesystem, src: Path) -> None:
    """The fix: the reference truncated a file copied onto itself."""
    with trio.fail_after(5):
        await fs.copy(str(src / "a"), str(src / "a"), recursive=False)
        await fs.copy(str(src / "a"), str(src / "la"), recursive=False)
    assert (src / "a").read_bytes() == b"a"


async def test_copy_file_follows_a_link_at_the_destination(
    tmp_path: Path, fs: LocalFilesystem, src: Path
) -> None:
    (tmp_path / "real").write_bytes(b"old")
    (tmp_path / "link").symlink_to("real")
    with trio.fail_after(5):
        await fs.copy(str(src / "sub" / "b"), str(tmp_path / "link"), recursive=False)
    assert (tmp_path / "link").is_symlink()
    assert (tmp_path / "real").read_bytes() == b"b"


async def test_copy_symlinks_as_symlinks(tmp_path: Path, fs: LocalFilesystem, src: Path) -> None:
    (tmp_path / "dirlink").symlink_to("src")
    with trio.fail_after(5):
        await fs.copy(str(src / "la"), str(tmp_path / "c1"), recursive=False)
        await fs.copy(str(src / "dang"), str(tmp_path / "c2"), recursive=False)
        await fs.copy(str(tmp_path / "dirlink"), str(tmp_path / "c3"), recursive=False)
    assert os.readlink(tmp_path / "c1") == "a"
    assert os.readlink(tmp_path / "c2") == "/nonexistent/target"
    assert os.readlink(tmp_path / "c3") == "src"
    (tmp_path / "exists").write_bytes(b"")
    await raises(
        InternalError, EEXIST, fs.copy(str(src / "la"), str(tmp_path / "exists"), recursive=False)
    )


async def test_copy_tree(tmp_path: Path, fs: LocalFilesystem, src: Path) -> None:
    dst = tmp_path / "missing-parent" / "copy"
    with trio.fail_after(5):
        await fs.copy(str(src), str(dst), recursive=True)
    assert sorted(os.listdir(dst)) == ["a", "dang", "la", "sub"]  # the FIFO is skipped
    assert (dst / "a").read_bytes() == b"a"
    assert stat.S_IMODE((dst / "a").stat().st_mode) == 0o741
    assert (dst / "sub" / "b").read_bytes() == b"b"
    assert os.readlink(dst / "la") == "a"
    assert os.readlink(dst / "dang") == "/nonexistent/target"


async def test_copy_tree_merges_into_an_existing_directory(
    tmp_path: Path, fs: LocalFilesystem, src: Path
) -> None:
    dst = tmp_path / "dst"
    (dst / "sub").mkdir(parents=True)
    (dst / "sub" / "b").write_bytes(b"old")
    (dst / "keep").write_bytes(b"keep")
    with trio.fail_after(5):
        await fs.copy(str(src), str(dst), recursive=True)
    assert (dst / "sub" / "b").read_bytes() == b"b"
    assert (dst / "keep").read_bytes() == b"keep"
    assert (dst / "a").read_bytes() == b"a"


async def test_copy_refusals(tmp_path: Path, fs: LocalFilesystem, src: Path) -> None:
    (tmp_path / "srclink").symlink_to("src")
    (tmp_path / "file").write_bytes(b"")
    (tmp_path / "dir").mkdir()
    s = str(src)
    await raises(InvalidRequest, NEEDS_RECURSIVE, fs.copy(s, str(tmp_path / "x"), recursive=False))
    # the recursive rule comes first, even for a destination inside the source
    await raises(InvalidRequest, NEEDS_RECURSIVE, fs.copy(s, s + "/sub/y", recursive=False))
    await raises(InvalidRequest, INTO_ITSELF, fs.copy(s, s, recursive=True))
    await raises(InvalidRequest, INTO_ITSELF, fs.copy(s, s + "/sub/y", recursive=True))
    # judged on resolved paths: through a link to the source
    await raises(
        InvalidRequest, INTO_ITSELF, fs.copy(s, str(tmp_path / "srclink" / "y"), recursive=True)
    )
    await raises(
        InvalidRequest, UNSUPPORTED, fs.copy(s + "/fifo", str(tmp_path / "y"), recursive=False)
    )
    await raises(
        InvalidRequest, UNSUPPORTED, fs.copy("/dev/null", str(tmp_path / "y"), recursive=True)
    )
    # the type rule comes before the destination is looked at
    await raises(
        InvalidRequest,
        UNSUPPORTED,
        fs.copy(s + "/fifo", str(tmp_path / "no" / "y"), recursive=True),
    )
    await raises(NotFound, ENOENT, fs.copy(s + "/missing", str(tmp_path / "y"), recursive=False))
    await raises(NotFound, ENOENT, fs.copy(s + "/a", str(tmp_path / "no" / "y"), recursive=False))
    await raises(NotFound, ENOENT, fs.copy(s + "/la", str(tmp_path / "no" / "y"), recursive=False))
    await raises(InternalError, EISDIR, fs.copy(s + "/a", str(tmp_path / "dir"), recursive=False))
    await raises(InternalError, EEXIST, fs.copy(s, str(tmp_path / "file"), recursive=True))
