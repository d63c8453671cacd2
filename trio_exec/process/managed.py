"""One running child as the session sees it: its output log, its events, its controls.

Rules:
- It speaks domain values (`events.py`): a read returns a `ProcessRead` with `bytes` chunks,
  and every log event is emitted as a `ProcessOutput`/`ProcessExited`/`ProcessClosed`; the wire
  forms (base64, notifications, dialect members) are made in `rpc/`.
- Every event (output chunk, exit, close) is recorded and emitted under one lock, so per
  process the events (and so the notifications) leave in strictly increasing seq;
  `ProcessClosed` is last and emitted exactly once, after the exit and the end of every output
  stream.
- Nothing is emitted before `publish()` (called once the `process/start` response is queued),
  so the start response always precedes the process's notifications. Output is not read before
  then either: the pipe holds it.
- A long-poll read returns when an event newer than `after_seq` exists, at its deadline, or at
  once when the process is closed (nothing newer will ever come).
- The entry is forgotten `retention` seconds after close.
- The process keeps the dialect of its `process/start` (`proto/dialect.py`). A 0.169 process
  reports a signal death as exit code 128+n (pipe and tty alike), has `sandboxDenied` in its
  `process/exited` and `process/read` (put there by `rpc/`), answers `nextSeq` by the 0.169
  rule (`outputlog.py`: a read without `maxBytes` counts the exit and close events), and
  de-duplicates
  `process/write` by `writeId` (a repeated id is acknowledged, not written). A 0.120 process
  reports -1 and answers `nextSeq` by the 0.120 rule. Both add `signal`.
- `sandboxDenied` (0.169) is true only for a confined child that ended with a non-zero code and
  looks denied by the sandbox, by codex's own rule (`is_likely_sandbox_denied`): its output
  (any stream) mentions one of `DENIAL_KEYWORDS`, case-insensitively; or, without such words,
  it died of SIGSYS (exit 159, a seccomp kill) — 2, 126 and 127 never count without the words.
- The process group is SIGKILLed at every teardown, whatever state the leader is in: session
  expiry and daemon shutdown (the supervising task is cancelled), `process/terminate` (even
  after the leader exited: its background jobs die with it), and the daemon's second signal.
  `group.py` states why such a kill never reaches a stranger: the leader is reaped only after
  its group was SIGKILLed.
- At close, a group with nobody left besides the leader, or one already SIGKILLed, is killed
  and the leader reaped at once. A command that exits and leaves a background job in its group
  (`server &`) keeps it: the supervising task keeps the (zombie) leader, also after the entry
  is forgotten, until the session ends or `process/terminate`, and kills the group then (the
  reference too kills such a job only at expiry or shutdown).
- With containment the child has a cgroup of its own (`cgroup.py`): every teardown above also
  kills the cgroup, which reaches the descendants that left the group (`setsid`, double fork);
  a job lingers while the cgroup has a member besides the leader; the cgroup is removed after
  the final kill. Without it, the group kill alone stays.
- `process/exited` carries `resourceUsage` (`usage.py`), read before the leader is reaped.
- With a spool (`spool.py`) every output chunk is also offered to it; a read that asks for
  output the ring dropped is served from the spool when it holds it. Such a read is limited
  (by `maxBytes`, or the spool's `READ_BYTES`); its `nextSeq` is the one the log's rule gives
  for a read of those chunks, and the seq after the last one returned whenever more output
  follows it, so a client following `nextSeq` reads everything, in either dialect.

Cancellation: when the supervising task is cancelled (session expiry or daemon shutdown) the
process group is SIGKILLed and the child reaped under a shield, and its fds are closed.
"""

from __future__ import annotations

import logging
import signal as signals
from collections.abc import Callable

import attrs
import trio

from trio_exec.process import group, usage
from trio_exec.process.cgroup import ProcessCgroup
from trio_exec.process.events import Emit, ProcessClosed, ProcessExited, ProcessOutput, ProcessRead
from trio_exec.process.observer import EXIT_FAILURE, EXIT_SIGNAL, EXIT_SUCCESS, ProcessEvents
from trio_exec.process.outputlog import NextSeqRule, OutputLog, ReadView
from trio_exec.process.spawn import Spawned, set_window_size
from trio_exec.process.spool import ProcessSpool
from trio_exec.process.waiters import SeqWaiters
from trio_exec.proto.dialect import Dialect

