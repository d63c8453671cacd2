"""`scripts/fuzz`: the live fuzzer (`support/fuzzing.py`) for as long as asked, then a report.

    scripts/fuzz [--duration SECONDS]

One daemon is started on 127.0.0.1:0; cases run in rounds of `ROUND` hypothesis examples until
the duration is spent (the round under way finishes). A failing case stops the run with
hypothesis's shrunk example and exit status 1. At the end the daemon must be healthy: a fresh
connection served, no unexpected exception in its log, and its census (processes, fds,
sessions) back to where it was before the first case. The report gives the figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import fuzzing
from support.census import Census, new_marker
from support.servers import TRIO_EXEC, launch
from support.wsclient import connect

ROUND = 200
FLAGS = (
    "--log-level", "INFO", "--session-ttl", "0.3", "--retention", "0.3",
    "--max-message-size", str(fuzzing.MESSAGE_LIMIT),
)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def served(url: str) -> None:
    async with connect(url) as client:
        await client.handshake()
        await client.assert_usable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    args = parser.parse_args(argv)
    tally = fuzzing.Tally()
    with tempfile.TemporaryDirectory(prefix="fuzz-root-") as tmp:
        root = Path(tmp)
        daemon = launch(TRIO_EXEC, *FLAGS)
        try:
            census = Census(daemon.pid, new_marker(), daemon.stderr_text)
            trio.run(served, daemon.url)
            before = trio.run(census.wait_for, lambda c: c.processes == 0 and c.sessions == 0)
            rss_before = rss_kib(daemon.pid)

            @settings(max_examples=ROUND, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def one_case(data: st.DataObject) -> None:
                handshake, frame_list = data.draw(fuzzing.cases(root))
                trio.run(fuzzing.run_case, daemon.host, daemon.port, handshake, frame_list, tally)

            started = time.monotonic()
            rounds = 0
            while time.monotonic() - started < args.duration:
                one_case()
                rounds += 1
                print(f"{time.monotonic() - started:7.0f} s: {tally.cases} cases, {tally.frames} frames, "
                      f"{tally.requests} requests, daemon RSS {rss_kib(daemon.pid)} KiB", flush=True)
            trio.run(served, daemon.url)
            after = trio.run(census.settled, before)
            log = daemon.stderr_text()
            print(f"cases {tally.cases}, frames {tally.frames}, requests with an id {tally.requests}, "
                  f"owed an answer {tally.owed}, answered {tally.answered}, in {time.monotonic() - started:.0f} s")
            print(f"census before: {before}; after: {after}")
            print(f"daemon RSS before: {rss_before} KiB; after: {rss_kib(daemon.pid)} KiB")
            print(f"unexpected exceptions in the log: {log.count('Traceback')}")
            return 0 if after == before and "Traceback" not in log else 1
        finally:
            daemon.stop()


if __name__ == "__main__":
    sys.exit(main())
