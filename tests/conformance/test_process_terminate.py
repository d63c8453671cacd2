"""``process/terminate`` (protocol.md §10, §11; contract §1 and §2 #11)."""

from __future__ import annotations

import contextlib
import os
import select
from pathlib import Path

import pytest
import trio
from support.expect import exit_members, signal_exit
from support.servers import ServerHandle
from support.wsclient import WireClient, session

TTY_MODES = pytest.mark.parametrize("tty", [False, True], ids=["pipe", "tty"])


def process_state(pid: int) -> str | None:
    """The /proc state letter of ``pid``, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return text[text.rindex(")") + 2]


def is_alive(pid: int) -> bool:
    return process_state(pid) not in (None, "Z", "X")


async def terminate(client: WireClient, process_id: str) -> object:
    return await client.result("process/terminate", {"processId": process_id})


@TTY_MODES
async def test_terminate_a_running_process(server: ServerHandle, tty: bool) -> None:
    async with session(server.url) as client:
        # wait until the program runs: the reference reports -1 instead of 1 for a tty child
        # killed before it got to exec
        await client.start_ok("sleeper", ["/bin/sh", "-c", "echo ready; exec sleep 30"],
                              tty=tty)
        await client.wait_output("sleeper", b"ready")
        assert await terminate(client, "sleeper") == {"running": True}
        events = await client.wait_process_closed("sleeper")
        exited = next(e["params"] for e in events if e["method"] == "process/exited")
        expected = signal_exit(server, tty=tty, signal="SIGKILL")
        assert exit_members(exited) == expected
        read = (await client.read("sleeper"))["result"]
        assert {k: read[k] for k in expected} == expected
        assert (read["exited"], read["closed"]) == (True, True)
        assert await terminate(client, "sleeper") == {"running": False}


async def test_terminate_of_an_exited_or_unknown_process_is_not_running(
    server: ServerHandle,
) -> None:
    async with session(server.url) as client:
        await client.run("done", ["/bin/true"])
        assert await terminate(client, "done") == {"running": False}
        assert await terminate(client, "never-started") == {"running": False}
        assert await terminate(client, "") == {"running": False}


async def test_terminate_kills_the_whole_process_group_with_sigkill(
    server: ServerHandle, tmp_path: Path
) -> None:
    """The traps never run; background children die; a child that left the group with
    setsid survives. (The escaped child reports its pid only after its setsid.)"""
    away_file = tmp_path / "away.pid"
    script = (
        'trap "echo trapped" TERM INT HUP; '
        "sleep 30 & echo bg=$!; "
        f"setsid sh -c 'echo $$ > {away_file}; exec sleep 30' </dev/null >/dev/null 2>&1 & "
        f"until [ -s {away_file} ]; do sleep 0.01; done; echo away=$(cat {away_file}); "
        "wait"
    )
    async with session(server.url) as client:
        await client.start_ok("group", ["/bin/sh", "-c", script])
        output = await client.wait_output("group", b"away=")
        output = await client.wait_for(
            lambda: (out := client.output("group")).endswith(b"\n") and out,
            what="both pids",
        )
        pids = dict(line.split("=") for line in output.decode().split())
        background, away = int(pids["bg"]), int(pids["away"])
        # pidfds become readable when the process exits: the kernel's event, no polling
        background_fd, away_fd = os.pidfd_open(background), os.pidfd_open(away)
        try:
            assert is_alive(background) and is_alive(away)
            assert await terminate(client, "group") == {"running": True}
            await client.wait_process_closed("group")
            assert b"trapped" not in client.output("group")
            with trio.fail_after(5):
                await trio.lowlevel.wait_readable(background_fd)
            assert select.select([away_fd], [], [], 0)[0] == [], "the escaped child died"
            assert is_alive(away)
        finally:
            os.close(background_fd)
            os.close(away_fd)
            for pid in (background, away):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
