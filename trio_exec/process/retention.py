"""The daemon-wide budget of retained output (pure: no trio, no I/O).

Rules:
- Every output log of every session draws on one budget of `limit` bytes, on top of each log's
  own cap (`outputlog.py`).
- When output would take the budget over its limit, retained output is evicted until it fits:
  first the whole output of closed processes, oldest close first (their clients have had the
  output notified and the close reported); then, when no closed process retains any, the oldest
  chunks of the running process that retains the most (the biggest consumer pays; a quiet
  process's recent output stays).
- Evicted output is reported like any dropped output: a read that asks for it gets the
  `retentionGap` member (`OutputLog.read`).
- A log leaves the budget when its process is forgotten (`discard`), giving its bytes back.
"""

from __future__ import annotations

from typing import Protocol

import attrs

DEFAULT_MAX_RETAINED_BYTES = 256 * 1024 * 1024


class OutputLog(Protocol):
    """What the budget needs of an output log (`outputlog.OutputLog`)."""

    @property
    def retained_bytes(self) -> int: ...

    def drop_oldest(self) -> None: ...


@attrs.define(eq=False)
class RetentionBudget:
    """Invariants: `used` is the sum of `retained_bytes` of every log in `_open` and
    `_closed`; `_closed` is in the order the logs were closed (a dict used as ordered set)."""

    limit: int = DEFAULT_MAX_RETAINED_BYTES
    used: int = 0
    _open: set[OutputLog] = attrs.field(factory=set)
    _closed: dict[OutputLog, None] = attrs.field(factory=dict)

    def opened(self, log: OutputLog) -> None:
        self._open.add(log)

    def closed(self, log: OutputLog) -> None:
        if log in self._open:
            self._open.discard(log)
            self._closed[log] = None

    def discard(self, log: OutputLog) -> None:
        self._open.discard(log)
        self._closed.pop(log, None)

    def charge(self, size: int) -> None:
        """`size` more bytes are retained; evict until the budget holds again."""
        self.used += size
        while self.used > self.limit and self._evict_one():
            pass

    def release(self, size: int) -> None:
        self.used -= size

    def _evict_one(self) -> bool:
        while self._closed:
            oldest = next(iter(self._closed))
            if oldest.retained_bytes:
                oldest.drop_oldest()
                return True
            del self._closed[oldest]
        largest = max(self._open, key=lambda log: log.retained_bytes, default=None)
        if largest is None or not largest.retained_bytes:
            return False
        largest.drop_oldest()
        return True
