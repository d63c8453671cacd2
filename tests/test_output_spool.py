"""Durable output (`process/spool.py`, `--output-spool-dir`): output the ring dropped is read back
from disk, byte-exact; caps, removal, stale files and a failing disk stop it cleanly."""

from __future__ import annotations

import hashlib
import logging
import os
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from support.servers import TRIO_EXEC, ServerHandle, launch
from support.wsclient import WireClient, connect, session, unb64

from trio_exec.process.outputlog import Chunk
from trio_exec.process.spool import READ_BYTES, ProcessSpool, SpoolDirectory

MiB = 1024 * 1024


@asynccontextmanager
async def daemon(*flags: str, preexec_fn: object = None) -> AsyncIterator[ServerHandle]:
    server = launch(TRIO_EXEC, *flags, preexec_fn=preexec_fn)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.stop()


async def read_all(client: WireClient, process_id: str) -> tuple[bytes, int]:
    """Every output byte by `afterSeq`, as a client's cursor does (`afterSeq` = the last seq
    it has); (bytes, replies). Fails on a retention gap."""
    out = bytearray()
    after = 0
    replies = 0
    while True:
        result = await read_from(client, process_id, after)
        replies += 1
        assert "retentionGap" not in result, (after, result["retentionGap"])
        for chunk in result["chunks"]:
            assert chunk["seq"] > after
            out += unb64(chunk["chunk"])
            after = chunk["seq"]
        if not result["chunks"] and result["closed"]:
            return bytes(out), replies


async def read_from(client: WireClient, process_id: str, after: int) -> dict[str, object]:
    reply = await client.read(process_id, afterSeq=after, waitMs=1000, within=60)
    result: dict[str, object] = reply["result"]
    return result


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


async def wait_file_size(path: Path, size: int) -> None:
    with trio.fail_after(120):
        while file_size(path) < size:  # noqa: ASYNC110 (a file grows without an event)
            await trio.sleep(0.1)


async def test_a_client_away_reads_100_mib_back_byte_exact(tmp_path: Path) -> None:
    size = 100 * MiB
    copy = tmp_path / "copy"
    spool_dir = tmp_path / "spool"
    async with daemon("--output-spool-dir", str(spool_dir), "--session-ttl", "120") as server:
        async with connect(server.url) as client:
            session_id = await client.handshake("build")
            await client.start_ok(
                "build", ["sh", "-c", f"head -c {size} /dev/urandom | tee {copy}"])
        # the client is away (its session parked) while the process writes
        await wait_file_size(copy, size)
        async with connect(server.url) as client:
            await client.handshake("build", resumeSessionId=session_id)
            data, replies = await read_all(client, "build")
        assert len(data) == size
        assert hashlib.sha256(data).digest() == hashlib.sha256(copy.read_bytes()).digest()
        assert replies >= size // READ_BYTES  # each reply stays the size of a ring
        assert list(spool_dir.iterdir())  # kept until the process is forgotten


