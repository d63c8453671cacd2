"""Memory that comes back: daemon RSS around rounds of processes with retained output.

    python -m benchmarks.memory [--rounds 10] [--procs 200] [--size 1048576]
                                [--servers trio-exec,reference-0.169,reference-0.171]
                                [-- extra trio-exec serve flags]

For each server (a fresh one each): one session; the pre-load RSS (VmRSS from procfs) is
taken once one warm-up process wrote `--size` bytes and was forgotten (the first use of the
output path allocates for good: imports, caches, buffers), then every round starts `--procs` processes at once, each writing `--size`
random bytes (`head -c SIZE /dev/urandom`), waits until every one is closed (its output
received as notifications and counted) and takes the RSS ("loaded"); then it waits until the
daemon forgot them (`process/read` answers an error for each; trio-exec runs with
`--retention 5`) and takes the RSS again 1.5 s later ("released"). Prints one line per round and, at the
end, the last released RSS as a percentage of the pre-load RSS.

A reference server that still answers reads after `--forget-timeout` seconds keeps its
processes; its released figure is then taken anyway and marked "(not forgotten)".
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import trio

from benchmarks.scenarios import rss_settled
from benchmarks.servers import (
    REFERENCE_0169,
    REFERENCE_0171,
    REFERENCES_0169_DIALECT,
    TRIO_EXEC,
    Server,
    raise_nofile,
    reference_binary_of,
)
from benchmarks.wsclient import Client, ConnectionLost, RpcError

MiB = 1024 * 1024
ENV = {"PATH": "/usr/bin:/bin"}
#: trio-exec forgets a closed process after this many seconds (the default is 30).
RETENTION_SECONDS = 5
#: After the last process is forgotten: trio-exec gives free heap back at most once a second.
SETTLE_SECONDS = 1.5


def start_params(kind: str, pid: str, argv: list[str]) -> dict[str, Any]:
    cwd = Path("/tmp").as_uri() if kind in REFERENCES_0169_DIALECT else "/tmp"
    return {"processId": pid, "argv": argv, "cwd": cwd, "env": ENV, "tty": False, "arg0": None}


class Round:
    """Waits for the `process/closed` of a set of processes and counts their output."""

    def __init__(self) -> None:
        self.expected: set[str] = set()
        self.closed: set[str] = set()
        self.bytes = 0
        self.done = trio.Event()

    def on_notify(self, msg: dict[str, Any]) -> None:
        params = msg.get("params") or {}
        if msg.get("method") == "process/output":
            self.bytes += len(params.get("chunk", "")) * 3 // 4
        elif msg.get("method") == "process/closed" and params.get("processId") in self.expected:
            self.closed.add(params["processId"])
            if self.closed >= self.expected:
                self.done.set()


async def forgotten(client: Client, ids: list[str], seconds: float) -> bool:
    """Poll until every id is unknown to the server (its read answers an error)."""
    left = list(ids)
    deadline = time.monotonic() + seconds
    while left and time.monotonic() < deadline:
        pending = await client.pipeline(("process/read", {"processId": p}) for p in left)
        still = []
        for pid, p in zip(left, pending, strict=True):
            try:
                await p.wait()
                still.append(pid)
            except RpcError:
                pass
        left = still
        if left:
            await trio.sleep(0.25)
    return not left


async def measure(kind: str, rounds: int, procs: int, size: int, flags: list[str],
                  forget_timeout: float) -> list[tuple[float, float, float]]:
    """[(pre-load MiB, loaded MiB, released MiB)] per round."""
    args = ("--retention", str(RETENTION_SECONDS), *flags) if kind == TRIO_EXEC else ()
    server = Server(kind, args)
    figures: list[tuple[float, float, float]] = []
    try:
        async with trio.open_nursery() as nursery:
            client = await Client.connect(nursery, server.host, server.port)
            await client.handshake("memory")
            warm = Round()
            warm.expected = {"warm"}
            client.on_notify = warm.on_notify
            await client.call("process/start", start_params(
                kind, "warm", ["/usr/bin/head", "-c", str(size), "/dev/urandom"]))
            with trio.fail_after(30):
                await warm.done.wait()
            await forgotten(client, ["warm"], forget_timeout)
            await trio.sleep(0.3)
            base = rss_settled(server.pid) / 1024
            for r in range(rounds):
                run = Round()
                ids = [f"r{r}-p{i}" for i in range(procs)]
                run.expected = set(ids)
                client.on_notify = run.on_notify
                argv = ["/usr/bin/head", "-c", str(size), "/dev/urandom"]
                began = time.monotonic()
                pending = await client.pipeline(
                    ("process/start", start_params(kind, p, argv)) for p in ids)
                for p in pending:
                    await p.wait()
                with trio.fail_after(120):
                    await run.done.wait()
                loaded = rss_settled(server.pid) / 1024
                gone = await forgotten(client, ids, forget_timeout)
                await trio.sleep(SETTLE_SECONDS)
                released = rss_settled(server.pid) / 1024
                figures.append((base, loaded, released))
                print(f"{kind:>16} round {r + 1:2}: pre-load {base:6.1f} MiB, loaded "
                      f"{loaded:6.1f} MiB, released {released:6.1f} MiB"
                      f"{'' if gone else ' (not forgotten)'}  "
                      f"[{run.bytes / MiB:.0f} MiB of output, {time.monotonic() - began:.1f} s]",
                      flush=True)
            nursery.cancel_scope.cancel()
    except (ConnectionLost, RpcError) as exc:
        print(f"{kind}: FAILED: {exc}\n{server.stderr_tail()}", file=sys.stderr)
    finally:
        server.stop()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--procs", type=int, default=200)
    parser.add_argument("--size", type=int, default=MiB, help="bytes each process writes")
    parser.add_argument("--servers", default=f"{TRIO_EXEC},{REFERENCE_0169},{REFERENCE_0171}")
    parser.add_argument("--forget-timeout", type=float, default=15.0,
                        help="seconds to wait for a server to forget the processes")
    parser.add_argument("flags", nargs="*", help="extra `trio-exec serve` flags (after --)")
    args = parser.parse_args(argv)
    raise_nofile()
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])}")
    summary = []
    for kind in args.servers.split(","):
        if kind != TRIO_EXEC and not reference_binary_of(kind).exists():
            print(f"{kind}: not installed, skipped")
            continue
        figures = trio.run(measure, kind, args.rounds, args.procs, args.size, args.flags,
                           args.forget_timeout)
        if figures:
            base, _, released = figures[-1]
            peak = max(f[1] for f in figures)
            summary.append(f"{kind:>16}: pre-load {base:.1f} MiB, peak loaded {peak:.1f} MiB, "
                           f"released after round {len(figures)}: {released:.1f} MiB "
                           f"({100 * released / base:.0f} % of pre-load)")
    with open("/proc/loadavg") as f:
        print(f"load average: {' '.join(f.read().split()[:3])}")
    print("\n".join(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
