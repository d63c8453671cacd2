"""`Handoff`: blocking work run in a worker thread for the price of the thread round trip.

Why: `trio.to_thread.run_sync` costs ~85 µs a call here, of which the thread round trip
itself (wake an idle thread, wake the loop with the result) is ~45 µs; the rest is its
general machinery (a copied context, a placeholder task for `trio.from_thread`, a message loop
that `fs/*` operations never use). For a `stat` that is most of an `fs/getMetadata`.

Rules — the same as `trio.to_thread.run_sync`, which this replaces for the filesystem:
- The work runs in a thread of trio's own thread cache (`trio.lowlevel.start_thread_soon`):
  an idle cached thread if there is one, else a new one. A job never waits behind another
  job, so an operation hung in the kernel (a dead NFS or FUSE mount) stalls only its caller.
- Each call holds one token of `limiter` from before the hand-off until its thread has
  finished the work, also when the caller gave up on it: a hung operation keeps its thread
  and its token, never anyone else's.
- The work gets no trio context: it must not call back into trio (`fs/` functions never do).
- Cancellation: with `abandon` (the default) a cancelled caller returns at once and the
  result, when it comes, is dropped (a thread already started cannot be stopped); without it,
  the caller waits for the work to finish and gets its result, the cancellation being
  delivered at its next checkpoint (for work whose result must not be lost, e.g. an open
  descriptor).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar, cast

import attrs
import outcome
import trio

T = TypeVar("T")


@attrs.define(eq=False)
class _Job:
    """One hand-off: the waiting task, until it has abandoned the work."""

    task: trio.lowlevel.Task
    abandoned: bool = False


@attrs.define(eq=False)
class Handoff:
    """Runs blocking functions in worker threads, at most `limiter`'s tokens at once."""

    limiter: trio.CapacityLimiter

    async def run(self, fn: Callable[..., T], *args: object, abandon: bool = True) -> T:
        """`fn(*args)` in a worker thread; its result or exception. Cancellation: see the
        module rule (`abandon`)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        job = _Job(trio.lowlevel.current_task())
        try:
            self.limiter.acquire_on_behalf_of_nowait(job)
        except trio.WouldBlock:
            await self.limiter.acquire_on_behalf_of(job)
        token = trio.lowlevel.current_trio_token()

        def back_in_trio(result: outcome.Outcome[T]) -> None:
            self.limiter.release_on_behalf_of(job)
            if not job.abandoned:
                trio.lowlevel.reschedule(job.task, result)

        def deliver(result: outcome.Outcome[T]) -> None:  # in the worker thread
            # the loop may be gone: then nobody waits for this result any more
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(back_in_trio, result)

        def abort(_: trio.lowlevel.RaiseCancelT) -> trio.lowlevel.Abort:
            if not abandon:
                return trio.lowlevel.Abort.FAILED
            job.abandoned = True
            return trio.lowlevel.Abort.SUCCEEDED

        try:
            trio.lowlevel.start_thread_soon(functools.partial(fn, *args), deliver)
        except BaseException:
            self.limiter.release_on_behalf_of(job)
            raise
        return cast(T, await trio.lowlevel.wait_task_rescheduled(abort))
