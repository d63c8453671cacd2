"""A 500 MiB `fs/readFile` never stalls the daemon (issue: the filesystem service, item 5).

The daemon runs as its own process. Client A (`support.big_read`, another process) reads a
500 MiB file; meanwhile client B, in this test, keeps a process printing every 5 ms and asks
`fs/getMetadata` every 10 ms. Over the whole of A's read, B's longest wait for a reply and the
longest gap between two of its output notifications must stay far below the read's duration:
the file read, the base64 encoding, the reply's JSON and its 700 MB on the socket all happen
beside B's traffic, never instead of it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import trio
from support.servers import ServerHandle
from support.wsclient import session

SIZE = 500 * 1024 * 1024
TESTS_DIR = Path(__file__).resolve().parent
#: Longest acceptable stall of B's traffic while A's read runs (the read itself takes seconds).
STALL_LIMIT = 0.25
TICKER = ["/bin/sh", "-c", "i=0; while :; do echo $i; i=$((i+1)); sleep 0.005; done"]


async def test_a_500_mib_read_never_stalls_other_connections(
    trio_exec_server: ServerHandle, tmp_path: Path
) -> None:
    big = tmp_path / "big"
    os.close(os.open(big, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
    os.truncate(big, SIZE)  # sparse: the daemon still reads (and encodes) every byte
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(TESTS_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))

    async with session(trio_exec_server.url) as b:
        await b.start_ok("ticker", TICKER)
        await b.wait_output("ticker", b"5\n")
        latencies: list[tuple[float, float]] = []  # (sent at, round trip)
        window: list[float] = []

        async def ask_metadata_until(done: trio.Event) -> None:
            while not done.is_set():
                sent = trio.current_time()
                reply = await b.request("fs/getMetadata", {"path": str(probe)}, within=30)
                assert "result" in reply, reply
                latencies.append((sent, trio.current_time() - sent))
                await trio.sleep(0.01)

        with trio.fail_after(50):
            async with trio.open_nursery() as nursery:
                reader = await trio.lowlevel.open_process(
                    [sys.executable, "-m", "support.big_read", trio_exec_server.url, str(big),
                     str(SIZE)],
                    stdout=subprocess.PIPE, env=env, cwd=TESTS_DIR,
                )
                try:
                    assert reader.stdout is not None
                    lines = b""
                    while b"sent\n" not in lines:
                        lines += await reader.stdout.receive_some()
                    window.append(trio.current_time())
                    done = trio.Event()
                    nursery.start_soon(ask_metadata_until, done)
                    while b"done" not in lines or not lines.endswith(b"\n"):
                        chunk = await reader.stdout.receive_some()
                        assert chunk, f"big_read ended early: {lines!r}"
                        lines += chunk
                    window.append(trio.current_time())
                    done.set()
                    assert await reader.wait() == 0
                finally:  # never leave a reader behind, whatever failed
                    if reader.returncode is None:
                        reader.kill()
                    with trio.CancelScope(shield=True):
                        await reader.wait()
        took, verdict = lines.split(b"done ", 1)[1].split()
        assert verdict == b"ok", lines
        assert float(took) > 4 * STALL_LIMIT, f"the read was too quick to tell: {took!r}"

        start, end = window
        during = [rtt for sent, rtt in latencies if start <= sent <= end]
        assert len(during) >= 10, latencies
        assert max(during) < STALL_LIMIT, f"getMetadata waited {max(during):.3f} s"
        arrivals = [
            item.at for item in b.inbound
            if item.is_notification and item.msg["method"] == "process/output"
            and start <= item.at <= end
        ]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert len(arrivals) >= 10 and max(gaps) < STALL_LIMIT, f"output paused {max(gaps):.3f} s"
        await b.request("process/terminate", {"processId": "ticker"})
