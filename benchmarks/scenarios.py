"""The benchmark scenarios. Every scenario runs unchanged against every server.

The only per-server difference is the dialect's wire form (docs/protocol-dialects.md): the
0.169 dialect (codex 0.169 and 0.171) takes ``file://`` URIs for paths and a ``writeId`` on
``process/write``; :meth:`Ctx.path` and :meth:`Ctx.write_params` build those, nothing else does.

A scenario is an async function taking a :class:`Ctx` and returning ``{figure key: value}``;
a value is a float, or a short string (``"refused"``, ``"FAILED: …"``) for a figure that could
not be measured while the others could. An exception fails the whole scenario run.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pybase64
import trio

from .floor_exec import FloorProcess
from .servers import REFERENCE, REFERENCES_0169_DIALECT, Server, cpu_seconds, rss_kib
from .wsclient import Client, ConnectionLost, Pending, RpcError

MiB = 1024 * 1024
ENV = {"PATH": "/usr/bin:/bin"}
PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"

Value = float | str


class BenchFailure(Exception):
    """The server misbehaved (wrong bytes, missing events, error replies)."""


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    better: str  # "lower" | "higher" | "" (informational)
    fmt: str = "{:.2f}"


@dataclass
class Ctx:
    server: Server | FloorProcess
    quickack: bool
    nursery: trio.Nursery
    data_dir: Path
    clients: list[Client] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _write_ids: int = 0

    @property
    def is_reference(self) -> bool:
        return self.server.kind == REFERENCE

    @property
    def dialect169(self) -> bool:
        """The server speaks the 0.169 dialect (URI paths, ``writeId``)."""
        return self.server.kind in REFERENCES_0169_DIALECT

    def path(self, path: str | Path) -> str:
        """A path member in the server's dialect."""
        return Path(path).as_uri() if self.dialect169 else str(path)

    def start_params(self, pid: str, argv: list[str], *, tty: bool = False) -> dict[str, Any]:
        return {"processId": pid, "argv": argv, "cwd": self.path("/tmp"), "env": ENV,
                "tty": tty, "arg0": None}

    def write_params(self, pid: str, data: bytes) -> dict[str, Any]:
        params = {"processId": pid, "chunk": pybase64.b64encode(data).decode()}
        if self.dialect169:
            self._write_ids += 1
            params["writeId"] = str(self._write_ids)
        return params

    async def connect(self) -> Client:
        c = await Client.connect(
            self.nursery, self.server.host, self.server.port, quickack=self.quickack
        )
        self.clients.append(c)
        return c

    async def session(self) -> Client:
        c = await self.connect()
        await c.handshake()
        return c


@dataclass
class Scenario:
    name: str
    letter: str
    title: str
    fn: Callable[[Ctx], Awaitable[dict[str, Value]]]
    figures: list[Figure]
    timeout: float
    #: Flags for trio-exec so that it runs the same workload as the references (which have
    #: no such limits), e.g. a per-session process limit above the scenario's process count.
    trio_exec_args: tuple[str, ...] = ()
    #: The figures the exec floor (`floor_exec.py`) measures too: the per-request ones.
    floor_keys: tuple[str, ...] = ()


