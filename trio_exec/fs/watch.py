"""`fs/watchMissing` (0.169): one-shot watches for paths that appear or disappear.

Rules (docs/protocol-dialects.md §5.4, the 0.169 reference's observed behaviour):
- A session has at most one watch: a request with another `watchId` replaces the current
  watch (which then never fires), even when the new one is refused because a path exists (an
  empty `missing` changes nothing); an id that was ever
  accepted in the session answers `watching: false` and leaves the current watch alone
  (observed on the reference).
- `{watchId, missing: [path…], present: path|null}` → `{watching}`. `watching` is false, and
  nothing is ever sent, when the id is the one already watched, when `missing` is empty, or
  when a "missing" path already exists.
- The watch fires, exactly once, when a `missing` path or any missing directory on the way to
  it appears (creating `a/` fires a watch on `a/b/c`), or when the `present` path disappears:
  a `MissingChanged` event goes to the session, which sends it as `fs/missingChanged
  {watchId}` (`rpc/notifications.py`; dropped while it is parked). The watch is
  then gone, and its id may be used again. Unrelated entries never fire it.
- Detection is by polling every `POLL_INTERVAL` seconds (a few `lstat`s per watch, in a worker
  thread): the notification follows the change within one interval (mean half of it).
  Watches live in the session's nursery and end with the session.

Test event: `_for_testing_polled` is set each time a poll has compared its snapshot and not
fired, then replaced by a fresh one (tests wait on it to prove that a change did not fire).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

POLL_INTERVAL = 0.1


@attrs.frozen(kw_only=True)
class MissingChanged:
    """The watch `watch_id` fired."""

    watch_id: int


EmitChange = Callable[[MissingChanged], Awaitable[None]]


def _exists(path: str) -> bool:
    return os.path.lexists(path)


def existing_depth(path: str) -> int:
    """How many leading components of absolute `path` exist (all of them: it exists)."""
    parts = [part for part in path.split("/") if part]
    current = ""
    for depth, part in enumerate(parts):
        current += "/" + part
        if not _exists(current):
            return depth
    return len(parts)


@attrs.frozen
class Snapshot:
    depths: tuple[int, ...]
    present: bool | None

    @classmethod
    def take(cls, missing: Sequence[str], present: str | None) -> Snapshot:
        return cls(
            tuple(existing_depth(path) for path in missing),
            None if present is None else _exists(present),
        )

    def changed_since(self, before: Snapshot) -> bool:
        grew = any(now > then for now, then in zip(self.depths, before.depths, strict=True))
        return grew or (before.present is True and self.present is False)


@attrs.define(eq=False)
class MissingWatches:
    """The watch of one session. Invariant: `_current` is (id, the scope of its polling task)
    while that task runs, else None."""

    _nursery: trio.Nursery
    _emit: EmitChange
    _current: tuple[int, trio.CancelScope] | None = None
    _used: set[int] = attrs.field(factory=set)
    _for_testing_polled: trio.Event = attrs.field(factory=trio.Event)

    async def watch(self, watch_id: int, missing: list[str], present: str | None) -> bool:
        if watch_id in self._used or not missing:
            return False
        if self._current is not None:
            self._current[1].cancel()
            self._current = None
        baseline = await trio.to_thread.run_sync(Snapshot.take, missing, present)
        if any(depth == _component_count(path) for depth, path in zip(
            baseline.depths, missing, strict=True
        )):
            return False
        if self._current is not None:  # a racing request registered meanwhile: it wins
            return False
        scope = trio.CancelScope()
        self._current = (watch_id, scope)
        self._used.add(watch_id)
        self._nursery.start_soon(self._run, scope, missing, present, baseline)
        return True

    async def _run(
        self, scope: trio.CancelScope, missing: list[str], present: str | None, baseline: Snapshot
    ) -> None:
        with scope:
            await self._poll(missing, present, baseline)
        if scope.cancelled_caught or self._current is None or self._current[1] is not scope:
            return
        watch_id = self._current[0]
        self._current = None
        await self._emit(MissingChanged(watch_id=watch_id))

    async def _poll(self, missing: list[str], present: str | None, baseline: Snapshot) -> None:
        while True:
            await trio.sleep(POLL_INTERVAL)
            now = await trio.to_thread.run_sync(Snapshot.take, missing, present)
            if now.changed_since(baseline):
                return
            self._for_testing_polled.set()
            self._for_testing_polled = trio.Event()
            # a directory removed on the way lowers the baseline: re-creating it fires
            baseline = Snapshot(
                tuple(min(a, b) for a, b in zip(now.depths, baseline.depths, strict=True)),
                baseline.present,
            )


def _component_count(path: str) -> int:
    return len([part for part in path.split("/") if part])
