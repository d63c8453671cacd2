"""`fs/handoff.py`: the worker-thread hand-off keeps `trio.to_thread`'s rules.

Real threads, blocked on `threading.Event`s the test releases: a hung operation stalls only
its caller, holds its limiter token until its thread is done (also when abandoned), a
cancelled caller returns at once (abandon) or gets the result (no abandon), and errors come
back as raised in the thread.
"""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from trio_exec.fs.handoff import Handoff

LIMIT = 4


def _blocker() -> tuple[threading.Event, threading.Event, object]:
    """(started, release, fn): fn sets `started`, then blocks until `release`."""
    started, release = threading.Event(), threading.Event()

    def fn() -> str:
        started.set()
        release.wait(30)
        return "released"

    return started, release, fn


async def _wait_thread_event(event: threading.Event) -> None:
    await trio.to_thread.run_sync(event.wait, 30)


async def test_result_and_exception_come_back() -> None:
    handoff = Handoff(trio.CapacityLimiter(LIMIT))
    with trio.fail_after(10):
        assert await handoff.run(lambda a, b: a + b, 2, 3) == 5
        with pytest.raises(FileNotFoundError):
            await handoff.run(open, "/nonexistent/for/sure")
    assert handoff.limiter.borrowed_tokens == 0


async def test_a_hung_call_never_stalls_another() -> None:
    handoff = Handoff(trio.CapacityLimiter(LIMIT))
    started, release, hung = _blocker()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run, hung)
            await _wait_thread_event(started)
            for _ in range(20):  # the hung one holds one thread; these get others
                assert await handoff.run(lambda: "quick") == "quick"
            assert handoff.limiter.borrowed_tokens == 1
            release.set()
    assert handoff.limiter.borrowed_tokens == 0


async def test_an_abandoned_call_returns_at_once_and_keeps_its_token_until_done() -> None:
    handoff = Handoff(trio.CapacityLimiter(1))
    started, release, hung = _blocker()
    with trio.fail_after(10):
        with trio.CancelScope() as scope:

            async def cancel_once_started() -> None:
                await _wait_thread_event(started)
                scope.cancel()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(cancel_once_started)
                await handoff.run(hung)
                pytest.fail("not cancelled")
        assert scope.cancelled_caught
        # abandoned, but its thread still runs: the token stays taken until it ends
        assert handoff.limiter.borrowed_tokens == 1
        release.set()
        async with handoff.limiter:  # the only token: free once the thread's end is seen
            pass


async def test_without_abandon_a_cancelled_caller_gets_the_result_first() -> None:
    handoff = Handoff(trio.CapacityLimiter(LIMIT))
    started, release, hung = _blocker()
    got: list[str] = []
    scope = trio.CancelScope()

    async def caller() -> None:
        with scope:
            got.append(await handoff.run(hung, abandon=False))
            await trio.lowlevel.checkpoint()  # the cancellation lands here
            pytest.fail("not cancelled")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(caller)
            await _wait_thread_event(started)
            scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert not got  # still waiting for its thread, cancelled or not
            release.set()
    assert scope.cancelled_caught
    assert got == ["released"]
    assert handoff.limiter.borrowed_tokens == 0


async def test_the_limiter_bounds_the_threads() -> None:
    handoff = Handoff(trio.CapacityLimiter(1))
    started, release, hung = _blocker()
    order: list[str] = []
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run, hung)
            await _wait_thread_event(started)

            async def second() -> None:
                order.append(await handoff.run(lambda: "second"))

            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            assert order == []  # waits for the only token
            assert handoff.limiter.statistics().tasks_waiting == 1
            release.set()
    assert order == ["second"]


async def test_a_cancelled_wait_for_a_token_takes_none() -> None:
    handoff = Handoff(trio.CapacityLimiter(1))
    started, release, hung = _blocker()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(handoff.run, hung)
            await _wait_thread_event(started)
            with trio.move_on_after(0.01):
                await handoff.run(lambda: "never")
            assert handoff.limiter.borrowed_tokens == 1
            release.set()
    assert handoff.limiter.borrowed_tokens == 0
