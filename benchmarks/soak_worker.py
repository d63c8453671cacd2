"""One soak connection: a client that spawns, reads, writes, resizes, signals, terminates and
uses the filesystem at random, drops its TCP connection and resumes its session.

Rules:
- Every request is answered, or was in flight on a connection the worker itself dropped
  (counted as abandoned, by method). Every error reply is a violation unless the action that
  caused it made it expected, and then it is counted under its name. Requests that change
  state (start, write, resize, signal, terminate, fs) never overlap a drop, so their outcome
  is never in doubt; long-poll reads and read-only requests do.
- Output is gathered per process by seq from notifications and `process/read` alike; a
  process is finished when a read reports it closed with nothing newer, and then checked by
  content (`soak_programs.check`).
- Half the workers live on reads (long-polls with `afterSeq` = the last `nextSeq` - 1), half
  on notifications (reading only after a resume, a close or at the end, from the last seq seen
  without a gap or the last read's `nextSeq` - 1, whichever is later), as codex 0.169's
  client does.
- A drop is a TCP reset; the resume (`initialize` with `resumeSessionId`) follows after an
  absence, mostly short, sometimes seconds (always below the session TTL). Now and then a
  worker abandons its session instead; the daemon must end it and its processes at the TTL.
- `dialect` 0.120 uses the extensions (resize, named signals, `closeStdin`, `process/list`);
  0.169 only what codex 0.169's own server serves (URI paths, `writeId`, `interrupt`).
"""

from __future__ import annotations

import base64
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from benchmarks import soak_programs as programs
from benchmarks.soak_fs import FsWork
from benchmarks.soak_programs import KILLED, Proc
from benchmarks.wsclient import Client, ConnectionLost, RpcError

Json = Any
MAX_LIVE = 4
#: Bound on any request beyond its own `waitMs`.
REQUEST_TIMEOUT = 30.0
MEAN_GAP = 0.25
#: How long a finished process is surely still retained (the soak's `--retention` is longer).
SURELY_RETAINED = 1.0


@dataclass(frozen=True)
class Dialect:
    name: str

    @property
    def extensions(self) -> bool:
        return self.name == "0.120"

    def path(self, path: Path) -> str:
        return str(path) if self.name == "0.120" else path.as_uri()

    def killed_codes(self, tty: bool) -> frozenset[int]:
        if self.name == "0.120":
            return frozenset({-1})
        return frozenset({137, 1}) if tty else frozenset({137})


