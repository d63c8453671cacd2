"""The long-poll herd: a second client's PTY echo while one connection holds 10 000 long-polls.

    python -m benchmarks.herd [--polls 10000] [--samples 200] [-- extra serve flags]

Client A starts a process that prints a line every 100 ms and sends `--polls` long-poll
`process/read`s for it with an `afterSeq` it will not reach for minutes (each waits its full
`waitMs`): every line the process prints is an event those reads could be waiting for. Client
B, on its own connection, runs `cat` in a PTY and measures the echo round trip (write one byte,
wait for its `process/output`), first with A idle, then while A's reads wait. A daemon that
wakes every waiting read on every event pays for all of them on every line.

The daemon must let that many long-polls be pending on one connection: pass
`--max-pending-requests` (or, before that setting existed, `--read-pause-requests`) above
`--polls`. Prints the median and p90 of both phases, in milliseconds.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys

import trio

from benchmarks.servers import TRIO_EXEC, Server, raise_nofile
from benchmarks.wsclient import Client

TICK_SECONDS = 0.1
WAIT_MS = 600_000
FAR_SEQ = 10**9


async def echo_round_trips(client: Client, samples: int, name: str) -> list[float]:
    """PTY echo round trips of `cat`, in seconds."""
    echoed = trio.Event()
    seen = bytearray()

    def on_notify(msg: dict[str, object]) -> None:
        params = msg.get("params")
        if (msg.get("method") == "process/output" and isinstance(params, dict)
                and params.get("processId") == name):
            seen.extend(base64.b64decode(str(params["chunk"])))
            echoed.set()

    client.on_notify = on_notify
    await client.call("process/start", {"processId": name, "argv": ["cat"], "cwd": "/",
                                        "env": {"PATH": "/usr/bin:/bin"}, "tty": True})
    times: list[float] = []
    for _ in range(samples):
        echoed = trio.Event()
        seen.clear()
        began = trio.current_time()
        await client.call("process/write", {"processId": name,
                                            "chunk": base64.b64encode(b"x").decode()})
        with trio.fail_after(30):
            while b"x" not in seen:
                await echoed.wait()
                echoed = trio.Event()
        times.append(trio.current_time() - began)
        await trio.sleep(0.005)
    await client.call("process/terminate", {"processId": name})
    return times


def summary(times: list[float]) -> str:
    ordered = sorted(times)
    p90 = ordered[int(len(ordered) * 0.9)]
    return f"median {statistics.median(ordered) * 1000:.2f} ms, p90 {p90 * 1000:.2f} ms"


async def run(polls: int, samples: int, flags: list[str]) -> None:
    server = Server(TRIO_EXEC, tuple(flags))
    try:
        async with trio.open_nursery() as nursery:
            a = await Client.connect(nursery, server.host, server.port)
            b = await Client.connect(nursery, server.host, server.port)
            await a.handshake("herd-a")
            await b.handshake("herd-b")
            idle = await echo_round_trips(b, samples, "echo-idle")
            await a.call("process/start", {
                "processId": "ticker", "cwd": "/", "env": {"PATH": "/usr/bin:/bin"},
                "argv": ["sh", "-c", f"while :; do echo tick; sleep {TICK_SECONDS}; done"],
                "tty": False,
            })
            read = {"processId": "ticker", "afterSeq": FAR_SEQ, "waitMs": WAIT_MS}
            pending = await a.pipeline([("process/read", read)] * polls)
            # every read is in: an unknown method is answered after the reads were dispatched
            await a.call("process/list", {})
            refused = sum(1 for p in pending if p.done)
            loaded = await echo_round_trips(b, samples, "echo-loaded")
            print(f"polls pending: {polls - refused} (answered early: {refused})")
            print(f"PTY echo, idle:             {summary(idle)}")
            print(f"PTY echo, {polls} long-polls: {summary(loaded)}")
            nursery.cancel_scope.cancel()
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polls", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("flags", nargs="*", help="extra `trio-exec serve` flags (after --)")
    args = parser.parse_args(argv)
    raise_nofile()
    trio.run(run, args.polls, args.samples, args.flags)
    return 0


if __name__ == "__main__":
    sys.exit(main())
