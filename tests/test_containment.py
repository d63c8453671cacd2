"""Containment: with a delegated cgroup v2 subtree nothing a command started outlives its
teardown, `setsid` or double fork; without one, the daemon says so and kills groups only.

The daemon runs as a child of the test inside a cgroup the test creates under its own cgroup
(found like the daemon finds its own: the mount table and the `0::` line), or, where that is
not allowed, under `systemd-run --user --scope -p Delegate=yes`; the tests skip with the reason
where neither works. Each escapee is watched on a pidfd, which turns readable when it dies: an
event, bounded, never a sleep.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import attrs
import pytest
import trio
from support.servers import ServerHandle, trio_exec_python
from support.wsclient import WireClient, connect, session

from trio_exec.process import cgroup

#: Starts three escapees, prints their pids on one line, then sleeps (`stay`) or exits (`go`):
#: a `setsid` child, a double-forked `setsid` grandchild (its parent exits), and a child in a
#: process group of its own. None holds the command's pipes, so none is in its process group.
ESCAPER = r"""
import os, sys, time
def escapee(double, new_session=True):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        if new_session:
            os.setsid()
        else:
            os.setpgid(0, 0)
        if double and os.fork():
            os._exit(0)
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.write(w, b"%d" % os.getpid())
        os.execv("/bin/sleep", ["sleep", "1000"])
    os.close(w)
    if double:
        os.waitpid(pid, 0)
    data = b""
    while chunk := os.read(r, 64):
        data += chunk
    return int(data)
pids = [escapee(False), escapee(True), escapee(False, new_session=False)]
print(" ".join(map(str, pids)), flush=True)
if sys.argv[1] == "stay":
    time.sleep(1000)