class CpuMeter:
    """CPU use of the bench process and of the server between start() and stop(), in %."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid
        self.client = self.server = 0.0

    def start(self) -> None:
        t = os.times()
        self._c0 = t.user + t.system
        self._s0 = cpu_seconds(self.pid)
        self._w0 = time.perf_counter()

    def stop(self) -> None:
        t = os.times()
        wall = max(1e-9, time.perf_counter() - self._w0)
        self.client = 100 * (t.user + t.system - self._c0) / wall
        self.server = 100 * (cpu_seconds(self.pid) - self._s0) / wall


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def b64len(chunk: str) -> int:
    return len(pybase64.b64decode(chunk))


async def wait_event(ev: trio.Event, seconds: float, what: str, client: Client) -> None:
    """Wait for ``ev``; fail with a clear reason on timeout or if the connection dies."""
    with trio.move_on_after(seconds) as scope:
        async with trio.open_nursery() as n:
            async def watch_close() -> None:
                await client.closed.wait()
                n.cancel_scope.cancel()

            async def watch_event() -> None:
                await ev.wait()
                n.cancel_scope.cancel()

            n.start_soon(watch_close)
            n.start_soon(watch_event)
    if ev.is_set():
        return
    if scope.cancelled_caught:
        raise BenchFailure(f"timed out after {seconds:g} s waiting for {what}")
    raise BenchFailure(f"connection lost while waiting for {what}: {client.close_reason}")


# ---------------------------------------------------------------------------------------------
# (a) /bin/true spawn -> process/closed latency

SPAWN_N = 300
SPAWN_WARMUP = 10


async def spawn_latency(ctx: Ctx) -> dict[str, Value]:
    c = await ctx.session()
    waiters: dict[str, tuple[trio.Event, list[float]]] = {}

    def on_notify(m: Any) -> None:
        if m["method"] == "process/closed":
            w = waiters.get(m["params"]["processId"])
            if w is not None:
                w[1].append(time.perf_counter())
                w[0].set()

    c.on_notify = on_notify
    lat: list[float] = []
    for i in range(SPAWN_WARMUP + SPAWN_N):
        pid = f"true-{i}"
        ev = trio.Event()
        stamp: list[float] = []
        waiters[pid] = (ev, stamp)
        t0 = time.perf_counter()
        p = await c.start_request("process/start", ctx.start_params(pid, ["/bin/true"]))
        try:
            await p.wait()
        except RpcError as exc:
            raise BenchFailure(f"process/start #{i} failed: {exc}") from None
        await wait_event(ev, 10, f"process/closed of spawn #{i}", c)
        del waiters[pid]
        if i >= SPAWN_WARMUP:
            lat.append(stamp[0] - t0)
    return {"p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3}


# ---------------------------------------------------------------------------------------------
# (b) 256 MiB of output through process/output

THROUGHPUT_BYTES = 256 * MiB


async def output_throughput(ctx: Ctx) -> dict[str, Value]:
    c = await ctx.session()
    total = 0
    chunks = 0
    bad = 0
    zeros: dict[int, bytes] = {}  # length -> an all-zero chunk of it (fast memcmp check)
    seqs_out = 0
    done = trio.Event()
    exit_code: list[int] = []
    t_closed: list[float] = []

    def on_notify(m: Any) -> None:
        nonlocal total, chunks, bad, seqs_out
        params = m["params"]
        method = m["method"]
        if method == "process/output":
            data = pybase64.b64decode(params["chunk"])
            total += len(data)
            chunks += 1
            if data != zeros.get(len(data)) and data != bytes(len(data)):
                bad += 1
            zeros.setdefault(len(data), data)
        elif method == "process/exited":
            exit_code.append(params["exitCode"])
        elif method == "process/closed":
            t_closed.append(time.perf_counter())
            done.set()

    c.on_notify = on_notify
    argv = ["/usr/bin/head", "-c", str(THROUGHPUT_BYTES), "/dev/zero"]
    cpu = CpuMeter(ctx.server.pid)
    cpu.start()
    t0 = time.perf_counter()
    try:
        await c.call("process/start", ctx.start_params("head", argv))
    except RpcError as exc:
        raise BenchFailure(f"process/start failed: {exc}") from None
    await wait_event(done, 120, "process/closed", c)
    cpu.stop()
    elapsed = t_closed[0] - t0
    if total != THROUGHPUT_BYTES or bad:
        raise BenchFailure(
            f"received {total} of {THROUGHPUT_BYTES} bytes ({bad} chunks with non-zero bytes, "
            f"exit code {exit_code})"
        )
    return {
        "mibps": THROUGHPUT_BYTES / MiB / elapsed,
        "chunk": THROUGHPUT_BYTES / chunks / 1024,
        "client_cpu": cpu.client,
        "server_cpu": cpu.server,
    }


# ---------------------------------------------------------------------------------------------
# (c) PTY echo round trip

ECHO_N = 1000


async def pty_echo(ctx: Ctx) -> dict[str, Value]:
    c = await ctx.session()
    pid = "echo"
    buf = bytearray()
    want = [0]
    got = trio.Event()
    stamp = [0.0]
    closed = trio.Event()

    def on_notify(m: Any) -> None:
        params = m["params"]
        if params.get("processId") != pid:
            return
        if m["method"] == "process/output":
            buf.extend(pybase64.b64decode(params["chunk"]))
            if want[0] and len(buf) >= want[0] and not got.is_set():
                stamp[0] = time.perf_counter()
                got.set()
        elif m["method"] == "process/closed":
            closed.set()

    c.on_notify = on_notify
    argv = ["/bin/sh", "-c", "stty raw -echo; exec cat"]
    try:
        await c.call("process/start", ctx.start_params(pid, argv, tty=True))
    except RpcError as exc:
        raise BenchFailure(f"process/start (tty) failed: {exc}") from None

    async def write(data: bytes) -> Pending:
        return await c.start_request("process/write", ctx.write_params(pid, data))

    # Readiness: send a fresh probe until it comes back alone and unaltered, i.e. the shell
    # has run `stty raw -echo` and cat is copying bytes verbatim.
    ready = False
    deadline = time.monotonic() + 10
    k = 0
    while time.monotonic() < deadline:
        k += 1
        probe = f"<probe{k}>".encode()
        buf.clear()
        await (await write(probe)).wait()
        await trio.sleep(0.05)
        if bytes(buf) == probe:
            ready = True
            break
    if not ready:
        raise BenchFailure(f"the PTY never echoed a probe verbatim (last output {bytes(buf)!r})")
    await trio.sleep(0.05)
    lat: list[float] = []
    for i in range(ECHO_N):
        payload = b"%016d" % i
        buf.clear()
        got = trio.Event()
        want[0] = 16
        t0 = time.perf_counter()
        p = await write(payload)
        try:
            res = await p.wait()
        except RpcError as exc:
            raise BenchFailure(f"process/write #{i} failed: {exc}") from None
        if res.get("status") != "accepted":
            raise BenchFailure(f"process/write #{i} answered {res}")
        await wait_event(got, 10, f"the echo of write #{i}", c)
        if bytes(buf) != payload:
            raise BenchFailure(f"write #{i}: sent {payload!r}, got back {bytes(buf)!r}")
        lat.append(stamp[0] - t0)
    want[0] = 0
    await c.call("process/terminate", {"processId": pid})
    await wait_event(closed, 10, "process/closed after terminate", c)
    return {"p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3}


# ---------------------------------------------------------------------------------------------
# (d) 1000 concurrent sleeps

CONCURRENT_N = 1000


def rss_settled(pid: int, samples: int = 5, gap: float = 0.02) -> int:
    vals = []
    for _ in range(samples):
        vals.append(rss_kib(pid))
        time.sleep(gap)
    return sorted(vals)[len(vals) // 2]


async def concurrent_sleeps(ctx: Ctx) -> dict[str, Value]:
    c = await ctx.session()
    closed: set[str] = set()
    all_closed = trio.Event()
    t_last = [0.0]
    expect = [CONCURRENT_N]

    def on_notify(m: Any) -> None:
        if m["method"] == "process/closed":
            closed.add(m["params"]["processId"])
            if len(closed) >= expect[0]:
                t_last[0] = time.perf_counter()
                all_closed.set()

    c.on_notify = on_notify
    await trio.sleep(0.3)
    idle = rss_settled(ctx.server.pid)
    ids = [f"sleep-{i}" for i in range(CONCURRENT_N)]
    t0 = time.perf_counter()
    pend = await c.pipeline(
        ("process/start", ctx.start_params(p, ["/bin/sleep", "1000"])) for p in ids)
    errors: list[str] = []
    with trio.move_on_after(120):
        for p in pend:
            try:
                await p.wait()
            except RpcError as exc:
                errors.append(str(exc))
            except ConnectionLost as exc:
                raise BenchFailure(f"connection lost during the starts: {exc}") from None
    if not all(p.done for p in pend):
        raise BenchFailure(f"only {sum(p.done for p in pend)} of {CONCURRENT_N} starts answered")
    t_started = max(p.t_done for p in pend) - t0
    started = CONCURRENT_N - len(errors)
    ctx.server.remember_children()
    await trio.sleep(0.5)
    busy = rss_settled(ctx.server.pid)
    expect[0] = started
    t1 = time.perf_counter()
    tpend = await c.pipeline(("process/terminate", {"processId": p}) for p in ids)
    await wait_event(all_closed, 60, f"{started} process/closed after terminate", c)
    not_running = 0
    for p in tpend:
        res = await p.wait()
        if not res.get("running"):
            not_running += 1
    if errors:
        raise BenchFailure(f"{len(errors)} of {CONCURRENT_N} starts failed, first: {errors[0]}")
    if not_running:
        raise BenchFailure(f"{not_running} terminates answered running:false")
    return {
        "start_all": t_started,
        "kill_all": t_last[0] - t1,
        "rss_per_proc": (busy - idle) / CONCURRENT_N,
        "rss_idle": idle / 1024,
    }


# ---------------------------------------------------------------------------------------------
# (e) idle sessions

IDLE_N = 4000
IDLE_CONCURRENCY = 20


async def idle_sessions(ctx: Ctx) -> dict[str, Value]:
    warm = await ctx.session()
    await warm.abort()
    await trio.sleep(0.3)
    idle = rss_settled(ctx.server.pid)
    failures: list[str] = []
    opened = 0
    live: list[Client] = []
    counter = iter(range(IDLE_N))

    async def worker() -> None:
        nonlocal opened
        for _ in counter:
            try:
                with trio.fail_after(30):
                    live.append(await ctx.session())
                opened += 1
            except (OSError, ConnectionLost, RpcError, trio.TooSlowError) as exc:
                failures.append(repr(exc))

    t0 = time.perf_counter()
    async with trio.open_nursery() as n:
        for _ in range(IDLE_CONCURRENCY):
            n.start_soon(worker)
    t_open = time.perf_counter() - t0
    await trio.sleep(1.0)
    busy = rss_settled(ctx.server.pid)
    dropped = sum(1 for c in live if c.closed.is_set())
    if dropped:
        ctx.notes.append(f"{dropped} sessions were closed by the server before the measurement")
    if failures:
        ctx.notes.append(f"{len(failures)} session failures, first: {failures[0]}")
    return {
        "rss_per_session": (busy - idle) / max(1, opened),
        "open_rate": opened / t_open,
        "failures": float(len(failures) + dropped),
    }


# ---------------------------------------------------------------------------------------------
# (f) resume after an abrupt drop

PRODUCER = r"""
import sys, time
w = sys.stdout.buffer.write
t0 = time.monotonic()
i = 0
while True:
    due = int((time.monotonic() - t0) * 1000) + 1
    while i < due:
        w(b"line %08d\n" % i)
        i += 1
    time.sleep(0.001)