async def test_a_failing_disk_stops_the_spool_and_output_still_flows(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes a spool write fail (EFBIG, as ENOSPC would): the spool stops with one
    log line, the client still gets every byte, and a read before the ring reports the gap."""

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 * MiB, resource.RLIM_INFINITY))

    async with daemon("--output-spool-dir", str(tmp_path / "spool"), "--log-level", "INFO",
                      preexec_fn=small_files) as server, session(server.url) as client:
        output, exited = await client.run(
            "big", ["sh", "-c", "ulimit -f unlimited; head -c 8388608 /dev/zero"], within=60)
        assert len(output) == 8 * MiB and exited["exitCode"] == 0
        served = 0
        after = 0
        while "retentionGap" not in (result := await read_from(client, "big", after)):
            chunks = result["chunks"]
            assert isinstance(chunks, list) and chunks, result
            served += sum(len(unb64(c["chunk"])) for c in chunks)
            after = chunks[-1]["seq"]
        assert MiB <= served <= 2 * MiB  # what was written before the failure is served
        log_text = server.stderr_text()
        assert log_text.count("output spool stopped (a write failed: File too large)") == 1


# --- the spool alone --------------------------------------------------------------------------


def chunk(seq: int, size: int, stream: str = "stdout") -> Chunk:
    return Chunk(seq, stream, bytes([seq % 256]) * size)


async def write(spool: ProcessSpool, *chunks: Chunk) -> None:
    """Offer the chunks and let the writer write them."""
    for c in chunks:
        spool.offer(c)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(spool.run)
        await spool.read(0, 1)  # waits until everything offered is written
        nursery.cancel_scope.cancel()


async def test_reads_follow_the_rules_whole_chunks_and_max_bytes(tmp_path: Path) -> None:
    directory = SpoolDirectory(tmp_path)
    spool = directory.open("p")
    await write(spool, chunk(1, 10), chunk(2, 10, "stderr"), chunk(4, 10))  # 3: the exit
    assert [(c.seq, c.stream, c.data) for c in await spool.read(0, None)] == [
        (1, "stdout", b"\x01" * 10), (2, "stderr", b"\x02" * 10), (4, "stdout", b"\x04" * 10)]
    assert [c.seq for c in await spool.read(0, 0)] == [1]  # the first always
    assert [c.seq for c in await spool.read(0, 19)] == [1]  # never split
    assert [c.seq for c in await spool.read(0, 20)] == [1, 2]
    assert [c.seq for c in await spool.read(2, None)] == [4]
    assert await spool.read(4, None) == []
    spool.remove()


async def test_the_caps_stop_a_spool_once_and_say_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    directory = SpoolDirectory(tmp_path, process_bytes=25, total_bytes=30)
    first, second = directory.open("first"), directory.open("second")
    await write(first, chunk(1, 10), chunk(2, 10), chunk(3, 10), chunk(4, 10))
    assert first.stopped == "its cap of 25 bytes per process reached"
    assert [c.seq for c in await first.read(0, None)] == [1, 2]  # what it wrote stays
    await write(second, chunk(1, 10), chunk(2, 10), chunk(3, 10))
    assert second.stopped == "the cap of 30 bytes in total reached"
    assert [c.seq for c in await second.read(0, None)] == [1]
    assert directory.used == 30
    stopped = [r.getMessage() for r in caplog.records if "output spool stopped" in r.getMessage()]
    assert stopped == [
        "first: output spool stopped (its cap of 25 bytes per process reached); output older "
        "than the ring's is kept up to seq 2",
        "second: output spool stopped (the cap of 30 bytes in total reached); output older "
        "than the ring's is kept up to seq 1"]
    first.remove()
    assert directory.used == 10  # the total frees room for the others
    second.remove()
    assert directory.used == 0


async def test_removal_deletes_the_files(tmp_path: Path) -> None:
    directory = SpoolDirectory(tmp_path)
    spool = directory.open("p")
    await write(spool, chunk(1, 100))
    assert len(os.listdir(tmp_path)) == 2
    spool.remove()
    assert os.listdir(tmp_path) == []
    assert await spool.read(0, None) == []
    fds = len(os.listdir("/proc/self/fd"))
    directory.open("q").remove()
    assert len(os.listdir("/proc/self/fd")) == fds  # closed, not leaked


def test_stale_spool_files_are_removed_at_start(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    for name in ("0011aabbccddeeff.out", "0011aabbccddeeff.idx", "9f8e7d6c5b4a3210.out"):
        (spool_dir / name).write_bytes(b"old")
    kept = ["build.out", "notes.txt", "0011aabb.idx", "0011AABBCCDDEEFF.out"]
    for name in kept:  # an operator's own files, never drawn by the spool
        (spool_dir / name).write_text("not a spool file")
    assert SpoolDirectory(spool_dir).prepare() == 3
    assert sorted(p.name for p in spool_dir.iterdir()) == sorted(kept)
    made = tmp_path / "new" / "spool"
    assert SpoolDirectory(made).prepare() == 0
    assert made.stat().st_mode & 0o777 == 0o700


async def test_the_daemon_removes_stale_files_at_start_and_a_forgotten_process_s(
    tmp_path: Path,
) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "feedbeef00c0ffee.out").write_bytes(b"from an earlier run")
    (spool_dir / "feedbeef00c0ffee.idx").write_bytes(b"")
    async with daemon("--output-spool-dir", str(spool_dir), "--retention", "0") as server, \
            session(server.url) as client:
        assert os.listdir(spool_dir) == []
        await client.start_ok("p", ["sh", "-c", "echo hi"])
        await client.wait_process_closed("p")
        with trio.fail_after(10):
            while "error" not in await client.read("p"):  # noqa: ASYNC110 (no event)
                await trio.sleep(0.05)
        assert os.listdir(spool_dir) == []