log = logging.getLogger(__name__)

READ_SIZE = 64 * 1024
REAP_GRACE = 5.0
#: After the exit, how long the exit event waits for the output streams to end, so that output
#: already written comes before `process/exited` (a grandchild holding the pipe delays no more).
EXIT_DRAIN = 0.05

DENIAL_KEYWORDS = (
    "operation not permitted",
    "permission denied",
    "read-only file system",
    "seccomp",
    "sandbox",
    "landlock",
    "failed to write file",
)
#: How much of the previous chunk is kept so that a keyword split across chunks is found.
_KEYWORD_OVERLAP = max(len(k) for k in DENIAL_KEYWORDS) - 1
SIGSYS_EXIT = 128 + signals.SIGSYS


class DenialScanner:
    """Watches a confined child's output for codex's sandbox-denial keywords."""

    def __init__(self) -> None:
        self.seen = False
        self._tails: dict[str, str] = {}

    def feed(self, stream: str, data: bytes) -> None:
        if self.seen:
            return
        text = self._tails.get(stream, "") + data.decode("utf-8", "replace").lower()
        self.seen = any(keyword in text for keyword in DENIAL_KEYWORDS)
        self._tails[stream] = text[-_KEYWORD_OVERLAP:]

    def denied(self, exit_code: int) -> bool:
        if exit_code == 0:
            return False
        return self.seen or exit_code == SIGSYS_EXIT

SIGNAL_ALIASES = {
    "interrupt": signals.SIGINT,
    "terminate": signals.SIGTERM,
    "hangup": signals.SIGHUP,
    "kill": signals.SIGKILL,
    "quit": signals.SIGQUIT,
}


def parse_signal(name: str) -> signals.Signals | None:
    if name in SIGNAL_ALIASES:
        return SIGNAL_ALIASES[name]
    upper = name.upper()
    if not upper.startswith("SIG"):
        upper = "SIG" + upper
    try:
        return signals.Signals[upper]
    except KeyError:
        return None