"""
LINE_RE = re.compile(rb"line (\d{8})\n")


RESUME_CYCLES = 10


async def resume(ctx: Ctx) -> dict[str, Value]:
    """RESUME_CYCLES drops, each after 0.5 s of live output, each followed at once by a resume
    on a new connection and a catch-up; figures are medians over the cycles."""
    pid = "producer"
    chunks: dict[int, bytes] = {}
    events: dict[str, int] = {}
    first_live: list[tuple[int, float]] = []
    closed = trio.Event()

    def make_handler(live: bool) -> Callable[[Any], None]:
        def on_notify(m: Any) -> None:
            params = m["params"]
            if params.get("processId") != pid:
                return
            method = m["method"]
            if live and not first_live:
                first_live.append((params["seq"], time.perf_counter()))
            if method == "process/output":
                chunks[params["seq"]] = pybase64.b64decode(params["chunk"])
            elif method == "process/exited":
                events["exited"] = params["seq"]
            elif method == "process/closed":
                events["closed"] = params["seq"]
                closed.set()

        return on_notify

    client = await ctx.session()
    sid = client.session_id
    client.on_notify = make_handler(False)
    try:
        await client.call("process/start",
                          ctx.start_params(pid, [PYTHON3, "-u", "-c", PRODUCER]))
    except RpcError as exc:
        raise BenchFailure(f"process/start failed: {exc}") from None
    reconnects: list[float] = []
    firsts: list[float] = []
    caught: list[float] = []
    retries = 0
    reads = 0
    for _ in range(RESUME_CYCLES):
        await trio.sleep(0.5)
        client.on_notify = None
        await client.abort()
        t_drop = time.perf_counter()
        last_seen = 0
        while last_seen + 1 in chunks:
            last_seen += 1
        first_live.clear()

        client = await ctx.connect()
        client.on_notify = make_handler(True)
        while True:
            try:
                await client.call("initialize", {"clientName": "bench", "resumeSessionId": sid})
                break
            except RpcError as exc:
                if "already attached" not in exc.message or time.perf_counter() - t_drop > 5:
                    raise BenchFailure(f"resume failed: {exc}") from None
                retries += 1
                await trio.sleep(0.002)
        t_init = time.perf_counter()
        await client.notify("initialized", {})

        # Catch up with process/read from the last contiguous seq until the first live seq.
        after = last_seen
        while True:
            if first_live and all(s in chunks for s in range(1, first_live[0][0])):
                t_caught = time.perf_counter()
                break
            if time.perf_counter() - t_drop > 10:
                raise BenchFailure(f"not caught up after 10 s (after={after}, live={first_live})")
            try:
                r = await client.call(
                    "process/read",
                    {"processId": pid, "afterSeq": after, "maxBytes": None, "waitMs": 0},
                )
            except RpcError as exc:
                raise BenchFailure(f"process/read failed: {exc}") from None
            reads += 1
            for ch in r["chunks"]:
                chunks.setdefault(ch["seq"], pybase64.b64decode(ch["chunk"]))
            after = max(after, r["nextSeq"] - 1)
            if not r["chunks"]:
                await trio.sleep(0.001)
        reconnects.append((t_init - t_drop) * 1e3)
        firsts.append((first_live[0][1] - t_drop) * 1e3)
        caught.append((t_caught - t_drop) * 1e3)
    await trio.sleep(0.3)
    await client.call("process/terminate", {"processId": pid})
    await wait_event(closed, 10, "process/closed after terminate", client)

    # Gap-free and byte-exact: output seqs plus exit/close seqs cover 1..closed exactly, and
    # the concatenated output is consecutive numbered lines from 0.
    top = events["closed"]
    have = set(chunks) | {events.get("exited", -1), top}
    missing = [s for s in range(1, top + 1) if s not in have]
    if missing:
        raise BenchFailure(f"{len(missing)} seqs missing, first {missing[:5]} (of 1..{top})")
    data = b"".join(chunks[s] for s in sorted(chunks))
    n = 0
    pos = 0
    for m in LINE_RE.finditer(data):
        if m.start() != pos or int(m.group(1)) != n:
            raise BenchFailure(f"output not consecutive at byte {pos}: {data[pos:pos + 40]!r}")
        n += 1
        pos = m.end()
    tail = data[pos:]
    if tail and not (b"line %08d\n" % n).startswith(tail):
        raise BenchFailure(f"garbage at the end of the output: {tail[:40]!r}")
    ctx.notes.append(
        f"{n} lines verified across {RESUME_CYCLES} drops; {reads} catch-up reads, "
        f"{retries} resume retries"
    )
    return {
        "reconnect": statistics.median(reconnects),
        "first_notif": statistics.median(firsts),
        "caught_up": statistics.median(caught),
        "retries": float(retries),
    }


# ---------------------------------------------------------------------------------------------
# (g) filesystem

FS_DIR_ENTRIES = 10_000
FS_BIG_DIR_ENTRIES = 100_000
FS_META_N = 1000


def dir_name(entries: int) -> str:
    return f"dir{entries // 1000}k"


def prepare_fs_data(data_dir: Path) -> None:
    """Files the fs scenario reads (made once, shared by every run)."""
    for size in (1, 32, 64):
        p = data_dir / f"read-{size}.bin"
        if not p.exists():
            p.write_bytes(os.urandom(size * MiB))
    for entries in (FS_DIR_ENTRIES, FS_BIG_DIR_ENTRIES):
        d = data_dir / dir_name(entries)
        if not d.exists():
            d.mkdir()
            for i in range(entries):
                (d / f"entry-{i:06d}").touch()


class RssSampler:
    """Samples a process's VmRSS every few ms on a thread; ``peak`` in KiB."""

    def __init__(self, pid: int, interval: float = 0.003) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_kib(self.pid))


