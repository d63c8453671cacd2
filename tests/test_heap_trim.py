"""Giving the free heap back (`process/heap.py`): glibc's malloc_trim, coalesced per interval."""

from __future__ import annotations

import platform

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

    trimmer = heap.HeapTrimmer(interval=1.0, trim=trim)
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