@attrs.define(eq=False)
class ManagedProcess:
    """Invariants: `exit_code`/`signal_name` are set exactly when the log has an exit event;
    only `_record` appends to `log`; after every event `_waiters` wakes exactly the long-polls
    it satisfies (`waiters.py`)."""

    process_id: str
    argv: list[str]
    tty: bool
    _spawned: Spawned
    _emit: Emit
    _forget: Callable[[ManagedProcess], None]
    retention: float
    dialect: Dialect = Dialect.V0120
    #: Whether the child runs confined (0.169 `sandbox`): decides `sandboxDenied`.
    sandboxed: bool = False
    log: OutputLog = attrs.field(factory=OutputLog)
    #: Called once the close event is recorded (the table's count of live processes).
    on_close: Callable[[ManagedProcess], None] | None = None
    exit_code: int | None = None
    signal_name: str | None = None
    _waiters: SeqWaiters = attrs.field(factory=SeqWaiters)
    _published: trio.Event = attrs.field(factory=trio.Event)
    _record_lock: trio.Lock = attrs.field(factory=trio.Lock)
    _stdin_lock: trio.Lock = attrs.field(factory=trio.Lock)
    _stdin_open: bool = True
    _open_outputs: int = 0
    _outputs_done: trio.Event = attrs.field(factory=trio.Event)
    _write_ids: set[str] = attrs.field(factory=set)
    _reaped: bool = False
    _group_killed: trio.Event = attrs.field(factory=trio.Event)
    _denials: DenialScanner = attrs.field(factory=DenialScanner)
    sandbox_denied: bool = False
    #: The child's own cgroup when containment is on (`cgroup.py`).
    cgroup: ProcessCgroup | None = None
    #: Test event: set once the leader exited and the `EXIT_DRAIN` wait for its pipes began.
    _for_testing_draining: trio.Event = attrs.field(factory=trio.Event)
    events: ProcessEvents = attrs.field(factory=ProcessEvents)
    #: When the child was spawned (trio clock), for the duration in the exit log line.
    started_at: float = attrs.field(factory=trio.current_time)
    #: The output spool on disk, when `--output-spool-dir` is set.
    spool: ProcessSpool | None = None

    @property
    def is_v0169(self) -> bool:
        return self.dialect is Dialect.V0169

    @property
    def pid(self) -> int:
        return self._spawned.pid

    @property
    def state(self) -> str:
        if self.log.closed:
            return "closed"
        return "exited" if self.log.exited else "running"

    def publish(self) -> None:
        self._published.set()

    # --- the supervising task ------------------------------------------------------------

    async def supervise(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        try:
            await self._published.wait()
            self._open_outputs = len(self._spawned.outputs)
            async with trio.open_nursery() as nursery:
                for stream_name, stream in self._spawned.outputs:
                    nursery.start_soon(self._pump, stream_name, stream)
                await self._watch_exit()  # in this task: one task fewer per process
            await self._record_close()
            await self._spawned.aclose()
            lingering = not self._group_killed.is_set() and await self._has_job()
            if lingering:
                log.info("%s left a background job: it ends with the session", self.process_id)
            else:
                with trio.CancelScope(shield=True):
                    await self._kill_and_reap()
            await trio.sleep(self.retention)
            self._forget(self)
            await self._group_killed.wait()  # at once unless a job lingers
        finally:
            if not self.log.exited:
                log.info("%s killed at its session's end after %.3fs", self.process_id,
                         trio.current_time() - self.started_at)
            with trio.CancelScope(shield=True):
                await self._kill_and_reap()
                if self.cgroup is not None:
                    await self.cgroup.remove_when_empty()

    async def _has_job(self) -> bool:
        """Whether a process besides the exited leader is left: in its cgroup, else its group."""
        if self.cgroup is not None:
            return any(pid != self.pid for pid in self.cgroup.members())
        return await group.has_members(self.pid)

    async def _pump(self, stream_name: str, stream: trio.abc.ReceiveStream) -> None:
        try:
            await self._copy_output(stream_name, stream)
        finally:
            self._open_outputs -= 1
            if not self._open_outputs:
                self._outputs_done.set()

    async def _copy_output(self, stream_name: str, stream: trio.abc.ReceiveStream) -> None:
        while True:
            try:
                data = await stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # a PTY master reports EIO once the last slave fd is closed: EOF
            if not data:
                return
            data = bytes(data)
            if self.sandboxed:
                self._denials.feed(stream_name, data)
            self.events.process_output(len(data))
            async with self._record_lock:
                dropped_before = self.log.has_dropped
                chunk = self.log.append_output(stream_name, data)
                if self.log.has_dropped and not dropped_before:
                    log.info("%s: output beyond %d bytes retained, the oldest dropped",
                             self.process_id, self.log.limit)
                if self.spool is not None:
                    self.spool.offer(chunk)
                self._wake()
                await self._emit(ProcessOutput(process_id=self.process_id, chunk=chunk))
            if self.spool is not None:
                await self.spool.wait_backlog()

    async def _watch_exit(self) -> None:
        returncode = await group.wait_exited(self.pid)
        cgroup_cpu = self.cgroup.cpu_usec() if self.cgroup is not None else None
        resources = usage.of_exited(self.pid, cgroup_cpu)
        if not self._outputs_done.is_set():  # the drain wait only while a pipe is still open
            with trio.move_on_after(EXIT_DRAIN):
                self._for_testing_draining.set()
                await self._outputs_done.wait()
        async with self._record_lock:
            if returncode < 0:
                self.exit_code = 128 - returncode if self.is_v0169 else -1
                self.signal_name = signals.Signals(-returncode).name
            else:
                self.exit_code = returncode
            self.events.process_exited(
                EXIT_SIGNAL if self.signal_name else EXIT_FAILURE if returncode else EXIT_SUCCESS
            )
            log.info("%s exited: %s after %.3fs", self.process_id,
                     f"signal {self.signal_name}" if self.signal_name else f"code {returncode}",
                     trio.current_time() - self.started_at)
            self.sandbox_denied = self.sandboxed and self._denials.denied(self.exit_code)
            seq = self.log.record_exit()
            self._wake()
            await self._emit(
                ProcessExited(
                    process_id=self.process_id,
                    seq=seq,
                    exit_code=self.exit_code,
                    signal=self.signal_name,
                    sandbox_denied=self.sandbox_denied,
                    dialect=self.dialect,
                    resource_usage=resources,
                )
            )

    async def _record_close(self) -> None:
        async with self._record_lock:
            seq = self.log.record_close()
            self._wake()
            if self.on_close is not None:
                self.on_close(self)
            await self._emit(ProcessClosed(process_id=self.process_id, seq=seq))

    async def _kill_and_reap(self) -> None:
        self.kill_group()
        if self.log.exited and self._spawned.process.poll() is not None:
            # the exit was already seen (a zombie): reaped now, without another wake-up
            self._reaped = True
        else:
            with trio.move_on_after(REAP_GRACE):
                await self._spawned.process.wait()
                self._reaped = True
        await self._spawned.aclose()

    def kill_group(self) -> None:
        """SIGKILL the cgroup, if any, and the group, whatever state the leader is in, unless
        the leader was reaped (then the group id may be a stranger's: `group.py`)."""
        if self.cgroup is not None:
            self.cgroup.kill()
        self._kill_group(signals.SIGKILL)

    def _kill_group(self, sig: int) -> None:
        if not self._reaped:
            group.kill(self.pid, sig)
            if sig == signals.SIGKILL:
                self._group_killed.set()

    def _wake(self) -> None:
        if self.log.closed:
            self._waiters.wake_all()
        else:
            self._waiters.wake(self.log.last_seq)

    # --- operations ----------------------------------------------------------------------

    async def read(
        self, after_seq: int = 0, max_bytes: int | None = None, wait_ms: int = 0
    ) -> ProcessRead:
        """The log after `after_seq`, with the process's state. Cancellation: a cancelled
        long-poll leaves no trace."""
        if wait_ms and not (self.log.has_event_after(after_seq) or self.log.closed):
            with trio.move_on_after(wait_ms / 1000):
                await self._waiters.wait_past(after_seq)
        rule = (NextSeqRule.UNALLOCATED_UNLESS_LIMITED if self.is_v0169
                else NextSeqRule.AFTER_LAST_CHUNK)
        view = self.log.read(after_seq, max_bytes, rule)
        if view.first_retained_seq is not None and self.spool is not None:
            view = await self._read_spool(after_seq, max_bytes, rule) or view
        return ProcessRead(
            after_seq=after_seq,
            chunks=view.chunks,
            next_seq=view.next_seq,
            first_retained_seq=view.first_retained_seq,
            exited=self.log.exited,
            exit_code=self.exit_code,
            signal=self.signal_name,
            sandbox_denied=self.sandbox_denied,
            closed=self.log.closed,
        )

    async def _read_spool(
        self, after_seq: int, max_bytes: int | None, rule: NextSeqRule
    ) -> ReadView | None:
        """The read served from the spool, or None when it holds nothing after `after_seq`."""
        assert self.spool is not None
        chunks = await self.spool.read(after_seq, max_bytes)
        if not chunks:
            return None
        last = chunks[-1].seq
        more = last < self.log.last_output_seq
        limited = more or max_bytes is not None or rule is NextSeqRule.AFTER_LAST_CHUNK
        return ReadView(chunks, last + 1 if limited else self.log.next_seq)

    async def write(
        self, data: bytes, *, close_stdin: bool = False, write_id: str | None = None
    ) -> str:
        """The `process/write` status. Cancellation: a write cut short may have sent a prefix."""
        stdin = self._spawned.stdin
        if stdin is None or not self._stdin_open or self.log.exited:
            return "stdinClosed"
        if write_id is not None:
            if write_id in self._write_ids:
                return "accepted"
            self._write_ids.add(write_id)
        async with self._stdin_lock:
            if not self._stdin_open:
                return "stdinClosed"
            try:
                if data:
                    await stdin.send_all(data)
                if close_stdin:
                    if self.tty:
                        await stdin.send_all(b"\x04")
                    else:
                        self._stdin_open = False
                        await stdin.aclose()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self._stdin_open = False
                return "stdinClosed"
        return "accepted"

    def terminate(self) -> bool:
        """SIGKILL to the process group, also after the leader exited; whether the leader was
        still running."""
        running = not self.log.exited
        self.kill_group()
        return running

    def send_signal(self, sig: int) -> bool:
        if self.log.exited:
            return False
        self._kill_group(sig)
        return True

    def resize(self, rows: int, cols: int) -> bool:
        fd = self._spawned.pty_fd
        if fd is None:
            return False
        if not self.log.closed:
            set_window_size(fd, rows, cols)
        return True