async def filesystem(ctx: Ctx) -> dict[str, Value]:
    out: dict[str, Value] = {}
    work = ctx.server.cwd / "fs-work"
    work.mkdir()
    holder: list[Client] = [await ctx.session()]

    async def call(method: str, params: dict[str, Any]) -> Any:
        if holder[0].closed.is_set():
            holder[0] = await ctx.session()
        return await holder[0].call(method, params)

    async def write_rate(size: int, reps: int) -> Value:
        payload = os.urandom(size * MiB)
        b64 = pybase64.b64encode(payload).decode()
        target = work / f"w{size}.bin"
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            try:
                await call("fs/writeFile", {"path": ctx.path(target), "dataBase64": b64})
            except ConnectionLost:
                reason = holder[0].close_reason
                return "refused (Close 1009)" if "1009" in reason else "refused (TCP drop)"
            except RpcError as exc:
                return f"FAILED: {exc}"
            times.append(time.perf_counter() - t0)
        if target.read_bytes() != payload:
            return "FAILED: wrong file content"
        return size / pct(times, 50)

    async def read_rate(size: int, reps: int, sampler: bool = False) -> Value:
        path = ctx.data_dir / f"read-{size}.bin"
        expected = path.read_bytes()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            try:
                if sampler:
                    out["rss_before_read64"] = rss_kib(ctx.server.pid) / 1024
                    with RssSampler(ctx.server.pid) as s:
                        r = await call("fs/readFile", {"path": ctx.path(path)})
                    out["rss_peak_read64"] = s.peak / 1024
                else:
                    r = await call("fs/readFile", {"path": ctx.path(path)})
            except (ConnectionLost, RpcError) as exc:
                return f"FAILED: {exc}"
            times.append(time.perf_counter() - t0)
            if pybase64.b64decode(r["dataBase64"]) != expected:
                return "FAILED: wrong bytes"
        return size / pct(times, 50)

    out["write1"] = await write_rate(1, 10)
    out["read1"] = await read_rate(1, 10)
    out["write16"] = await write_rate(16, 3)
    out["write32"] = await write_rate(32, 1)
    out["read32"] = await read_rate(32, 1)
    out["write64"] = await write_rate(64, 1)
    out["read64"] = await read_rate(64, 1, sampler=True)

    async def list_time(entries: int, reps: int) -> Value:
        listing = {"path": ctx.path(ctx.data_dir / dir_name(entries))}
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            try:
                r = await call("fs/readDirectory", listing)
            except RpcError as exc:
                # codex 0.169/0.171 refuse more than 50 000 entries (-32603 "… limit is 50000")
                return "refused (limit)" if "limit is" in exc.message else f"FAILED: {exc}"
            except ConnectionLost as exc:
                return f"FAILED: {exc}"
            times.append(time.perf_counter() - t0)
            if len(r["entries"]) != entries:
                return f"FAILED: {len(r['entries'])} entries"
        return pct(times, 50) * 1e3

    out["readdir"] = await list_time(FS_DIR_ENTRIES, 5)
    out["readdir100k"] = await list_time(FS_BIG_DIR_ENTRIES, 3)

    lat = []
    meta_path = ctx.path(ctx.data_dir / "read-1.bin")
    try:
        for _ in range(FS_META_N):
            t0 = time.perf_counter()
            await call("fs/getMetadata", {"path": meta_path})
            lat.append(time.perf_counter() - t0)
        out["meta_p50"] = pct(lat, 50) * 1e3
        out["meta_p99"] = pct(lat, 99) * 1e3
    except (ConnectionLost, RpcError) as exc:
        out["meta_p50"] = out["meta_p99"] = f"FAILED: {exc}"
    return out


