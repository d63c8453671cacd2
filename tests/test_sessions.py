"""Sessions that survive disconnects: park, TTL, resume, takeover — deterministic races.

Every test here runs on Trio's `MockClock` with rate 0 (the `mock_clock` fixture): virtual time
moves only when the test jumps it, so TTL boundaries are exact to the tick, while the
in-memory transport and the real child processes run as usual. Each test's docstring gives the
interleaving it scripts.
"""

from __future__ import annotations

import os
import select

import trio
import trio.lowlevel
import trio.testing
from support.daemon import alive, ended, in_memory_daemon, open_fds
from support.wsclient import unb64

from trio_exec.config import Config
from trio_exec.process.managed import EXIT_DRAIN
from trio_exec.server import Daemon
from trio_exec.session.session import Attachment

TTL = 30.0
EPSILON = 1e-6
SLEEPER = ["sleep", "1000"]


def process_pid(daemon: object, session_id: str, process_id: str) -> int:
    session = daemon.registry.get(session_id)  # type: ignore[attr-defined]
    assert session is not None
    [process] = [p for p in session.list_processes() if p.process_id == process_id]
    return process.pid


async def test_disconnect_parks_the_session_and_its_processes_keep_running(
    mock_clock: trio.testing.MockClock,
) -> None:
    """start sleep → TCP-like drop → the process is alive and the session parked, not ended."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("s", SLEEPER)
            pid = process_pid(daemon, sid, "s")
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        session = daemon.registry.get(sid)
        assert session is not None and session.attachment is None
        assert alive(pid)


async def test_resume_just_before_the_deadline_survives(mock_clock: trio.testing.MockClock) -> None:
    """drop at t0 → jump to t0 + ttl - ε → resume succeeds, same id, the process still runs."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("s", SLEEPER)
            pid = process_pid(daemon, sid, "s")
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(TTL - EPSILON)
        async with daemon.wire_link() as link:
            assert await link.client.handshake(resumeSessionId=sid) == sid
            reply = await link.client.read("s")
            assert reply["result"]["exited"] is False
            mock_clock.jump(TTL * 10)  # attached: no deadline runs
            await trio.testing.wait_all_tasks_blocked()
            assert alive(pid)


async def test_resume_exactly_at_the_deadline_expires_and_teardown_wins(
    mock_clock: trio.testing.MockClock,
) -> None:
    """drop at t0 → jump to exactly t0 + ttl and resume before the teardown task has run →
    `unknown session id`, then every process of the session is killed and reaped."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        fds_before = open_fds()
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("s", SLEEPER)
            pid = process_pid(daemon, sid, "s")
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        session = daemon.registry.get(sid)
        assert session is not None
        mock_clock.jump(TTL)
        # No checkpoint between the jump and the resume: the teardown has not run yet.
        assert session.is_expired(trio.current_time())
        async with daemon.wire_link() as link:
            reply = await link.client.initialize(resumeSessionId=sid)
            assert reply["error"] == {"code": -32600, "message": f"unknown session id {sid}"}
        await ended(session)  # the teardown reaps on the kernel's time: wait for its end
        assert daemon.registry.get(sid) is None
        assert not alive(pid)
        assert open_fds() == fds_before


async def test_registry_resume_at_the_boundary_is_decided_by_the_ttl_rule(
    mock_clock: trio.testing.MockClock,
) -> None:
    """Scripted without a connection: detach, jump to deadline - ε (resume wins), detach again,
    jump to the new deadline exactly (resume loses), with no checkpoint in between."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        first = Attachment("conn-a")
        session = await daemon.registry.create(first)
        session.detach(first)
        mock_clock.jump(TTL - EPSILON)
        second = Attachment("conn-b")
        assert daemon.registry.resume(session.session_id, second) is session
        assert session.detach(second)
        mock_clock.jump(TTL)
        try:
            daemon.registry.resume(session.session_id, Attachment("conn-c"))
        except Exception as exc:
            assert str(exc) == f"unknown session id {session.session_id}"
        else:
            raise AssertionError("a resume at the deadline must fail")
        await trio.testing.wait_all_tasks_blocked()
        assert daemon.registry.get(session.session_id) is None


