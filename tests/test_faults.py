"""Faults a daemon meets in the field, each followed by a census: nothing leaks.

Every test counts the daemon's processes (its descendants, plus anything carrying the test's
marker), its open fds and its sessions (from its log) before the fault, and waits, bounded,
until the counts are back where they were. The daemon is a real child process on a real
socket, with short timers (TTL, retention, pings) so that teardown comes within the wait.
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from support import faults
from support.census import Census, Counts, marked, marked_env, new_marker
from support.rawws import open_raw
from support.servers import TRIO_EXEC, ServerHandle, launch
from support.wsclient import WireClient, connect

#: Short timers: a parked session ends within a second, a silent peer is dropped within one.
FLAGS = (
    "--log-level", "INFO", "--session-ttl", "0.5", "--retention", "0.5",
    "--ping-interval", "0.4", "--ping-timeout", "0.4",
)
SLEEPER = ["/bin/sleep", "1000"]


def start_daemon() -> ServerHandle:
    return launch(TRIO_EXEC, *FLAGS)


@pytest.fixture(scope="module")
def daemon() -> Iterator[ServerHandle]:
    handle = start_daemon()
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
async def census(daemon: ServerHandle) -> Census:
    """A census of `daemon` with a fresh marker, once the daemon is warm (every lazily opened
    fd is open) and quiet (no session, no process left by an earlier test)."""
    census = Census(daemon.pid, new_marker(), daemon.stderr_text)
    async with connect(daemon.url) as client:
        await client.handshake()
        await client.run("warm", ["/bin/true"], env=marked_env(census.marker))
        await client.request("fs/getMetadata", {"path": "/"})
    await census.wait_for(lambda c: c.processes == 0 and c.sessions == 0)
    return census


async def baseline(census: Census) -> Counts:
    counts = census.take()
    assert counts.processes == 0 and counts.sessions == 0, counts
    return counts


async def assert_back_to(census: Census, before: Counts) -> None:
    after = await census.settled(before)
    assert after == before, f"before the fault: {before}; after: {after}"


@asynccontextmanager
async def session(daemon: ServerHandle) -> AsyncIterator[WireClient]:
    async with connect(daemon.url) as client:
        await client.handshake()
        yield client


# --- the client goes away --------------------------------------------------------------------


async def test_client_gone_mid_request(daemon: ServerHandle, census: Census) -> None:
    before = await baseline(census)
    await faults.gone_mid_request(daemon.host, daemon.port, marked_env(census.marker), SLEEPER)
    await assert_back_to(census, before)


async def test_client_gone_mid_frame(daemon: ServerHandle, census: Census) -> None:
    before = await baseline(census)
    await faults.gone_mid_frame(daemon.host, daemon.port, marked_env(census.marker), SLEEPER)
    await assert_back_to(census, before)


async def test_client_gone_mid_upgrade(daemon: ServerHandle, census: Census) -> None:
    before = await baseline(census)
    await faults.gone_mid_upgrade(daemon.host, daemon.port)
    await assert_back_to(census, before)


async def test_client_gone_mid_initialize(daemon: ServerHandle, census: Census) -> None:
    before = await baseline(census)
    await faults.gone_mid_initialize(daemon.host, daemon.port)
    await assert_back_to(census, before)


async def test_half_open_peer_is_found_by_pings(daemon: ServerHandle, census: Census) -> None:
    """The peer's TCP connection stays open (no FIN, no RST) but nothing answers: only the
    unanswered ping tells; the session is then parked and ends, its process with it."""
    before = await baseline(census)
    async with open_raw(daemon.host, daemon.port) as raw:
        await faults.half_open_session(raw, marked_env(census.marker), SLEEPER)
        assert census.take().processes == 1
        await assert_back_to(census, before)
        assert "no pong within" in daemon.stderr_text()


# --- the child misbehaves --------------------------------------------------------------------


async def test_child_ignoring_sigterm_ends_with_its_session(
    daemon: ServerHandle, census: Census
) -> None:
    before = await baseline(census)
    script = "trap '' TERM; echo ready; exec /bin/sleep 1000"
    async with session(daemon) as client:
        await client.start_ok("stubborn", ["/bin/sh", "-c", script], env=marked_env(census.marker))
        await client.wait_output("stubborn", b"ready")
        await faults.vanish(client)
    await assert_back_to(census, before)


async def test_child_ignoring_sigterm_ends_with_the_daemon() -> None:
    marker = new_marker()
    handle = start_daemon()
    try:
        script = "trap '' TERM; echo ready; exec /bin/sleep 1000"
        async with session(handle) as client:
            await client.start_ok("stubborn", ["/bin/sh", "-c", script], env=marked_env(marker))
            await client.wait_output("stubborn", b"ready")
            assert len(marked(marker)) == 1
            handle.proc.send_signal(signal.SIGTERM)
            with trio.fail_after(15):
                while handle.proc.poll() is None:  # noqa: ASYNC110 (a child's exit has no trio event)
                    await trio.sleep(0.02)
    finally:
        handle.stop()
    assert handle.proc.returncode == 0, handle.stderr_text()
    assert marked(marker) == set()


async def test_grandchildren_holding_the_pipes(daemon: ServerHandle, census: Census) -> None:
    """The child exits at once; two grandchildren keep its stdout and stderr open. The exit
    is reported, and the grandchildren end with the session."""
    before = await baseline(census)
    script = "/bin/sleep 1000 & /bin/sleep 1000 & echo forked; exit 3"
    async with session(daemon) as client:
        await client.start_ok("parent", ["/bin/sh", "-c", script], env=marked_env(census.marker))
        exited = await client.wait_exited("parent")
        assert exited["exitCode"] == 3
        # the shell is kept unreaped (a zombie) while its group has members: only the two
        # grandchildren still carry the marker
        assert len(marked(census.marker)) == 2
        await faults.vanish(client)
    await assert_back_to(census, before)


async def test_child_closing_stdout_early(daemon: ServerHandle, census: Census) -> None:
    """stdout ends long before the process: stderr is still delivered whole, then the exit."""
    before = await baseline(census)
    script = "exec 1>&-; i=0; while [ $i -lt 200 ]; do echo line-$i >&2; i=$((i+1)); done; exit 7"
    async with session(daemon) as client:
        output, exited = await client.run(
            "early", ["/bin/sh", "-c", script], env=marked_env(census.marker)
        )
    assert exited["exitCode"] == 7
    assert output == b"".join(b"line-%d\n" % i for i in range(200))
    await assert_back_to(census, before)


async def test_child_flooding_stderr_loses_no_byte(daemon: ServerHandle, census: Census) -> None:
    before = await baseline(census)
    size = 32 << 20
    script = f"/usr/bin/head -c {size} /dev/urandom | /usr/bin/tee /dev/stderr | /usr/bin/sha256sum"
    async with session(daemon) as client:
        _, exited = await client.run(
            "flood", ["/bin/sh", "-c", script], env=marked_env(census.marker), within=60
        )
    assert exited["exitCode"] == 0
    flooded, digest = stream_bytes(client, "flood", "stderr"), stream_bytes(client, "flood", "stdout")
    assert len(flooded) == size
    assert digest.split()[0].decode() == hashlib.sha256(flooded).hexdigest()
    await assert_back_to(census, before)


def stream_bytes(client: WireClient, process_id: str, stream: str) -> bytes:
    chunks = [
        n["params"] for n in client.events(process_id)
        if n["method"] == "process/output" and n["params"]["stream"] == stream
    ]
    return b"".join(base64.b64decode(c["chunk"]) for c in sorted(chunks, key=lambda c: c["seq"]))


# --- the machine runs out ------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only: skipped where mounting is not allowed)."""
    mountpoint = tmp_path / "full"
    mountpoint.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mountpoint)],
        capture_output=True, text=True, timeout=30,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True, timeout=30)