"""
TTL = 0.5


@attrs.frozen
class Placement:
    """How to start a daemon in a delegated cgroup: join `directory`, or wrap in `prefix`."""

    directory: Path | None
    prefix: tuple[str, ...] = ()


def _systemd_scope() -> Placement | None:
    prefix = ("systemd-run", "--user", "--scope", "--quiet", "-p", "Delegate=yes", "--")
    try:
        probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return Placement(None, prefix) if probe.returncode == 0 else None


@pytest.fixture
def delegated() -> Iterator[Placement]:
    """A cgroup the test made under its own (removed afterwards), else a systemd scope."""
    own = cgroup.locate(Path("/proc/self/mountinfo").read_text(),
                        Path("/proc/self/cgroup").read_text())
    reason = "no cgroup v2 hierarchy holds the test process"
    if own is not None:
        directory = own / f"trio-exec-test-{uuid.uuid4().hex[:8]}"
        try:
            directory.mkdir()
        except OSError as exc:
            reason = f"cannot create a cgroup under {own}: {exc.strerror}"
        else:
            try:
                if not (directory / "cgroup.kill").exists():
                    pytest.skip("cgroup.kill is missing (kernel older than 5.14)")
                yield Placement(directory)
            finally:
                _remove_tree(directory)
            return
    scope = _systemd_scope()
    if scope is None:
        pytest.skip(f"{reason}, and `systemd-run --user --scope -p Delegate=yes` does not work")
    yield scope


def _remove_tree(directory: Path) -> None:
    for child in sorted(directory.rglob("*/"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir():
            with suppress(OSError):
                (child / "cgroup.kill").write_text("1")
            with suppress(OSError):
                child.rmdir()
    with suppress(OSError):
        (directory / "cgroup.kill").write_text("1")
    for _ in range(500):
        try:
            directory.rmdir()
            return
        except OSError:
            select.select([], [], [], 0.01)  # the killed members are exiting


@attrs.define
class Daemon:
    """A daemon child; `url` is set once it printed it."""

    proc: subprocess.Popen[bytes]
    url: str
    stderr: Path

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


def _spawn_in(place: Placement, argv: list[str], **options: object) -> subprocess.Popen[bytes]:
    """Start `argv` inside the placement: it joins the cgroup before it execs."""
    argv = [*place.prefix, *argv]
    if place.directory is None:
        return subprocess.Popen(argv, **options)  # type: ignore[call-overload, no-any-return]
    procs_fd = os.open(place.directory / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def join() -> None:
        os.write(procs_fd, b"0")

    try:
        return subprocess.Popen(argv, preexec_fn=join, **options)  # type: ignore[call-overload, no-any-return]
    finally:
        os.close(procs_fd)


def _start_daemon(place: Placement, flags: tuple[str, ...]) -> Daemon:
    with tempfile.NamedTemporaryFile(prefix="contained-", suffix=".log", delete=False) as err:
        stderr = Path(err.name)
        proc = _spawn_in(place, [trio_exec_python(), "-m", "trio_exec", "serve", "--listen",
                                 "ws://127.0.0.1:0", "--log-level", "INFO", *flags],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err,
                         start_new_session=True)
    return Daemon(proc, "", stderr)


def _stop_daemon(daemon: Daemon) -> None:
    if daemon.proc.poll() is None:
        daemon.proc.kill()
    daemon.proc.wait()
    assert daemon.proc.stdout is not None
    daemon.proc.stdout.close()
    daemon.stderr.unlink()


@asynccontextmanager
async def contained_daemon(place: Placement, *flags: str) -> AsyncIterator[Daemon]:
    daemon = _start_daemon(place, flags)
    try:
        assert daemon.proc.stdout is not None
        line = await trio.to_thread.run_sync(daemon.proc.stdout.readline)
        assert line.startswith(b"ws://"), daemon.log()
        daemon.url = line.decode().strip()
        yield daemon
    finally:
        await trio.to_thread.run_sync(_stop_daemon, daemon)


@pytest.fixture
def escapee_pidfds() -> Iterator[list[int]]:
    """pidfds of the escapees; one still alive at the end is killed (nothing left behind)."""
    pidfds: list[int] = []
    try:
        yield pidfds
    finally:
        for pidfd in pidfds:
            if not select.select([pidfd], [], [], 0)[0]:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


async def start_escaper(client: WireClient, mode: str, pidfds: list[int]) -> None:
    await client.start_ok("esc", [sys.executable, "-c", ESCAPER, mode])
    line = await client.wait_output("esc", b"\n")
    for pid in line.split():
        pidfds.append(os.pidfd_open(int(pid)))
    assert not select.select(pidfds, [], [], 0)[0], "an escapee died early"


async def wait_all_dead(pidfds: list[int], within: float = 10) -> None:
    with trio.move_on_after(within):
        for pidfd in pidfds:
            await trio.lowlevel.wait_readable(pidfd)
    alive = [fd for fd in pidfds if not select.select([fd], [], [], 0)[0]]
    assert not alive, f"{len(alive)} of {len(pidfds)} escapees still run {within} s later"


async def test_capabilities_say_containment_and_the_child_runs_in_its_cgroup(
    delegated: Placement,
) -> None:
    async with contained_daemon(delegated) as daemon, connect(daemon.url) as client:
        reply = await client.initialize("probe")
        assert reply["result"]["capabilities"]["containment"] is True
        await client.notify("initialized", {})
        output, exited = await client.run("cg", ["/bin/cat", "/proc/self/cgroup"])
        line = next(x for x in output.decode().splitlines() if x.startswith("0::"))
        name = line.rsplit("/", 1)[1]
        assert name.startswith(f"proc-{daemon.proc.pid}-"), line
        assert exited["exitCode"] == 0
        assert "containment on" in daemon.log()


async def test_terminate_kills_every_escapee(
    delegated: Placement, escapee_pidfds: list[int]
) -> None:
    async with contained_daemon(delegated) as daemon, session(daemon.url) as client:
        await start_escaper(client, "stay", escapee_pidfds)
        reply = await client.request("process/terminate", {"processId": "esc"})
        assert reply["result"] == {"running": True}
        await wait_all_dead(escapee_pidfds)


async def test_session_expiry_kills_every_escapee_also_after_the_command_exited(
    delegated: Placement, escapee_pidfds: list[int]
) -> None:
    async with contained_daemon(delegated, "--session-ttl", str(TTL)) as daemon:
        async with session(daemon.url) as client:
            await start_escaper(client, "go", escapee_pidfds)
            await client.wait_process_closed("esc")
            assert not select.select(escapee_pidfds, [], [], 0)[0], "killed at close"
        await wait_all_dead(escapee_pidfds, TTL + 10)  # disconnected: parked, then expired


async def test_sigterm_kills_every_escapee(
    delegated: Placement, escapee_pidfds: list[int]
) -> None:
    async with contained_daemon(delegated) as daemon, session(daemon.url) as client:
        await start_escaper(client, "stay", escapee_pidfds)
        daemon.proc.send_signal(signal.SIGTERM)
        await wait_all_dead(escapee_pidfds)
        assert await trio.to_thread.run_sync(daemon.proc.wait, 10) == 0


async def test_per_process_limits_are_enforced_or_refused_naming_the_controller(
    delegated: Placement,
) -> None:
    if delegated.directory is None:
        pytest.skip("needs a cgroup the test made (to read its controllers)")
    available = (delegated.directory / "cgroup.controllers").read_text().split()
    argv = [trio_exec_python(), "-m", "trio_exec", "serve", "--listen", "ws://127.0.0.1:0",
            "--process-pids-max", "4"]
    if "pids" not in available:
        refused = _spawn_in(delegated, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _, err = await trio.to_thread.run_sync(refused.communicate)
        assert refused.returncode == 2
        assert b"pids controller" in err, err
        return
    async with contained_daemon(delegated, "--process-pids-max", "4") as daemon, \
            session(daemon.url) as client:
        script = "for i in 1 2 3 4 5 6; do sleep 5 & done; wait"
        output, _ = await client.run(
            "bomb", ["/bin/sh", "-c", script + " 2>&1"], within=30)
        assert b"fork" in output.lower() or b"resource" in output.lower(), output


def test_the_v2_mount_and_the_own_cgroup_come_from_the_tables_not_from_assumptions() -> None:
    hybrid = (
        "25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
        "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw\n"
        "27 25 0:25 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
    )
    proc = "4:memory:/system.slice/x.service\n0::/system.slice/x.service\n"
    assert cgroup.unified_mounts(hybrid) == [("/", "/sys/fs/cgroup/unified")]
    assert cgroup.own_cgroup(proc) == "/system.slice/x.service"
    # a mount of a subtree (a container's view): the path is taken relative to its root
    with tempfile.TemporaryDirectory() as mount:
        Path(mount, "x.service").mkdir()
        escaped = mount.replace(" ", "\\040")
        inner = f"30 1 0:24 /system.slice {escaped} rw - cgroup2 cgroup2 rw\n"
        assert cgroup.locate(inner, proc) == Path(mount, "x.service")
        assert cgroup.locate(inner, "0::/elsewhere\n") is None
    assert cgroup.locate(hybrid, "1:cpu:/\n") is None  # in no v2 hierarchy


async def test_without_delegation_the_daemon_says_why_and_keeps_the_group_kill(
    tmp_path: Path,
) -> None:
    """A daemon in the hierarchy's root (or in a cgroup it may not write) is not contained."""
    mount = tmp_path / "unified"
    mount.mkdir()
    mountinfo = f"26 25 0:24 / {mount} rw - cgroup2 cgroup2 rw\n"
    detection = cgroup.detect(mountinfo=mountinfo, proc_cgroup="0::/\n")
    assert not detection.active
    assert "root of the cgroup v2 hierarchy" in detection.reason
    with pytest.raises(cgroup.ContainmentError, match="delegated cgroup v2 subtree"):
        cgroup.detect(cgroup.Limits(pids_max=4), mountinfo=mountinfo, proc_cgroup="0::/\n")


async def test_exited_reports_the_resource_usage_of_the_command(server: ServerHandle) -> None:
    """CPU and peak RSS of the command, its waited-for children included (a child allocates
    and touches 64 MiB and burns CPU); the reference reports none."""
    script = ("import subprocess, sys\n"
              "subprocess.run([sys.executable, '-c', 'b = bytearray(64 << 20)\\n"
              "for i in range(0, len(b), 4096): b[i] = 1\\nsum(range(3_000_000))'])\n")
    async with session(server.url) as client:
        _, exited = await client.run("usage", [sys.executable, "-c", script], within=30)
    assert exited["exitCode"] == 0
    if server.is_reference:
        assert "resourceUsage" not in exited
        return
    usage = exited["resourceUsage"]
    assert set(usage) == {"userCpuUsec", "systemCpuUsec", "maxRssBytes"}
    assert usage["maxRssBytes"] >= 64 << 20
    assert usage["userCpuUsec"] + usage["systemCpuUsec"] >= 10_000
    assert usage["userCpuUsec"] < 60_000_000