async def test_old_connection_cleanup_after_new_attach_does_not_detach(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A attached → B resumes (takeover) → A's cleanup runs late: the session stays attached
    to B, which keeps getting its notifications."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        first = Attachment("conn-a")
        session = await daemon.registry.create(first)
        second = Attachment("conn-b")
        daemon.registry.resume(session.session_id, second)
        assert first.revoked.is_set()
        assert not session.detach(first)
        assert session.attachment is second


async def test_two_resumes_racing_for_one_session(mock_clock: trio.testing.MockClock) -> None:
    """parked session; connections B and C send `initialize {resume}` back to back → both
    succeed in arrival order; B is taken over by C and closed with 4000; C owns the session."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        async with daemon.wire_link() as b, daemon.wire_link() as c:
            b_id = await b.client.send_request("initialize", {"clientName": "b", "resumeSessionId": sid})
            c_id = await c.client.send_request("initialize", {"clientName": "c", "resumeSessionId": sid})
            assert (await b.client.reply_for(b_id))["result"]["sessionId"] == sid
            assert (await c.client.reply_for(c_id))["result"]["sessionId"] == sid
            reason = await b.client.wait_closed()
            assert reason.code == 4000
            await c.client.notify("initialized", {})
            await c.client.start_ok("p", ["echo", "owned by c"])
            await c.client.wait_output("p", b"owned by c")


async def test_output_produced_while_parked_is_read_back_gap_free(
    mock_clock: trio.testing.MockClock, tmp_path: object
) -> None:
    """start a producer gated on a file → drop → open the gate while parked → the producer
    writes 20000 lines with nobody attached → resume → `process/read afterSeq` from 0 returns
    every byte once, in order; no notification of the parked period is replayed."""
    gate = f"{tmp_path}/go"
    script = f"while [ ! -e {gate} ]; do sleep 0.01; done; seq 1 20000"
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("p", ["sh", "-c", script])
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        session = daemon.registry.get(sid)
        assert session is not None
        [process] = session.list_processes()
        await trio.Path(gate).touch()
        with trio.fail_after(30):
            while not process.log.closed:
                await process.read(process.log.last_seq, None, wait_ms=10**9)
        async with daemon.wire_link() as link:
            await link.client.handshake(resumeSessionId=sid)
            data, after = b"", 0
            while True:
                result = (await link.client.read("p", afterSeq=after))["result"]
                assert "retentionGap" not in result
                data += b"".join(unb64(c["chunk"]) for c in result["chunks"])
                if not result["chunks"]:
                    break
                after = result["nextSeq"] - 1
            assert result["closed"] and result["exitCode"] == 0
            assert data == b"".join(b"%d\n" % i for i in range(1, 20001))
            assert link.client.events("p") == []


async def test_disconnect_during_a_long_poll_cancels_the_read_not_the_process(
    mock_clock: trio.testing.MockClock,
) -> None:
    """long-poll `process/read waitMs` in flight → drop → the read is abandoned without a
    reply, the process lives; a resume reads it."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("s", SLEEPER)
            pid = process_pid(daemon, sid, "s")
            await link.client.send_request("process/read", {"processId": "s", "waitMs": 10**9})
            await trio.testing.wait_all_tasks_blocked()
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        assert alive(pid)
        async with daemon.wire_link() as link:
            await link.client.handshake(resumeSessionId=sid)
            assert (await link.client.read("s"))["result"]["exited"] is False


async def test_takeover_answers_the_old_long_poll_and_closes_the_old_connection(
    mock_clock: trio.testing.MockClock,
) -> None:
    """A long-polls → B resumes while A is still attached → A's read is answered -32600
    `session has been resumed by another connection`, then A is closed (4000); B owns the
    process and gets its notifications."""
    async with (
        in_memory_daemon(session_ttl=TTL) as daemon,
        daemon.wire_link() as a,
        daemon.wire_link() as b,
    ):
        sid = await a.client.handshake()
        await a.client.start_ok("cat", ["cat"], pipeStdin=True)
        poll = await a.client.send_request("process/read", {"processId": "cat", "waitMs": 10**9})
        await trio.testing.wait_all_tasks_blocked()
        assert await b.client.handshake(resumeSessionId=sid) == sid
        reply = await a.client.reply_for(poll)
        assert reply == {
            "error": {"code": -32600, "message": "session has been resumed by another connection"},
            "id": poll,
        }
        assert (await a.client.wait_closed()).code == 4000
        reply = await b.client.request("process/write", {"processId": "cat", "chunk": "aGkK"})
        assert reply["result"] == {"status": "accepted"}
        await b.client.wait_output("cat", b"hi\n")


async def test_ttl_expiry_while_a_process_is_mid_output(mock_clock: trio.testing.MockClock) -> None:
    """`yes` floods output → drop → jump past the TTL → the process group is killed and
    reaped, its fds closed, the session forgotten."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        fds_before = open_fds()
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("y", ["sh", "-c", "yes & yes; wait"])
            pid = process_pid(daemon, sid, "y")
            await link.client.wait_output("y", b"y\ny\n")
            await link.drop()
        await trio.testing.wait_all_tasks_blocked()
        session = daemon.registry.get(sid)
        assert session is not None
        mock_clock.jump(TTL)
        await ended(session)
        assert not alive(pid)
        assert open_fds() == fds_before


async def test_shutdown_kills_and_reaps_parked_and_attached_sessions(
    mock_clock: trio.testing.MockClock,
) -> None:
    """one parked and one attached session, each with a process → `stop()` → the attached
    connection gets Close 1001, both processes are gone, `run` returns."""
    pids = []
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("a", SLEEPER)
            pids.append(process_pid(daemon, sid, "a"))
            await link.drop()
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("b", SLEEPER)
            pids.append(process_pid(daemon, sid, "b"))
            daemon.stop()
            assert (await link.client.wait_closed()).code == 1001
    assert not any(alive(pid) for pid in pids)



async def test_ttl_expiry_kills_a_grandchild_that_outlived_its_parent(
    mock_clock: trio.testing.MockClock,
) -> None:
    """`sh` backgrounds a `sleep` that inherits stdout, prints its pid and exits → the
    grandchild holds the pipe, so the process is not closed → drop → jump to the TTL → the
    session's teardown SIGKILLs the whole process group: the grandchild does not outlive the
    session (its pidfd turns readable when it dies)."""
    async with in_memory_daemon(session_ttl=TTL) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("g", ["sh", "-c", "sleep 1000 & echo $!"])
            await link.client.wait_output("g", b"\n")
            grandchild = int(link.client.output("g"))
            [process] = daemon.registry.get(sid).list_processes()  # type: ignore[union-attr]
            await process._for_testing_draining.wait()  # the leader exited; its pipes are open
            mock_clock.jump(EXIT_DRAIN)  # the exit waits that long for the pipes, in vain
            await link.client.wait_exited("g")
            await link.drop()
        pidfd = os.pidfd_open(grandchild)
        try:
            await trio.testing.wait_all_tasks_blocked()
            session = daemon.registry.get(sid)
            assert session is not None
            mock_clock.jump(TTL)
            await ended(session)
            # Any kill happened before the session ended; the death itself is the
            # kernel's, so wait for it in real time (MockClock does not move here), bounded.
            died = await trio.to_thread.run_sync(lambda: select.select([pidfd], [], [], 5)[0])
            assert died == [pidfd], "the grandchild outlived its session"
        finally:
            os.close(pidfd)


async def test_shutdown_does_not_wait_for_a_peer_stuck_in_the_handshake(
    mock_clock: trio.testing.MockClock,
) -> None:
    """a peer connects and sends half a request head, then nothing → `stop()` → the daemon
    ends at once, without the head timeout or the shutdown grace (virtual time never moves)."""
    config = Config(ping_interval=None)
    daemon = Daemon(config)
    client_end, server_end = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(daemon.run, [])
        nursery.start_soon(daemon.handle_stream, server_end)
        await client_end.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        daemon.stop()
    assert trio.current_time() == started
    await client_end.aclose()