async def write_file(client: WireClient, path: Path, size: int) -> object:
    data = base64.b64encode(os.urandom(size)).decode()
    return await client.request("fs/writeFile", {"path": str(path), "dataBase64": data}, within=30)


async def test_disk_full_on_write_file(
    daemon: ServerHandle, census: Census, full_disk: Path
) -> None:
    before = await baseline(census)
    async with session(daemon) as client:
        reply = await write_file(client, full_disk / "big", 2 << 20)
        assert reply["error"] == {
            "code": -32603, "message": "No space left on device (os error 28)"
        }, reply
        # like the reference's, a failed write leaves what fitted (the file is written in place);
        # removing it gives the space back, and a file that fits is then written whole
        assert 0 < (full_disk / "big").stat().st_size < 2 << 20
        reply = await client.request("fs/remove", {"path": str(full_disk / "big")})
        assert reply.get("result") == {}, reply
        reply = await write_file(client, full_disk / "small", 256 << 10)
        assert reply.get("result") == {}, reply
        assert (full_disk / "small").stat().st_size == 256 << 10
        await client.assert_usable()
    await assert_back_to(census, before)


async def test_file_size_limit_on_write_file(daemon: ServerHandle, census: Census, tmp_path: Path) -> None:
    """RLIMIT_FSIZE on the daemon: the write fails with EFBIG (SIGXFSZ must not kill it)."""
    before = await baseline(census)
    old = resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, (1 << 20, old[1]))
    try:
        async with session(daemon) as client:
            reply = await write_file(client, tmp_path / "big", 2 << 20)
            assert reply["error"] == {"code": -32603, "message": "File too large (os error 27)"}, reply
            await client.assert_usable()
    finally:
        resource.prlimit(daemon.pid, resource.RLIMIT_FSIZE, old)
    assert daemon.alive()
    await assert_back_to(census, before)


async def test_fd_exhaustion(daemon: ServerHandle, census: Census) -> None:
    """At the fd limit a spawn fails with the OS's reason and the connection goes on; once
    processes end, new connections and spawns work again and every fd is given back."""
    before = await baseline(census)
    old = resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE)
    env = marked_env(census.marker)
    async with session(daemon) as client:
        resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, (before.fds + 12, old[1]))
        try:
            refused = None
            for n in range(40):
                reply = await client.start(f"s{n}", SLEEPER, env=env)
                if "error" in reply:
                    refused = reply
                    break
            assert refused is not None, "the fd limit was never reached"
            assert refused["error"]["message"] == "No file descriptors available (os error 24)", refused
            await client.assert_usable()
            for k in range(n):
                reply = await client.request("process/terminate", {"processId": f"s{k}"})
                assert "result" in reply, reply
            for k in range(n):
                await client.wait_process_closed(f"s{k}")
        finally:
            resource.prlimit(daemon.pid, resource.RLIMIT_NOFILE, old)
        async with session(daemon) as second:
            await second.run("after", ["/bin/true"], env=env)
    await assert_back_to(census, before)
