"""Giving the allocator's free heap back to the system after processes are forgotten.

Retained output lives in memory maps that are unmapped when dropped (`segments.py`), but the
path from a pipe to the socket (the bytes read, their base64, the JSON text, the frame, a
backlog of notifications for a slow client) allocates blocks of tens of KiB from glibc's heap.
glibc gives free heap back only from its top, and a few long-lived blocks allocated during a
burst pin it: measured, 200 processes x 1 MiB left 60-85 MiB of free heap resident per round
after everything was forgotten. `malloc_trim(0)` returns those free pages (about 0.3 ms, at
most a few ms, on such a heap).

Rules:
- `trim()` calls glibc's `malloc_trim(0)` when the daemon runs on glibc (found at import by
  `ctypes`); elsewhere it does nothing (`available` is False).
- `HeapTrimmer.request()` is called when the output of a process that wrote at least
  `TRIM_AFTER_BYTES` is discarded (it is forgotten or its supervision ended): the buffers of a
  short output are few and small. Requests are coalesced: the first one trims at once, the ones that
  come within `interval` seconds of a trim get one more trim at the end of that interval, so
  a burst of forgets costs one trim per interval and the last forget is always followed by one.
- The trim runs in a worker thread (the call releases the GIL): returning hundreds of MiB
  takes tens of ms of the kernel's time, which the event loop does not wait for.
- The trimmer runs in the daemon's root nursery (`run`); without it, requests are only noted.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Awaitable, Callable

import attrs
import trio

TRIM_INTERVAL = 1.0
#: A process must have written this much for its forget to ask for a trim.
TRIM_AFTER_BYTES = 64 * 1024


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        os.confstr("CS_GNU_LIBC_VERSION")
        function = ctypes.CDLL(None).malloc_trim
    except (ValueError, OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_MALLOC_TRIM = _find_malloc_trim()
#: Whether `trim()` can give memory back here (glibc).
available = _MALLOC_TRIM is not None


def trim() -> bool:
    """Return the free pages of every malloc arena to the system; whether any were."""
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))


@attrs.define(eq=False)
class HeapTrimmer:
    """Invariant: `_wanted` is set exactly while a request waits for its trim."""

    interval: float = TRIM_INTERVAL
    #: What a trim calls (`trim` unless a test observes it), and how (in a worker thread).
    trim: Callable[[], bool] = trim
    offload: Callable[[Callable[[], bool]], Awaitable[bool]] = trio.to_thread.run_sync
    trims: int = 0
    _wanted: trio.Event = attrs.field(factory=trio.Event)

    def request(self) -> None:
        self._wanted.set()

    async def run(self) -> None:
        """Trim for the requests, forever (cancel to stop)."""
        while True:
            await self._wanted.wait()
            self._wanted = trio.Event()
            await self.offload(self.trim)
            self.trims += 1
            await trio.sleep(self.interval)