# ---------------------------------------------------------------------------------------------
# (h) connect + initialize

HANDSHAKE_N = 200


async def handshake(ctx: Ctx) -> dict[str, Value]:
    """A fresh connection's TCP connect, upgrade and `initialize`, each time on a new socket
    (aborted after the reply); 10 warm-up rounds first."""
    lat: list[float] = []
    for i in range(HANDSHAKE_N + 10):
        t0 = time.perf_counter()
        c = await Client.connect(ctx.nursery, ctx.server.host, ctx.server.port,
                                 quickack=ctx.quickack)
        try:
            await c.call("initialize", {"clientName": "bench"})
        except RpcError as exc:
            raise BenchFailure(f"initialize #{i} failed: {exc}") from None
        if i >= 10:
            lat.append(time.perf_counter() - t0)
        await c.abort()
    return {"p50": pct(lat, 50) * 1e3, "p99": pct(lat, 99) * 1e3}


# (i) many clients at once: 8 streaming connections, then 50 connections running commands

MANY_STREAMS = 8
MANY_STREAM_BYTES = 32 * MiB
MANY_STREAM_FILE = 1 * MiB
MANY_STREAM_LINE = 32
MANY_CMD_CLIENTS = 50
MANY_CMD_SECONDS = 3.0
#: Sessions opened at a time before a phase starts (not measured).
MANY_CONNECT_CONCURRENCY = 10
#: The longest chunk compared against the expected pattern in one slice.
_PATTERN_SPAN = 1 * MiB


