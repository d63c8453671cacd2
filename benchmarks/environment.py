"""Local vs remote `ExecProcess` round trip: start `/bin/true`, observe its exit.

The target (issue "The consumer side"): remote <= 1.5 x local + one network round trip. The
round trip is measured in the same run as the median of a request the daemon answers at once
(an unknown method). The daemon is a separate process on 127.0.0.1, as on a devbox.

    .venv/bin/python -m benchmarks.environment [--runs 300] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import time

import trio

from trio_exec.client import open_client
from trio_exec.environment.local import open_local_environment
from trio_exec.environment.remote import open_remote_environment
from trio_exec.proto.errors import MethodNotFound

ENV = {"PATH": "/usr/bin:/bin"}


async def exec_round_trips(env_context: object, runs: int) -> list[float]:
    async with env_context as env:  # type: ignore[attr-defined]
        times = []
        for _ in range(runs + 20):
            started = time.perf_counter()
            process = await env.exec.start(["/bin/true"], cwd="/", env=ENV)
            await process.wait()
            times.append(time.perf_counter() - started)
        return times[20:]  # warm-up excluded


async def network_round_trips(url: str, runs: int) -> list[float]:
    async with open_client(url) as client:
        times = []
        for _ in range(runs + 20):
            started = time.perf_counter()
            with contextlib.suppress(MethodNotFound):
                await client.request("bench/ping", {})
            times.append(time.perf_counter() - started)
        return times[20:]


def p50(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


async def one_run(url: str, runs: int) -> tuple[float, float, float]:
    local = p50(await exec_round_trips(open_local_environment(), runs))
    remote = p50(await exec_round_trips(open_remote_environment(url), runs))
    rtt = p50(await network_round_trips(url, runs))
    return local, remote, rtt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "trio_exec", "serve", "--listen", "ws://127.0.0.1:0"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert daemon.stdout is not None
        url = daemon.stdout.readline().strip()
        results = [trio.run(one_run, url, args.runs) for _ in range(args.repeat)]
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
    for i, (local, remote, rtt) in enumerate(results, 1):
        print(f"run {i}: local {local:.3f} ms | remote {remote:.3f} ms | round trip {rtt:.3f} ms")
    local, remote, rtt = (statistics.median(column) for column in zip(*results, strict=True))
    bound = 1.5 * local + rtt
    verdict = "met" if remote <= bound else "missed"
    print(
        f"median: local {local:.3f} ms, remote {remote:.3f} ms, round trip {rtt:.3f} ms; "
        f"target remote <= 1.5 x local + round trip = {bound:.3f} ms: {verdict} "
        f"(remote / local = {remote / local:.2f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
