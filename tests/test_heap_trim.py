"""Giving the free heap back (`process/heap.py`): glibc's malloc_trim, coalesced per interval."""

from __future__ import annotations

import platform
from collections.abc import Callable

import pytest
import trio
import trio.testing

from trio_exec.process import heap


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_malloc_trim_is_found_and_runs_on_glibc() -> None:
    assert heap.available
    assert heap.trim() in (True, False)


async def test_requests_are_coalesced_and_the_last_is_always_served(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trimmed_at: list[float] = []

    def trim() -> bool:
        trimmed_at.append(trio.current_time())
        return True

    async def inline(function: Callable[[], bool]) -> bool:
        return function()

    trimmer = heap.HeapTrimmer(interval=1.0, trim=trim, offload=inline)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trimmer.run)
        trimmer.request()
        await trio.sleep(0.1)
        assert trimmed_at == [0.0]  # the first request at once
        for _ in range(50):  # a burst of forgets within the interval
            trimmer.request()
            await trio.sleep(0.01)
        await trio.sleep(5)
        assert trimmed_at == [0.0, 1.0]  # one more, at the end of the interval
        quiet = trio.current_time()
        trimmer.request()  # after a quiet spell: at once again
        await trio.testing.wait_all_tasks_blocked()
        assert trimmed_at == [0.0, 1.0, quiet]
        nursery.cancel_scope.cancel()
    assert trimmer.trims == 3


async def test_the_daemon_trims_in_a_worker_thread() -> None:
    threads: list[bool] = []

    def trim() -> bool:
        threads.append(_in_worker())
        return True

    trimmer = heap.HeapTrimmer(trim=trim)
    trimmer.request()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trimmer.run)
        with trio.fail_after(10):
            while not trimmer.trims:  # noqa: ASYNC110 (a worker thread's end)
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert threads == [True]


def _in_worker() -> bool:
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return True
    return False