@dataclass
class Tally:
    """Figures shared by every worker of a run."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    expected: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations.append(text)
        if len(self.violations) <= 20:
            print(f"VIOLATION: {text}", flush=True)


class Dropped(Exception):
    """The request got no answer: its connection is gone."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Worker(FsWork):
    def __init__(self, index: int, host: str, port: int, root: Path, marker_env: dict[str, str],
                 dialect: Dialect, tally: Tally, deadline: float, seed: int, *,
                 max_absence: float, reference: bool = False) -> None:
        self.name = f"w{index}"
        self.host, self.port = host, port
        self.dir = root / self.name
        self.env = marker_env
        self.dialect = dialect
        self.reference = reference
        self.tally = tally
        self.deadline = deadline
        self.rng = random.Random(seed)  # the actions: the same sequence for the same seed
        self.read_rng = random.Random(-seed)  # the reads, whose number depends on timing
        self.max_absence = max_absence
        self.poll_mode = index % 4 < 2
        self.client: Client | None = None
        self.attached = trio.Event()
        self.session_id: str | None = None
        self.procs: dict[str, Proc] = {}
        self.wakes: dict[str, trio.Event] = {}
        self.finished_at: dict[str, float] = {}
        self.serial = 0
        self.write_ids = 0
        self.files: dict[str, bytes] = {}
        self.dirs: set[str] = set()

    # -- requests ------------------------------------------------------------------------------

    async def call(self, method: str, params: Json,
                   expected: Callable[[RpcError], str | None] | None = None) -> Json:
        """The result of one request; None after an error reply (named if `expected` names
        it, else a violation). Dropped when the connection went away first."""
        client = self.client
        if client is None or client.closed.is_set():
            raise Dropped
        wait = params.get("waitMs", 0) / 1000 if isinstance(params, dict) else 0
        pending = await client.start_request(method, params)
        with trio.move_on_after(REQUEST_TIMEOUT + wait):
            try:
                result = await pending.wait()
            except ConnectionLost as exc:
                if client.close_reason == "aborted by client":
                    self.tally.counts[f"abandoned by our drop: {method}"] += 1
                else:
                    self.tally.violation(f"{self.name} {method}: connection lost ({exc})")
                raise Dropped from None
            except RpcError as exc:
                name = expected(exc) if expected else None
                if name is None:
                    p = self.procs.get(params.get("processId")) if isinstance(params, dict) else None
                    story = f"; its history: {p.history}" if p is not None and p.history else ""
                    if p is not None:
                        p.history = []  # told once
                    self.tally.violation(f"{self.name} {method} {params}: error {exc}{story}")
                else:
                    self.tally.expected[name] += 1
                return None
            key = f"{method} (long-poll)" if wait else method
            self.tally.latencies[key].append((pending.t_done - pending.t_sent) * 1000)
            return result
        self.tally.violation(f"{self.name} {method}: no answer within {REQUEST_TIMEOUT + wait:.0f} s")
        return None

    # -- connection ----------------------------------------------------------------------------

    async def connect(self, nursery: trio.Nursery) -> None:
        """A new connection, resuming the session if there is one."""
        for attempt in range(50):
            client = await Client.connect(nursery, self.host, self.port)
            client.on_notify = self.on_notify
            self.client = client
            params: dict[str, Json] = {"clientName": "soak"}
            if self.session_id is not None:
                params["resumeSessionId"] = self.session_id

            def refused(exc: RpcError) -> str | None:
                # codex's server refuses a resume until it has seen the old connection drop
                if "already attached" in exc.message:
                    return "resume refused while the old connection still seemed attached (retried)"
                return None

            result = await self.call("initialize", params, refused)
            if result is not None:
                self.session_id = result["sessionId"]
                await client.notify("initialized", {})
                self.attached.set()
                return
            await client.abort()
            await trio.sleep(0.05 * (attempt + 1))
        raise RuntimeError(f"{self.name}: no connection after 50 attempts")

    async def drop(self, nursery: trio.Nursery, *, abandon: bool = False) -> None:
        client = self.client
        assert client is not None
        in_flight = None
        if self.rng.random() < 0.5:  # leave a read-only request in flight too
            in_flight = await client.start_request("fs/getMetadata",
                                                   {"path": self.dialect.path(self.dir)})
        self.attached = trio.Event()
        await client.abort()
        if in_flight is not None and isinstance(in_flight.error, ConnectionLost):
            self.tally.counts["abandoned by our drop: fs/getMetadata"] += 1
        if abandon:
            self.tally.counts["sessions abandoned (left to the TTL)"] += 1
            self.tally.counts["processes left to their session's end"] += sum(
                not p.done for p in self.procs.values())
            for pid in self.procs:
                self.wakes[pid].set()
            self.session_id = None
            self.procs, self.wakes = {}, {}
        else:
            self.tally.counts["drops (TCP reset) then resume"] += 1
            r = self.rng.random()
            long = self.max_absence
            absence = 0.0 if r < 0.6 else self.rng.uniform(0.1, long / 2) if r < 0.95 else long
            for p in self.procs.values():
                self.note(p, f"dropped; back in {absence:.2f} s")
            await trio.sleep(absence)
        await self.connect(nursery)
        for p in self.procs.values():
            self.note(p, "resumed")
        if abandon:
            self.tally.counts["sessions"] += 1
        for wake in self.wakes.values():
            wake.set()

    def on_notify(self, msg: Json) -> None:
        params = msg.get("params") or {}
        p = self.procs.get(params.get("processId"))
        if p is None:
            return
        method = msg["method"]
        if method == "process/output":
            err = p.add_chunk(params["seq"], params["stream"], base64.b64decode(params["chunk"]),
                              by_read=False)
            if err:
                self.tally.violation(err)
        elif method == "process/exited":
            p.exit_seq = params["seq"]
            self.note(p, f"exited seq {p.exit_seq} notified")
        elif method == "process/closed":
            p.closed_seq = params["seq"]
            self.note(p, f"closed seq {p.closed_seq} notified")
            self.wakes[p.id].set()

    # -- following a process's output ------------------------------------------------------------

    async def follow(self, p: Proc) -> None:
        while not p.done:
            await self.attached.wait()
            if p is not self.procs.get(p.id):  # its session was abandoned
                return
            params: dict[str, Json] = {"processId": p.id}
            if self.poll_mode:
                params["afterSeq"] = p.cursor
                params["waitMs"] = self.read_rng.choice((0, 250, 1000, 3000))
                if self.read_rng.random() < 0.2:
                    params["maxBytes"] = self.read_rng.choice((1, 4096, 65536))
            else:
                await self.wakes[p.id].wait()
                self.wakes[p.id] = trio.Event()
                if p is not self.procs.get(p.id):
                    return
                params["afterSeq"] = p.catch_up_from()
            self.note(p, f"read {params}")
            try:
                result = await self.call("process/read", params)
            except Dropped:
                self.note(p, "read dropped")
                continue
            if result is None:
                await trio.sleep(0.5)
                continue
            self.apply_read(p, result)
            if not self.poll_mode and not p.done and result["chunks"]:
                self.wakes[p.id].set()  # more may be retained: read on

    def note(self, p: Proc, text: str) -> None:
        p.history.append(f"{trio.current_time():.2f} {text}")

    def apply_read(self, p: Proc, r: Json) -> None:
        self.note(p, f"read: {len(r['chunks'])} chunks, nextSeq {r['nextSeq']}, exited "
                     f"{r['exited']}, closed {r['closed']}")
        if r.get("retentionGap"):
            self.tally.violation(f"{p.id}: retention gap {r['retentionGap']}")
        for c in r["chunks"]:
            err = p.add_chunk(c["seq"], c["stream"], base64.b64decode(c["chunk"]), by_read=True)
            if err:
                self.tally.violation(err)
        p.cursor = max(p.cursor, r["nextSeq"] - 1)
        if r["exited"]:
            p.exit_code = r["exitCode"]
            p.signal = r.get("signal")
        if r["closed"] and not r["chunks"]:
            p.final_seq = r["nextSeq"] - 1
            p.done = True
            self.finished_at[p.id] = time.monotonic()
            errors = programs.check(p, self.dialect.killed_codes(p.tty))
            for err in errors:
                self.tally.violation(f"{self.name} {err}; its history: {p.history}")
            self.tally.counts[f"processes checked by content: {p.kind}"] += 1
            self.tally.counts["chunks first seen in a notification"] += p.by_notification
            self.tally.counts["chunks first seen in a read"] += p.by_read
            p.chunks.clear()  # checked: the soak keeps no output beyond this point
            p.history.clear()

    # -- actions -----------------------------------------------------------------------------

    def live(self, *kinds: str) -> list[Proc]:
        return [p for p in self.procs.values()
                if not p.done and p.ending is None and (not kinds or p.kind in kinds)]

    async def start(self, nursery: trio.Nursery) -> None:
        if len(self.live()) >= MAX_LIVE:
            return
        self.serial += 1
        pid = f"p{self.serial}"
        kinds = ["count"] * 3 + ["burst", "sig", "sleep"] + ["quick", "cat", "pty"] * 2
        kind = self.rng.choice(kinds)
        p = {
            "count": lambda: programs.count(pid, self.rng.randint(5, 40)),
            "burst": lambda: programs.burst(pid, self.rng.randint(1000, 40000)),
            "quick": lambda: programs.quick(pid, self.rng.randint(0, 999)),
            "cat": lambda: programs.cat(pid),
            "pty": lambda: programs.pty(pid, (24, 80)),
            "sig": lambda: programs.sig(pid),
            "sleep": lambda: programs.sleep(pid),
        }[kind]()
        params: dict[str, Json] = {"processId": pid, "argv": p.argv,
                                   "cwd": self.dialect.path(self.dir), "env": self.env,
                                   "tty": p.tty, "arg0": None}
        if p.pipe_stdin:
            params["pipeStdin"] = True
        if p.tty and self.dialect.extensions:
            p.sizes = [(self.rng.randint(10, 60), self.rng.randint(40, 200))]
            params["size"] = {"rows": p.sizes[0][0], "cols": p.sizes[0][1]}
        self.procs[pid] = p
        self.wakes[pid] = trio.Event()
        try:
            result = await self.call("process/start", params)
        except Dropped:
            del self.procs[pid]
            raise
        if result is None:
            del self.procs[pid]
            return
        self.tally.counts[f"processes started: {kind}"] += 1
        self.note(p, "started")
        nursery.start_soon(self.follow, p)

    def write_params(self, p: Proc, data: bytes, close: bool = False) -> dict[str, Json]:
        params: dict[str, Json] = {"processId": p.id, "chunk": b64(data)}
        if close:
            params["closeStdin"] = True
        if not self.dialect.extensions:
            self.write_ids += 1
            params["writeId"] = str(self.write_ids)
        return params

    async def write(self) -> None:
        targets = [p for p in self.live("cat", "pty") if p.kind == "cat" or p.ready()]
        if not targets:
            return
        p = self.rng.choice(targets)
        line = f"{p.id}-{len(p.lines_sent)}-{os.urandom(self.rng.randint(1, 200)).hex()}"
        result = await self.call("process/write", self.write_params(p, f"{line}\n".encode()))
        if result is not None:
            if result["status"] != "accepted":
                self.tally.violation(f"{self.name} write to running {p.id}: {result}")
                return
            p.lines_sent.append(line)
            p.written += f"{line}\n".encode()

    async def write_after_exit(self) -> None:
        now = time.monotonic()
        gone = [pid for pid, t in self.finished_at.items()
                if now - t < SURELY_RETAINED and pid in self.procs]
        if not gone:
            return
        pid = self.rng.choice(gone)

        def refused(exc: RpcError) -> str | None:
            if self.reference and exc.message == "failed to write to process stdin":
                return "write to an exited stdin pipe: -32603 failed to write (codex's rule)"
            return None

        result = await self.call("process/write", self.write_params(self.procs[pid], b"late\n"),
                                 refused)
        if result is not None:
            if result["status"] == "stdinClosed":
                self.tally.expected["write to a process that has exited: stdinClosed"] += 1
            elif result["status"] == "accepted" and self.reference and self.procs[pid].tty:
                self.tally.expected["write to an exited tty: accepted (codex's rule)"] += 1
            else:
                self.tally.violation(f"{self.name} write to exited {pid}: {result}")

    async def resize(self) -> None:
        targets = self.live("pty")
        if not targets or not self.dialect.extensions:
            return
        p = self.rng.choice(targets)
        size = (self.rng.randint(10, 60), self.rng.randint(40, 200))
        result = await self.call("process/resize",
                                 {"processId": p.id, "rows": size[0], "cols": size[1]})
        if result is not None:
            p.sizes.append(size)

    async def signal(self) -> None:
        targets = [p for p in self.live("sig") if p.ready() and p.signal_answered()]
        if not targets or not self.dialect.extensions:
            return
        p = self.rng.choice(targets)
        result = await self.call("process/signal", {"processId": p.id, "signal": "SIGUSR1"})
        if result is not None:
            p.signals.append("SIGUSR1")

    async def end_one(self, p: Proc, *, terminate: bool = False) -> None:
        """End `p` the way its kind ends (or with `process/terminate`)."""
        if p.kind == "cat" and self.dialect.extensions and not terminate:
            p.ending = "close-stdin"
            result = await self.call("process/write", self.write_params(p, b"", close=True))
        elif p.kind == "pty" and not terminate:
            if not p.ready():
                return
            p.ending = "end-line"
            result = await self.call("process/write", self.write_params(p, b"end\n"))
        elif p.kind == "sig" and not terminate and p.ready() and p.signal_answered():
            how = self.rng.choice(("interrupt", "terminate")) if self.dialect.extensions else "interrupt"
            p.ending = how
            result = await self.call("process/signal", {"processId": p.id, "signal": how})
        elif p.kind in ("count", "burst", "quick") and not terminate:
            return  # they end by themselves
        else:
            p.ending = KILLED
            result = await self.call("process/terminate", {"processId": p.id})
        self.note(p, f"ended by {p.ending}: {result}")
        if result is None:
            self.tally.violation(f"{self.name} ending {p.id} ({p.ending}) failed")

    async def retire(self) -> None:
        targets = self.live()
        if targets:
            p = self.rng.choice(targets)
            await self.end_one(p, terminate=self.rng.random() < 0.2)

    async def list_processes(self) -> None:
        if not self.dialect.extensions:
            return
        result = await self.call("process/list", {})
        if result is None:
            return
        listed = {e["processId"] for e in result["processes"]}
        for p in self.procs.values():
            if not p.done and p.id not in listed:
                self.tally.violation(f"{self.name} process/list lacks running {p.id}: {p.history}")
                p.history = []

    # -- the run -----------------------------------------------------------------------------

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            await self.connect(nursery)
            self.tally.counts["sessions"] += 1
            if await self.call("fs/createDirectory", {"path": self.dialect.path(self.dir)}) is None:
                return
            actions = [
                (6, lambda: self.start(nursery)), (5, self.write), (1, self.write_after_exit),
                (2, self.resize), (2, self.signal), (3, self.retire), (1, self.list_processes),
                (4, self.fs),
            ]
            weights = [w for w, _ in actions]
            while trio.current_time() < self.deadline:
                await trio.sleep(self.rng.expovariate(1 / MEAN_GAP))
                self.forget_finished()
                client = self.client
                if client is None or client.closed.is_set():  # closed by the server: a violation
                    self.attached = trio.Event()             # counted already; resume
                    await self.connect(nursery)
                r = self.rng.random()
                try:
                    if r < 0.02:
                        await self.drop(nursery)
                    elif r < 0.0025 + 0.02:
                        await self.drop(nursery, abandon=True)
                    else:
                        await self.rng.choices(actions, weights)[0][1]()
                except Dropped:
                    pass
            await self.wind_down()
            nursery.cancel_scope.cancel()

    def forget_finished(self) -> None:
        """Drop processes checked a while ago (the write-after-exit window is over)."""
        now = time.monotonic()
        for pid, t in list(self.finished_at.items()):
            if now - t > 2 * SURELY_RETAINED:
                del self.finished_at[pid]
                self.procs.pop(pid, None)
                self.wakes.pop(pid, None)

    async def wind_down(self) -> None:
        """End every process, wait until each one is read to its close, then leave."""
        with trio.move_on_after(60) as scope:
            for p in list(self.procs.values()):
                if not p.done and p.ending is None:
                    terminate = p.kind in ("pty", "sig") and not (p.ready() and p.signal_answered())
                    try:
                        await self.end_one(p, terminate=terminate)
                    except Dropped:
                        break
            while not all(p.done for p in self.procs.values()):
                for wake in self.wakes.values():
                    wake.set()
                await trio.sleep(0.2)
        if scope.cancelled_caught:
            left = [f"{p.id} ({p.kind}, {p.ending})" for p in self.procs.values() if not p.done]
            self.tally.violation(f"{self.name}: not closed 60 s after the end: {left}")
        if self.client is not None:
            await self.client.close()
