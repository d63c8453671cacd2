"""Whether an exited leader's group still holds a job: one pass over /proc answers every group
asked about meanwhile (`process/group.py`), so many closes at once cost one pass, not one each.

Real children, each leading its own group: half leave a `sleep` behind in their group, half
leave nothing. Each leader is left a zombie (exit seen with `waitid(WNOWAIT)`) until its group
was killed, as the daemon does.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator

import pytest
import trio

from trio_exec.process import group

LEAVES_A_JOB = ["/bin/sh", "-c", "/bin/sleep 60 >/dev/null 2>&1 & exit 0"]
LEAVES_NOTHING = ["/bin/true"]


@pytest.fixture
def exited_leaders() -> Iterator[dict[int, bool]]:
    """{leader pid: whether its group keeps a job}, every leader exited and unreaped."""
    leaders: dict[int, bool] = {}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(20):
            argv = LEAVES_A_JOB if i % 2 else LEAVES_NOTHING
            proc = subprocess.Popen(argv, start_new_session=True, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            leaders[proc.pid] = bool(i % 2)
        for proc in procs:  # exited, still a zombie: its group id stays its own
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
        yield leaders
    finally:
        for proc in procs:
            if proc.returncode is None:
                group.kill(proc.pid, signal.SIGKILL)
            proc.wait()


async def test_one_pass_answers_every_group_asked_meanwhile(
    exited_leaders: dict[int, bool],
) -> None:
    scans = group.member_scans()
    answers: dict[int, bool] = {}

    async def ask(pid: int) -> None:
        answers[pid] = await group.has_members(pid)

    async with trio.open_nursery() as nursery:
        for pid in exited_leaders:
            nursery.start_soon(ask, pid)
    assert answers == exited_leaders
    # the first asker's pass began before the others asked; the next pass took all of them
    assert scans.passes == 2


async def test_a_withdrawn_question_leaves_the_others_answered(
    exited_leaders: dict[int, bool],
) -> None:
    answers: dict[int, bool] = {}
    first, withdrawn, *others = exited_leaders

    async def ask(pid: int) -> None:
        answers[pid] = await group.has_members(pid)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ask, first)  # its pass runs while the others are asked
        await trio.testing.wait_all_tasks_blocked()
        with trio.CancelScope() as scope:
            scope.cancel()
            await group.has_members(withdrawn)
        for pid in others:
            nursery.start_soon(ask, pid)
    assert answers == {pid: exited_leaders[pid] for pid in [first, *others]}
    assert group.member_scans()._asked == []


def test_a_pass_sees_only_other_members_of_the_groups_asked(
    exited_leaders: dict[int, bool],
) -> None:
    with_job = {pid for pid, job in exited_leaders.items() if job}
    assert group.groups_with_members(exited_leaders) == with_job
    assert group.groups_with_members(set()) == set()
