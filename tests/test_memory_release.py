"""Memory that comes back: once its processes are forgotten, the daemon's RSS returns to within
20 % of what it was before the load, round after round (`process/segments.py`,
`process/heap.py`; `python -m benchmarks.memory` runs the full-size measurement).

The daemon runs as its own process with a short retention; each round starts `PROCESSES`
processes writing 1 MiB of random bytes each, receives their output, and waits until every one
of them is forgotten (its `process/read` answers an error). RSS is VmRSS from procfs.
"""

from __future__ import annotations

import platform
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from support.servers import TRIO_EXEC, ServerHandle, launch
from support.wsclient import WireClient, session

ROUNDS = 10
PROCESSES = 20
SIZE = 1024 * 1024
#: The daemon trims the heap at most once a second after forgets (`heap.TRIM_INTERVAL`).
SETTLE_SECONDS = 10


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@asynccontextmanager
async def daemon() -> AsyncIterator[ServerHandle]:
    server = launch(TRIO_EXEC, "--retention", "0")
    try:
        yield server
    finally:
        server.stop()


async def run_round(client: WireClient, ids: list[str]) -> None:
    argv = ["head", "-c", str(SIZE), "/dev/urandom"]
    for process_id in ids:
        await client.start_ok(process_id, argv)
    for process_id in ids:
        await client.wait_process_closed(process_id, within=60)
        assert len(client.output(process_id)) == SIZE
    client.notifications.clear()
    client.inbound.clear()
    with trio.fail_after(30):
        for process_id in ids:
            while "error" not in await client.read(process_id):  # noqa: ASYNC110 (no event)
                await trio.sleep(0.05)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the daemon trims glibc's heap")
async def test_rss_returns_to_its_pre_load_level_after_ten_rounds() -> None:
    async with daemon() as server, session(server.url) as client:
        await run_round(client, ["warm-up"])  # the output path's first use: imports, buffers
        before = rss_kib(server.proc.pid)
        for round_number in range(ROUNDS):
            await run_round(client, [f"r{round_number}-{i}" for i in range(PROCESSES)])
        settled = rss_kib(server.proc.pid)
        with trio.move_on_after(SETTLE_SECONDS):
            while settled > 1.2 * before:
                await trio.sleep(0.1)
                settled = rss_kib(server.proc.pid)
        assert settled <= 1.2 * before, (
            f"RSS {settled / 1024:.1f} MiB after {ROUNDS} rounds of {PROCESSES} x 1 MiB, "
            f"{before / 1024:.1f} MiB before")