async def _sessions(ctx: Ctx, n: int) -> list[Client]:
    """``n`` initialized sessions, opened ``MANY_CONNECT_CONCURRENCY`` at a time."""
    out: list[Client] = []
    todo = iter(range(n))

    async def opener() -> None:
        for _ in todo:
            with trio.fail_after(30):
                out.append(await ctx.session())

    async with trio.open_nursery() as nursery:
        for _ in range(min(n, MANY_CONNECT_CONCURRENCY)):
            nursery.start_soon(opener)
    return out


class PatternCheck:
    """Checks a stream that must be ``line`` repeated, cut at ``total`` bytes; counts bytes."""

    def __init__(self, line: bytes, total: int) -> None:
        self.line = line
        self.total = total
        self.got = 0
        self.bad = 0
        self._rep = line * (_PATTERN_SPAN // len(line) + 2)

    def feed(self, data: bytes) -> None:
        for off in range(0, len(data), _PATTERN_SPAN):
            part = data[off:off + _PATTERN_SPAN]
            start = self.got % len(self.line)
            if self._rep[start:start + len(part)] != part:  # bytes slices: memcpy + memcmp
                self.bad += 1
            self.got += len(part)


def _stream_file(data_dir: Path, i: int) -> Path:
    """Stream ``i``'s source: its own 32-byte line repeated to ``MANY_STREAM_FILE`` bytes (made
    once, shared by every run); the child ``cat``s it until it has written its share."""
    path = data_dir / f"stream-{i}.txt"
    if not path.exists():
        path.write_bytes(_stream_line(i) * (MANY_STREAM_FILE // MANY_STREAM_LINE))
    return path


def _stream_line(i: int) -> bytes:
    head = b"stream %d " % i
    return head + b"." * (MANY_STREAM_LINE - len(head) - 1) + b"\n"


async def _many_streams(ctx: Ctx) -> dict[str, Value]:
    clients = await _sessions(ctx, MANY_STREAMS)
    checks: list[PatternCheck] = []
    exits: list[dict[str, Any]] = []
    closed = [trio.Event() for _ in clients]
    t_closed = [0.0] * len(clients)
    stray: list[str] = []
    for i, c in enumerate(clients):
        check = PatternCheck(_stream_line(i), MANY_STREAM_BYTES)
        checks.append(check)

        def on_notify(m: Any, i: int = i, check: PatternCheck = check) -> None:
            params = m["params"]
            method = m["method"]
            if method == "process/output":
                if params["stream"] != "stdout":
                    stray.append(f"stream {i}: {params['stream']} output")
                check.feed(pybase64.b64decode(params["chunk"]))
            elif method == "process/exited":
                exits.append(params)
            elif method == "process/closed":
                t_closed[i] = time.perf_counter()
                closed[i].set()

        c.on_notify = on_notify
    argvs = []
    for i in range(len(clients)):
        source = str(_stream_file(ctx.data_dir, i))
        argvs.append(["/bin/cat", *[source] * (MANY_STREAM_BYTES // MANY_STREAM_FILE)])
    t0 = time.perf_counter()
    pend = []
    for i, c in enumerate(clients):
        pend.append(await c.start_request(
            "process/start", ctx.start_params(f"stream-{i}", argvs[i])))
    for p in pend:
        try:
            await p.wait()
        except RpcError as exc:
            raise BenchFailure(f"process/start failed: {exc}") from None
    for i, c in enumerate(clients):
        await wait_event(closed[i], 120, f"process/closed of stream {i}", c)
    elapsed = max(t_closed) - t0
    wrong = [f"stream {i}: {ch.got} bytes, {ch.bad} bad chunks"
             for i, ch in enumerate(checks) if ch.got != ch.total or ch.bad]
    codes = [e.get("exitCode") for e in exits]
    if wrong or stray or codes != [0] * len(clients):
        raise BenchFailure(f"streams wrong: {wrong or stray or f'exit codes {codes}'}")
    for c in clients:
        await c.abort()
    return {"stream_mibps": len(clients) * MANY_STREAM_BYTES / MiB / elapsed}


async def _many_commands(ctx: Ctx) -> dict[str, Value]:
    clients = await _sessions(ctx, MANY_CMD_CLIENTS)
    latencies: list[float] = []
    failures: list[str] = []
    t_last = [0.0]

    async def worker(k: int, c: Client, deadline: float) -> None:
        waiting: dict[str, tuple[trio.Event, list[bytes], list[Any]]] = {}

        def on_notify(m: Any) -> None:
            params = m["params"]
            w = waiting.get(params.get("processId"))
            if w is None:
                return
            method = m["method"]
            if method == "process/output":
                w[1].append(pybase64.b64decode(params["chunk"]))
            elif method == "process/exited":
                w[2].append(params["exitCode"])
            elif method == "process/closed":
                w[0].set()

        c.on_notify = on_notify
        n = 0
        while time.perf_counter() < deadline:
            pid = f"cmd-{k}-{n}"
            n += 1
            ev = trio.Event()
            out: list[bytes] = []
            code: list[Any] = []
            waiting[pid] = (ev, out, code)
            t0 = time.perf_counter()
            try:
                await c.call("process/start", ctx.start_params(pid, ["/bin/echo", pid]))
            except RpcError as exc:
                failures.append(f"process/start: {exc}")
                return
            await wait_event(ev, 30, f"process/closed of {pid}", c)
            t1 = time.perf_counter()
            del waiting[pid]
            if b"".join(out) != pid.encode() + b"\n" or code != [0]:
                failures.append(f"{pid}: output {b''.join(out)!r}, exit codes {code}")
                return
            latencies.append(t1 - t0)
            t_last[0] = max(t_last[0], t1)

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for k, c in enumerate(clients):
            nursery.start_soon(worker, k, c, t0 + MANY_CMD_SECONDS)
    if failures:
        raise BenchFailure(f"{len(failures)} commands failed, first: {failures[0]}")
    ctx.notes.append(f"{len(latencies)} commands on {len(clients)} connections")
    return {
        "cmd_rate": len(latencies) / (t_last[0] - t0),
        "cmd_p50": pct(latencies, 50) * 1e3,
        "cmd_p99": pct(latencies, 99) * 1e3,
    }


async def many_clients(ctx: Ctx) -> dict[str, Value]:
    out = await _many_streams(ctx)
    out.update(await _many_commands(ctx))
    return out


SCENARIOS = [
    Scenario("spawn", "a", "/bin/true start -> process/closed, 300 sequential spawns",
             spawn_latency,
             [Figure("p50", "spawn->closed p50", "ms", "lower", "{:.3f}"),
              Figure("p99", "spawn->closed p99", "ms", "lower", "{:.3f}")],
             timeout=90),
    Scenario("throughput", "b", "256 MiB of child output via process/output", output_throughput,
             [Figure("mibps", "output throughput", "MiB/s", "higher", "{:.1f}"),
              Figure("chunk", "mean chunk size", "KiB", "", "{:.1f}"),
              Figure("client_cpu", "bench client CPU during transfer", "%", "", "{:.0f}"),
              Figure("server_cpu", "daemon CPU during transfer", "%", "", "{:.0f}")],
             timeout=90),
    Scenario("pty", "c", "PTY echo round trip, 1000 x 16 B", pty_echo,
             [Figure("p50", "pty echo p50", "ms", "lower", "{:.3f}"),
              Figure("p99", "pty echo p99", "ms", "lower", "{:.3f}")],
             timeout=120, floor_keys=("p50", "p99")),
    Scenario("concurrent", "d", "1000 concurrent `sleep 1000` in one session", concurrent_sleeps,
             [Figure("start_all", "start 1000 (pipelined)", "s", "lower", "{:.3f}"),
              Figure("kill_all", "terminate 1000 -> last closed", "s", "lower", "{:.3f}"),
              Figure("rss_per_proc", "daemon RSS per process", "KiB", "lower", "{:.1f}"),
              Figure("rss_idle", "daemon RSS idle", "MiB", "", "{:.1f}")],
             timeout=300,  # codex 0.169/0.171 take about a minute to start 1000 processes
             trio_exec_args=("--max-processes-per-session", str(CONCURRENT_N),
                             "--max-processes", str(CONCURRENT_N + 24))),
    Scenario("idle", "e", "4000 idle sessions, 20 connecting at a time", idle_sessions,
             [Figure("rss_per_session", "daemon RSS per session", "KiB", "lower", "{:.1f}"),
              Figure("open_rate", "session open rate", "sess/s", "higher", "{:.0f}"),
              Figure("failures", "session failures", "count", "lower", "{:.0f}")],
             timeout=120),
    Scenario("resume", "f", "resume after an abrupt drop, 10 drops (1000 lines/s producer)", resume,
             [Figure("reconnect", "connect+initialize(resume)", "ms", "lower", "{:.2f}"),
              Figure("first_notif", "drop -> first live notification", "ms", "lower", "{:.2f}"),
              Figure("caught_up", "drop -> caught up", "ms", "lower", "{:.2f}"),
              Figure("retries", "resume retries (already attached)", "count", "", "{:.0f}")],
             timeout=45, floor_keys=("reconnect", "first_notif", "caught_up")),
    Scenario("fs", "g", "filesystem methods", filesystem,
             [Figure("write1", "writeFile 1 MiB (median of 10)", "MiB/s", "higher", "{:.1f}"),
              Figure("read1", "readFile 1 MiB (median of 10)", "MiB/s", "higher", "{:.1f}"),
              Figure("write16", "writeFile 16 MiB (median of 3)", "MiB/s", "higher", "{:.1f}"),
              Figure("write32", "writeFile 32 MiB", "MiB/s", "higher", "{:.1f}"),
              Figure("read32", "readFile 32 MiB", "MiB/s", "higher", "{:.1f}"),
              Figure("write64", "writeFile 64 MiB", "MiB/s", "higher", "{:.1f}"),
              Figure("read64", "readFile 64 MiB", "MiB/s", "higher", "{:.1f}"),
              Figure("rss_before_read64", "daemon RSS before 64 MiB read", "MiB", "", "{:.1f}"),
              Figure("rss_peak_read64", "daemon peak RSS during 64 MiB read", "MiB", "lower",
                     "{:.1f}"),
              Figure("readdir", "readDirectory 10 000 entries (median of 5)", "ms", "lower", "{:.2f}"),
              Figure("readdir100k", "readDirectory 100 000 entries (median of 3)", "ms", "lower", "{:.1f}"),
              Figure("meta_p50", "getMetadata p50", "ms", "lower", "{:.3f}"),
              Figure("meta_p99", "getMetadata p99", "ms", "lower", "{:.3f}")],
             timeout=120, floor_keys=("meta_p50", "meta_p99")),
    Scenario("handshake", "h", f"connect + initialize, {HANDSHAKE_N} fresh connections",
             handshake,
             [Figure("p50", "connect+initialize p50", "ms", "lower", "{:.3f}"),
              Figure("p99", "connect+initialize p99", "ms", "lower", "{:.3f}")],
             timeout=60, floor_keys=("p50", "p99")),
    Scenario("many", "i",
             f"many clients at once: {MANY_STREAMS} connections each streaming "
             f"{MANY_STREAM_BYTES // MiB} MiB, then {MANY_CMD_CLIENTS} connections each running "
             f"`echo` in a loop for {MANY_CMD_SECONDS:g} s", many_clients,
             [Figure("stream_mibps", f"{MANY_STREAMS} streams, aggregate output", "MiB/s",
                     "higher", "{:.1f}"),
              Figure("cmd_rate", f"{MANY_CMD_CLIENTS} clients, aggregate commands", "cmd/s",
                     "higher", "{:.0f}"),
              Figure("cmd_p50", "command start->closed p50", "ms", "lower", "{:.2f}"),
              Figure("cmd_p99", "command start->closed p99", "ms", "lower", "{:.2f}")],
             timeout=120),
]
