"""Long-polls are woken by the events they wait for, not by every event of their process.

1000 long-poll reads wait past a seq the process will not reach; the process then prints. A
trio instrument counts the steps the waiting tasks take: none may run (the old daemon woke
every one of them on every event, a herd that cost every client latency in proportion to the
number of waiting reads). Then the process ends and every one of them returns, closed.
"""

from __future__ import annotations

import trio
import trio.testing

from trio_exec.process.spawn import SpawnRequest
from trio_exec.process.table import ProcessTable

POLLS = 1000
FAR = 10**9


class StepCounter(trio.abc.Instrument):
    def __init__(self, name: str) -> None:
        self.name = name
        self.steps = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.steps += 1


async def test_an_event_wakes_only_the_long_polls_it_satisfies() -> None:
    async def notify(payload: bytes) -> None:
        del payload

    results: list[bool] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            table = ProcessTable(nursery, notify, retention=0)
            request = SpawnRequest(argv=["cat"], cwd="/", env={"PATH": "/usr/bin:/bin"},
                                   tty=False, pipe_stdin=True)
            process = await table.start("cat", request)
            process.publish()

            async def far_poll() -> None:
                result = await process.read(FAR, None, 600_000)
                results.append(result.closed)

            for _ in range(POLLS):
                nursery.start_soon(far_poll, name="far-poll")
            await trio.testing.wait_all_tasks_blocked()
            counter = StepCounter("far-poll")
            trio.lowlevel.add_instrument(counter)
            try:
                for line in (b"one\n", b"two\n", b"three\n"):
                    seen = process.log.last_seq
                    assert await process.write(line) == "accepted"
                    witness = await process.read(seen, None, 10_000)
                    assert witness.chunks
                    await trio.testing.wait_all_tasks_blocked()
                assert counter.steps == 0, f"{counter.steps} wake-ups of reads waiting past seq {FAR}"
            finally:
                trio.lowlevel.remove_instrument(counter)
            assert process.terminate()
    assert results == [True] * POLLS
