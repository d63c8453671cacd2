"""`scripts/soak`: many connections doing everything at once for a long while, against a
daemon the soak starts fresh; then the report, and exit status 1 on any violation.

    scripts/soak [--duration 600] [--connections 50] [--server trio-exec|reference-0.169]

Each connection is a `soak_worker.Worker` (its docstring gives the workload and what counts
as expected). Against trio-exec, workers alternate between the 0.120 dialect (with the
extensions) and the 0.169 one; against codex 0.169 every worker speaks 0.169.

Checked:
- no violation: every request answered (or in flight on a connection the soak dropped), every
  error reply expected by the action that caused it (and named), every process's output
  exactly once by content across the drops;
- at the end every process ended and every session ended (`tests/support/census.py`: the
  census equal to the one taken before the first connection: no process, the same fds, no
  session), within the session TTL plus the retention plus a margin;
- RSS and fds flat: after a warm-up of a fifth of the run (at most 60 s), the median of the
  last window must be within `FLAT_RSS` (RSS) and `FLAT_FDS` (fds) of the median of the first
  window (windows: a fifth of the run, at most 60 s), judged for runs of `JUDGED_FROM` (180)
  seconds and more; fds move with the processes
  alive, hence the wider bound; the exact fd check is the census at the end.

The daemon's RSS, fds and processes are sampled every `--sample-every` seconds; the curve is
printed every `--table-every` seconds of the run, with p50/p99 latency per method.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from benchmarks.servers import REFERENCE_0169, TRIO_EXEC, Server, rss_kib
from benchmarks.soak_worker import SURELY_RETAINED, Dialect, Tally, Worker
from tests.support.census import Census, descendants, marked_env, new_marker, open_fds

FLAT_RSS = 0.10
FLAT_FDS = 0.25
#: The shortest run whose flatness is judged (a warm-up and two windows apart).
JUDGED_FROM = 180.0
#: The longest absence between a drop and its resume (below the session TTL).
MAX_ABSENCE = 3.0
#: codex 0.169's own timers (docs/protocol-dialects.md): the detached TTL is about 80 s.
REFERENCE_TTL = 80.0
REFERENCE_SETTLE = 150.0


@dataclass
class Sample:
    t: float
    rss_kib: int
    fds: int
    processes: int


async def sample(pid: int, every: float, samples: list[Sample], t0: float) -> None:
    while True:
        samples.append(Sample(time.monotonic() - t0, rss_kib(pid), open_fds(pid),
                              len(descendants(pid))))
        await trio.sleep(every)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def flatness(samples: list[Sample], duration: float) -> tuple[list[str], list[str]]:
    """(lines describing the judgement, violations)."""
    window = min(60.0, duration / 5)
    first = [s for s in samples if window <= s.t < 2 * window]
    last = [s for s in samples if duration - window <= s.t <= duration]
    if duration < JUDGED_FROM or not first or not last:
        return [f"flatness: not judged (a {duration:.0f} s run is too short for a warm-up and "
                "two windows apart)"], []
    lines, violations = [], []
    for what, key, bound in (("RSS KiB", "rss_kib", FLAT_RSS), ("fds", "fds", FLAT_FDS)):
        a = statistics.median(getattr(s, key) for s in first)
        b = statistics.median(getattr(s, key) for s in last)
        ok = b <= a * (1 + bound)
        lines.append(f"flatness of {what}: median {a:.0f} in [{window:.0f}, {2 * window:.0f}) s, "
                     f"{b:.0f} in the last {window:.0f} s ({(b / a - 1) * 100:+.1f} %, bound "
                     f"+{bound * 100:.0f} %): {'flat' if ok else 'GROWING'}")
        if not ok:
            violations.append(f"{what} not flat: {a:.0f} -> {b:.0f}")
    return lines, violations


def curve(samples: list[Sample], every: float) -> list[str]:
    rows = ["   t (s)   RSS (MiB)   fds   processes"]
    mark = 0.0
    for s in samples:
        if s.t >= mark:
            rows.append(f"{s.t:8.0f}   {s.rss_kib / 1024:9.1f}   {s.fds:3d}   {s.processes:9d}")
            mark = (s.t // every + 1) * every
    s = samples[-1]
    rows.append(f"{s.t:8.0f}   {s.rss_kib / 1024:9.1f}   {s.fds:3d}   {s.processes:9d}   (end)")
    return rows


def latency_table(tally: Tally) -> list[str]:
    rows = [f"{'method':34} {'count':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"]
    for method in sorted(tally.latencies):
        v = tally.latencies[method]
        rows.append(f"{method:34} {len(v):7d} {percentile(v, 0.5):8.2f} {percentile(v, 0.99):8.2f} "
                    f"{max(v):8.2f}")
    return rows


async def soak(args: argparse.Namespace, server: Server, census: Census, root: Path) -> int:
    tally = Tally()
    samples: list[Sample] = []
    marker_env = marked_env(census.marker)
    reference = server.kind != TRIO_EXEC
    before = await census.wait_for(lambda c: c.processes == 0 and c.sessions in (0, None))
    print(f"{server.kind} pid {server.pid}; census before: {before}; RSS "
          f"{rss_kib(server.pid)} KiB", flush=True)
    t0 = time.monotonic()
    async with trio.open_nursery() as outer:
        outer.start_soon(sample, server.pid, args.sample_every, samples, t0)
        deadline = trio.current_time() + args.duration
        async with trio.open_nursery() as nursery:
            for i in range(args.connections):
                dialect = Dialect("0.169" if reference or i % 2 else "0.120")
                worker = Worker(i, server.host, server.port, root, marker_env, dialect, tally,
                                deadline, args.seed * 1000 + i, reference=reference,
                                max_absence=min(MAX_ABSENCE, args.session_ttl * 0.6))
                nursery.start_soon(worker.run)
        run_time = time.monotonic() - t0
        settle = REFERENCE_SETTLE if reference else args.session_ttl + args.retention + 15
        after = await census.settled(before, within=settle)
        outer.cancel_scope.cancel()
    samples.append(Sample(time.monotonic() - t0, rss_kib(server.pid), open_fds(server.pid),
                          len(descendants(server.pid))))
    violations = list(tally.violations)
    if after != before:
        violations.append(f"census after the run {after}, before {before}")
    log = server.handle.stderr_text()
    if "Traceback" in log:
        violations.append(f"{log.count('Traceback')} tracebacks in the daemon's log")
        first = log.index("Traceback")
        print(log[max(0, log.rfind("\n", 0, first - 1) - 400):first + 4000], file=sys.stderr)
    flat_lines, flat_violations = flatness(samples, args.duration)
    violations += flat_violations

    print(f"\n== soak of {server.kind}: {args.connections} connections, {run_time:.0f} s "
          f"(workload {args.duration:.0f} s, then the wind-down) ==")
    print("\n".join(curve(samples, args.table_every)))
    print()
    print("\n".join(latency_table(tally)))
    print("\ncounts:")
    for name, n in sorted(tally.counts.items()):
        print(f"  {n:8d}  {name}")
    print(f"  {sum(len(v) for v in tally.latencies.values()):8d}  requests answered")
    print("expected errors and statuses (caused by the soak's own actions):")
    for name, n in sorted(tally.expected.items()):
        print(f"  {n:8d}  {name}")
    print(f"census before: {before}; after: {after} (settled within {settle:.0f} s)")
    print("\n".join(flat_lines))
    print(f"violations: {len(violations)}")
    kinds = Counter(re.sub(r"\{.*|p\d+|w\d+|\d+", "#", v)[:100] for v in violations)
    for kind, n in kinds.most_common():
        print(f"  {n:6d} like: {kind}")
    for v in violations[:30]:
        print(f"  {v[:3000]}")
    return 1 if violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/soak", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of workload (600)")
    parser.add_argument("--connections", type=int, default=50, help="connections at once (50)")
    parser.add_argument("--server", choices=(TRIO_EXEC, REFERENCE_0169), default=TRIO_EXEC)
    parser.add_argument("--sample-every", type=float, default=2.0, help="seconds (2)")
    parser.add_argument("--table-every", type=float, default=30.0, help="seconds (30)")
    parser.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(2), "big"))
    parser.add_argument("--session-ttl", type=float, default=5.0,
                        help="trio-exec's --session-ttl (5); codex 0.169's is about 80 s")
    parser.add_argument("--retention", type=float, default=30.0,
                        help="trio-exec's --retention (30, its default; codex 0.169 keeps 30 s)")
    args = parser.parse_args(argv)
    print(f"seed {args.seed}", flush=True)
    if args.retention < 2 * SURELY_RETAINED:
        parser.error(f"--retention must be at least {2 * SURELY_RETAINED} s")
    if args.server != TRIO_EXEC:
        args.session_ttl = REFERENCE_TTL
    flags = ("--log-level", "INFO", "--session-ttl", str(args.session_ttl),
             "--retention", str(args.retention)) if args.server == TRIO_EXEC else ()
    server = Server(args.server, flags, lift_limits=False)
    try:
        census = Census(server.pid, new_marker(),
                        server.handle.stderr_text if args.server == TRIO_EXEC else None)
        with tempfile.TemporaryDirectory(prefix="soak-root-") as tmp:
            return trio.run(soak, args, server, census, Path(tmp).resolve())
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
