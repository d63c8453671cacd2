"""A background job in the command's own process group dies with its session and the daemon.

`sh -c 'sleep 1000 >/dev/null 2>&1 & echo $!'`: the shell prints the job's pid and exits; the
job holds none of the shell's pipes, so the process exits and closes normally while the job
lives on in the shell's process group. It must not outlive the session's expiry, nor the
daemon's SIGTERM, and `process/terminate` takes it along. The references of the 0.169 dialect
(codex 0.169 and 0.171) kill it at expiry and at SIGTERM too (their TTL is about 80 s, so the
expiry case against them is slow); they leave it running after `process/terminate` of the
exited command, which trio-exec does not (the contract: terminate kills the process group).

Each test waits for the job's death on a pidfd, which turns readable when the job dies: an
event, bounded, never a sleep.
"""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable, Iterator

import pytest
import trio
from support import servers
from support.servers import REFERENCES_0169_DIALECT, TRIO_EXEC, ServerHandle
from support.wsclient import WireClient, session

from .test_dialect import call, start169

BACKGROUND_JOB = ["/bin/sh", "-c", "sleep 1000 >/dev/null 2>&1 & echo $!"]
#: The references' detached-session TTL is about 80 s (docs/protocol-dialects.md §7.3).
REFERENCE_TTL = 80.0
TTL = 1.0
KINDS = [TRIO_EXEC, *(pytest.param(kind, marks=pytest.mark.reference)
                      for kind in REFERENCES_0169_DIALECT)]


def launch(kind: str, launch_server: Callable[..., ServerHandle], *flags: str) -> ServerHandle:
    if kind == TRIO_EXEC:
        return launch_server(kind, "--session-ttl", str(TTL), *flags)
    if not servers.reference_binary_of(kind).exists():
        if servers.skip_reference():
            pytest.skip("reference server skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(f"{kind} not found at {servers.reference_binary_of(kind)}")
    return launch_server(kind)


@pytest.fixture
def job_pidfds() -> Iterator[list[int]]:
    """pidfds of the background jobs a test started; any job still alive at the end is killed
    (a failing test leaves no `sleep 1000` behind)."""
    pidfds: list[int] = []
    try:
        yield pidfds
    finally:
        for pidfd in pidfds:
            if not select.select([pidfd], [], [], 0)[0]:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            os.close(pidfd)


async def start_background_job(client: WireClient, pidfds: list[int]) -> int:
    """Run the command until it is closed; the pidfd of the job it left behind."""
    reply = await start169(client, "job", BACKGROUND_JOB, "file:///tmp")
    assert reply["result"]["processId"] == "job", reply
    await client.wait_process_closed("job")
    pidfd = os.pidfd_open(int(client.output("job")))
    pidfds.append(pidfd)
    assert not select.select([pidfd], [], [], 0)[0], "the job died with its shell"
    return pidfd


async def wait_dead(pidfd: int, within: float) -> None:
    died = await trio.to_thread.run_sync(lambda: select.select([pidfd], [], [], within)[0])
    assert died == [pidfd], f"the background job still runs {within} s later"


@pytest.mark.timeout(240)  # the references' TTL
@pytest.mark.parametrize("kind", KINDS)
async def test_a_background_job_dies_when_its_session_expires(
    kind: str, launch_server: Callable[..., ServerHandle], job_pidfds: list[int]
) -> None:
    server = launch(kind, launch_server)
    async with session(server.url) as client:
        pidfd = await start_background_job(client, job_pidfds)
    # disconnected: the session is parked, then expires
    await wait_dead(pidfd, TTL + 10 if kind == TRIO_EXEC else REFERENCE_TTL + 20)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_background_job_dies_when_the_daemon_is_stopped(
    kind: str, launch_server: Callable[..., ServerHandle], job_pidfds: list[int]
) -> None:
    server = launch(kind, launch_server)
    async with session(server.url) as client:
        pidfd = await start_background_job(client, job_pidfds)
        server.proc.send_signal(signal.SIGTERM)
        await wait_dead(pidfd, 10)
    assert await trio.to_thread.run_sync(server.proc.wait, 10) == 0


async def test_a_background_job_outlives_its_forgotten_entry_until_the_session_ends(
    launch_server: Callable[..., ServerHandle], job_pidfds: list[int]
) -> None:
    """`--retention 0`: the closed process is forgotten at once (`process/read` no longer
    knows it) while its job still runs; the session's expiry still kills the job."""
    server = launch(TRIO_EXEC, launch_server, "--retention", "0")
    async with session(server.url) as client:
        pidfd = await start_background_job(client, job_pidfds)
        with trio.fail_after(10):  # the entry is forgotten just after the close
            while True:
                reply = await call(client, "process/read", {"processId": "job"})
                if "error" in reply:
                    break
                await trio.sleep(0.01)
        assert reply["error"]["message"] == "unknown process id job"
        assert not select.select([pidfd], [], [], 0)[0], "forgetting the entry killed the job"
    await wait_dead(pidfd, TTL + 10)


async def test_terminate_after_the_command_exited_kills_its_background_job(
    launch_server: Callable[..., ServerHandle], job_pidfds: list[int]
) -> None:
    server = launch(TRIO_EXEC, launch_server)
    async with session(server.url) as client:
        pidfd = await start_background_job(client, job_pidfds)
        reply = await call(client, "process/terminate", {"processId": "job"})
        assert reply["result"] == {"running": False}
        await wait_dead(pidfd, 10)
