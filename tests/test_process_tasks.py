"""What one running child costs the event loop: a pipe child runs in three tasks, its
supervisor (which also watches the exit) and one pump per output stream (`process/managed.py`);
1000 children mean 3000 tasks to wake and finish at their teardown, not 4000."""

from __future__ import annotations

import os

import trio
import trio.testing

from trio_exec.process.events import ProcessClosed, ProcessEvent
from trio_exec.process.spawn import SpawnRequest
from trio_exec.process.table import ProcessTable


def tasks_under(task: trio.lowlevel.Task) -> list[trio.lowlevel.Task]:
    out = [task]
    for nursery in task.child_nurseries:
        for child in nursery.child_tasks:
            out.extend(tasks_under(child))
    return out


async def test_a_running_pipe_child_costs_three_tasks() -> None:
    closed = trio.Event()

    async def emit(event: ProcessEvent) -> None:
        if isinstance(event, ProcessClosed):
            closed.set()

    async with trio.open_nursery() as nursery:
        table = ProcessTable(nursery, emit)
        request = SpawnRequest(argv=["/bin/sleep", "60"], cwd="/",
                               env={"PATH": os.environ["PATH"]}, tty=False)
        process = await table.start("p", request)
        process.publish()
        await trio.testing.wait_all_tasks_blocked()
        supervisors = [t for t in nursery.child_tasks if t.name.endswith("._supervise")]
        assert len(supervisors) == 1
        names = sorted(t.name.rsplit(".", 1)[1] for t in tasks_under(supervisors[0]))
        assert names == ["_pump", "_pump", "_supervise"]
        assert process.terminate()
        with trio.fail_after(10):
            await closed.wait()
        nursery.cancel_scope.cancel()
