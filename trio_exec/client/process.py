"""`RemoteProcess`: one process of the client's session, as its consumer sees it.

Rules:
- The client registers the process (and so its notification channel) before `process/start`
  is sent and unregisters it if the start fails; notifications are fed to its `OutputCursor`.
- Output is handed out exactly once, in seq order. Whenever notifications cannot account for
  every event (a reconnect, a full queue, a reordering server) the consumer's next receive
  reads `process/read afterSeq=cursor` first; after a reconnect the client also does it
  eagerly, so `has_exited` and `wait()` stay true to the server without a consumer.
- A process that can no longer be followed (retention gap, session expired, forgotten by the
  server, client gave up reconnecting) gets a `failure`: queued output is still handed out,
  then receiving raises the error. Nothing is skipped silently.

Cancellation: a cancelled receive or wait leaves the process as it was; a cancelled catch-up
read leaves the cursor stale, so the next receive reads again.
"""

from __future__ import annotations

from typing import Protocol

import attrs
import trio

from trio_exec.client.cursor import Output, OutputCursor, OutputIterator
from trio_exec.client.errors import ClientError, OutputLost, ProcessLost
from trio_exec.client.notifications import ProcessNotification
from trio_exec.proto import b64, errors
from trio_exec.proto.errors import RpcError
from trio_exec.proto.process_messages import (
    ProcessClosedNotification,
    ProcessExitedNotification,
    ProcessOutputNotification,
    ProcessReadResult,
)


class ProcessCalls(Protocol):
    """What a `RemoteProcess` asks of its client (`ExecClient` provides it)."""

    def _unregister(self, process: RemoteProcess) -> None: ...

    async def process_read(
        self, process_id: str, *, after_seq: int | None = None
    ) -> ProcessReadResult: ...

    async def process_write(
        self, process_id: str, data: bytes, *, close_stdin: bool = False
    ) -> str: ...

    async def process_terminate(self, process_id: str) -> bool: ...

    async def process_signal(self, process_id: str, signal: str) -> bool: ...

    async def process_resize(self, process_id: str, rows: int, cols: int) -> None: ...


@attrs.define(eq=False)
class RemoteProcess:
    """Invariants: `_changed` is replaced after every state change, so a waiter holding the
    old event is woken; `_failure` is set at most once."""

    _client: ProcessCalls
    process_id: str
    tty: bool
    _cursor: OutputCursor = attrs.field(init=False)
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _failure: ClientError | None = None
    _read_lock: trio.Lock = attrs.field(factory=trio.Lock)
    started: bool = False

    def __attrs_post_init__(self) -> None:
        self._cursor = OutputCursor(self.process_id)

    # --- state ------------------------------------------------------------------------------

    @property
    def has_exited(self) -> bool:
        return self._cursor.exited

    @property
    def exit_code(self) -> int | None:
        return self._cursor.exit_code

    @property
    def signal_name(self) -> str | None:
        """The signal that ended the process (trio-exec's additive member), e.g. "SIGKILL"."""
        return self._cursor.signal

    @property
    def closed(self) -> bool:
        """The close event was seen: no output will follow what is queued."""
        return self._cursor.closed

    @property
    def failure(self) -> str | None:
        return None if self._failure is None else str(self._failure)

    @property
    def live(self) -> bool:
        return not self._cursor.closed and self._failure is None

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        if self._cursor.closed or self._failure is not None:
            self._client._unregister(self)

    # --- fed by the client --------------------------------------------------------------------

    def on_notification(self, note: ProcessNotification) -> None:
        cursor = self._cursor
        try:
            if isinstance(note, ProcessOutputNotification):
                cursor.on_output(note.seq, note.stream, note.chunk)
            elif isinstance(note, ProcessExitedNotification):
                cursor.on_exited(note.seq, note.exit_code, note.signal)
            elif isinstance(note, ProcessClosedNotification):
                cursor.on_closed(note.seq)
        except b64.Base64Error:
            cursor.stale = True  # a corrupt chunk: read it again
        self._wake()

    def mark_stale(self) -> None:
        self._cursor.stale = True
        self._wake()

    def fail(self, error: ClientError) -> None:
        if self._failure is None and not self._cursor.closed:
            self._failure = error
        self._wake()

    async def catch_up(self) -> None:
        """Fill the cursor's hole with `process/read` (idempotent; retried across reconnects).
        Failures become the process's `failure`, never an exception here."""
        async with self._read_lock:
            cursor = self._cursor
            while cursor.stale and self._failure is None and not cursor.closed:
                after = cursor.cursor
                try:
                    result = await self._client.process_read(self.process_id, after_seq=after)
                    cursor.apply_read(after, result)
                except OutputLost as lost:
                    self.fail(lost)
                except ClientError as exc:
                    self.fail(exc)
                except RpcError as exc:
                    self.fail(ProcessLost(f"process {self.process_id} cannot be read: {exc.message}"))
                self._wake()
                if cursor.has_queued:
                    return  # hand out what we have; the next receive continues

    # --- the consumer's side ----------------------------------------------------------------

    async def receive(self) -> Output | None:
        """The next output chunk, or None once the process is closed and everything was handed
        out. Raises the process's failure after its queued output."""
        while True:
            item = self._cursor.pop()
            if item is not None:
                return item
            if self._cursor.finished:
                return None
            if self._failure is not None:
                raise self._failure
            if self._cursor.stale:
                await self.catch_up()
                continue
            changed = self._changed
            await changed.wait()

    def take_queued(self) -> list[Output]:
        """Every chunk already received, without waiting (for batching writes)."""
        taken: list[Output] = []
        while (item := self._cursor.pop()) is not None:
            taken.append(item)
        return taken

    def output(self) -> OutputIterator:
        """`async for chunk in process.output()`: every chunk once, in order."""
        return OutputIterator(self)

    async def wait(self) -> int:
        """The exit code, once the process has exited. Raises its failure."""
        while not self._cursor.exited:
            if self._failure is not None:
                raise self._failure
            if self._cursor.stale:
                await self.catch_up()
                continue
            changed = self._changed
            await changed.wait()
        assert self._cursor.exit_code is not None
        return self._cursor.exit_code

    async def write(self, data: bytes, *, close_stdin: bool = False) -> str:
        """`process/write`: "accepted", "stdinClosed", "unknownProcess" or "starting"."""
        return await self._client.process_write(self.process_id, data, close_stdin=close_stdin)

    async def terminate(self) -> bool:
        return await self._client.process_terminate(self.process_id)

    async def send_signal(self, signal: str) -> bool:
        return await self._client.process_signal(self.process_id, signal)

    async def resize(self, rows: int, cols: int) -> None:
        await self._client.process_resize(self.process_id, rows, cols)


def is_unknown_process(exc: RpcError, process_id: str) -> bool:
    return isinstance(exc, errors.InvalidRequest) and exc.message == errors.unknown_process(
        process_id
    ).message
