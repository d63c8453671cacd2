"""`ExecClient`: typed async calls for every exec-server method, over one session.

Rules:
- Params and results are the proto message classes, converted by the one converter; an error
  reply raises the `RpcError` subclass of its code (`errors.error_from_wire`).
- Calls run concurrently; each is one request on the current link.
- After a drop (with reconnect on): a request that never left is sent again on the new link;
  one that left is repeated only if repeating it is harmless (reads, lists, resize, terminate,
  `fs/writeFile` of the same bytes); any other raises `ConnectionLost(maybe_applied=True)`.
  A `process/start` whose response was lost is settled by asking the server whether the
  process exists (`process/read`), and sent again only if it does not.
- Notifications go to the per-process channel registered before `process/start` is sent.
- A request over `max_message_size` (default: the daemon's default limit) raises
  `RequestTooLarge` without being sent; one the server refuses with Close 1009 raises it at
  once and is never sent again (the link's rule); the other calls go on as after any drop.

Cancellation: cancelling a call abandons it; a request already sent may still take effect,
except a `process/start`: a process the caller never got is terminated in the background.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import attrs
import trio

from trio_exec.client.connect import (
    Connector,
    command_connector,
    stream_connector,
    url_connector,
)
from trio_exec.client.errors import ClientError, ConnectionLost, ProcessLost, RequestTooLarge
from trio_exec.client.link import CLOSE_TIMEOUT, LinkLost, Tap
from trio_exec.client.notifications import decode_notification
from trio_exec.client.process import RemoteProcess, is_unknown_process
from trio_exec.client.session import ReconnectPolicy, ServerDown, Supervisor
from trio_exec.proto import b64, errors, methods
from trio_exec.proto import messages as m
from trio_exec.proto.codec import DEFAULT_MAX_MESSAGE_SIZE
from trio_exec.proto.convert import CONVERTER, unstructure
from trio_exec.proto.errors import RpcError
from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.types import U16, U64, AbsPath, CwdPath, Usize

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Methods whose repetition after an ambiguous drop cannot change the outcome.
REPEATABLE = frozenset({
    methods.PROCESS_READ, methods.PROCESS_LIST, methods.PROCESS_RESIZE,
    methods.PROCESS_TERMINATE, methods.FS_READ_FILE, methods.FS_WRITE_FILE,
    methods.FS_GET_METADATA, methods.FS_READ_DIRECTORY,
})
#: `afterSeq` for an existence check: beyond any real seq, so no chunk is returned.
PROBE_SEQ = 2**63 - 1
#: How long the background `process/terminate` of an abandoned start may take.
ABANDONED_START_TIMEOUT = 10.0
DEFAULT_RECONNECT = ReconnectPolicy()


def wire_params(params: object) -> dict[str, Any]:
    """The params object on the wire, with unset optional members left out (absent and null
    mean the same to the server, and a member a message class gained for a newer dialect must
    not be sent as an explicit null by a client that does not use it)."""
    raw: dict[str, Any] = unstructure(params)
    return {key: value for key, value in raw.items() if value is not None}


@attrs.define(eq=False)
class ExecClient:
    """Invariant: `_processes` maps the id of every process whose notifications are wanted
    (registered before its start is sent, removed when it closes, fails or fails to start)."""

    _supervisor: Supervisor = attrs.field(init=False)
    _processes: dict[str, RemoteProcess] = attrs.field(factory=dict)
    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _nursery: trio.Nursery | None = None

    @property
    def session_id(self) -> str | None:
        return self._supervisor.session_id

    @property
    def capabilities(self) -> dict[str, Any]:
        result = self._supervisor.initialize_result
        return dict(result.capabilities or {}) if result is not None else {}

    @property
    def connections(self) -> int:
        """How many links were established (1 + successful reconnects)."""
        return self._supervisor.connections

    def break_connection(self, reason: str = "broken on request") -> bool:
        """Drop the current link at once (what a network failure does), for tests and tools;
        False when there is no live link to break (a reconnect is under way)."""
        link = self._supervisor.link
        if link is None or link.dead.is_set():
            return False
        link.kill(reason)
        return True

    # --- plumbing -----------------------------------------------------------------------------

    def _on_notification(self, method: str, params: Any) -> None:
        note = decode_notification(method, params)
        if note is None:
            log.info("ignored notification %s", method)
            return
        process = self._processes.get(note.process_id)
        if process is not None:
            process.on_notification(note)

    def _on_resumed(self) -> None:
        assert self._nursery is not None
        for process in list(self._processes.values()):
            if process.started and process.live:
                process.mark_stale()
                self._nursery.start_soon(process.catch_up)

    def _on_session_lost(self, error: ProcessLost) -> None:
        for process in list(self._processes.values()):
            process.fail(ProcessLost(f"process {process.process_id} lost: {error}"))

    def _on_fatal(self, error: ConnectionLost) -> None:
        for process in list(self._processes.values()):
            process.fail(ConnectionLost(f"process {process.process_id} lost: {error}"))

    def _unregister(self, process: RemoteProcess) -> None:
        if self._processes.get(process.process_id) is process:
            del self._processes[process.process_id]

    async def request(self, method: str, params: Any, *, repeatable: bool = False) -> Any:
        """One request with the drop rules above (`repeatable` adds this one request to
        `REPEATABLE`); the raw JSON result."""
        repeatable = repeatable or method in REPEATABLE
        while True:
            link = await self._supervisor.current_link()
            try:
                return await link.request(method, params)
            except LinkLost as lost:
                if self._supervisor.policy is not None and (not lost.sent or repeatable):
                    continue
                suffix = "; it may have been applied" if lost.sent else ""
                raise ConnectionLost(
                    f"{method} interrupted: {lost.reason}{suffix}", maybe_applied=lost.sent
                ) from None

    async def call(
        self, method: str, params: object, result_type: type[T], *, repeatable: bool = False
    ) -> T:
        raw = await self.request(method, wire_params(params), repeatable=repeatable)
        try:
            return CONVERTER.structure(raw, result_type)
        except (RpcError, TypeError, ValueError) as exc:
            raise ClientError(f"malformed {method} result from the server: {exc}") from exc

    # --- process/* ----------------------------------------------------------------------------

    async def process_start(
        self,
        argv: list[str],
        *,
        cwd: str,
        env: dict[str, str],
        tty: bool = False,
        arg0: str | None = None,
        pipe_stdin: bool | None = None,
        size: m.TerminalSize | None = None,
        process_id: str | None = None,
    ) -> RemoteProcess:
        """Start a process; its output channel exists before the request leaves."""
        pid = process_id if process_id is not None else str(next(self._ids))
        if pid in self._processes:
            raise errors.process_exists(pid)
        params = m.ProcessStartParams(
            process_id=pid, argv=argv, cwd=CwdPath(cwd), env=env, tty=tty, arg0=arg0,
            pipe_stdin=pipe_stdin, size=size,
        )
        process = RemoteProcess(self, pid, tty)
        self._processes[pid] = process
        try:
            await self._start(process, wire_params(params))
        except BaseException as exc:
            never_applied = isinstance(exc, (RpcError, RequestTooLarge))
            if never_applied or not self._end_abandoned_start(process):
                self._unregister(process)
            raise
        process.started = True
        return process

    def _end_abandoned_start(self, process: RemoteProcess) -> bool:
        """A start that ended without its answer (cancelled, connection lost) may have left a
        process running on the server that nobody holds: terminate it in the background,
        keeping its id taken until then. False when the client is closing (the server then
        keeps it until the session's TTL, like every process of a closed client)."""
        if self._nursery is None or self._nursery.cancel_scope.cancel_called:
            return False
        self._nursery.start_soon(self._terminate_abandoned, process)
        return True

    async def _terminate_abandoned(self, process: RemoteProcess) -> None:
        try:
            with trio.move_on_after(ABANDONED_START_TIMEOUT):
                await self.process_terminate(process.process_id)
        except (RpcError, ClientError) as exc:  # never started, or the session is gone
            log.debug("terminating abandoned process %s: %s", process.process_id, exc)
        finally:
            self._unregister(process)

    async def _start(self, process: RemoteProcess, params: Any) -> None:
        while True:
            if process.failure is not None:
                raise ProcessLost(process.failure)
            link = await self._supervisor.current_link()
            try:
                await link.request(methods.PROCESS_START, params)
                return
            except LinkLost as lost:
                if self._supervisor.policy is None:
                    raise ConnectionLost(
                        f"process/start interrupted: {lost.reason}", maybe_applied=lost.sent
                    ) from None
                if not lost.sent:
                    continue
            # The start may have been applied before the drop: ask, never guess.
            try:
                await self.process_read(process.process_id, after_seq=PROBE_SEQ)
            except RpcError as exc:
                if is_unknown_process(exc, process.process_id):
                    continue
                raise
            process.mark_stale()
            return

    async def process_read(
        self,
        process_id: str,
        *,
        after_seq: int | None = None,
        max_bytes: int | None = None,
        wait_ms: int | None = None,
    ) -> m.ProcessReadResult:
        params = m.ProcessReadParams(
            process_id=process_id,
            after_seq=None if after_seq is None else U64(after_seq),
            max_bytes=None if max_bytes is None else Usize(max_bytes),
            wait_ms=None if wait_ms is None else U64(wait_ms),
        )
        return await self.call(methods.PROCESS_READ, params, m.ProcessReadResult)

    async def process_write(
        self, process_id: str, data: bytes, *, close_stdin: bool = False
    ) -> str:
        params = m.ProcessWriteParams(
            process_id=process_id, chunk=b64.encode(data), close_stdin=close_stdin or None
        )
        # An empty write changes nothing, and closing stdin twice is harmless: repeatable.
        result = await self.call(
            methods.PROCESS_WRITE, params, m.ProcessWriteResult, repeatable=not data
        )
        return result.status

    async def process_terminate(self, process_id: str) -> bool:
        params = m.ProcessTerminateParams(process_id=process_id)
        return (await self.call(methods.PROCESS_TERMINATE, params, m.ProcessRunningResult)).running

    async def process_signal(self, process_id: str, signal: str) -> bool:
        params = m.ProcessSignalParams(process_id=process_id, signal=signal)
        return (await self.call(methods.PROCESS_SIGNAL, params, m.ProcessRunningResult)).running

    async def process_resize(self, process_id: str, rows: int, cols: int) -> None:
        params = m.ProcessResizeParams(process_id=process_id, rows=U16(rows), cols=U16(cols))
        await self.call(methods.PROCESS_RESIZE, params, m.EmptyResult)

    async def process_list(self) -> list[m.ProcessInfo]:
        result = await self.call(methods.PROCESS_LIST, m.ProcessListParams(), m.ProcessListResult)
        return result.processes

    # --- fs/* ---------------------------------------------------------------------------------

    async def fs_read_file(self, path: str, *, sandbox: SandboxPolicy | None = None) -> bytes:
        params = m.FsReadFileParams(path=AbsPath(path), sandbox_policy=sandbox)
        result = await self.call(methods.FS_READ_FILE, params, m.FsReadFileResult)
        try:
            return b64.decode(result.data_base64)
        except b64.Base64Error as exc:
            raise ClientError(f"malformed fs/readFile result: {exc}") from None

    async def fs_write_file(
        self, path: str, data: bytes, *, sandbox: SandboxPolicy | None = None
    ) -> None:
        params = m.FsWriteFileParams(path=AbsPath(path), data_base64=b64.encode(data), sandbox_policy=sandbox)
        await self.call(methods.FS_WRITE_FILE, params, m.EmptyResult)

    async def fs_create_directory(
        self, path: str, *, recursive: bool | None = None, sandbox: SandboxPolicy | None = None
    ) -> None:
        params = m.FsCreateDirectoryParams(path=AbsPath(path), recursive=recursive, sandbox_policy=sandbox)
        await self.call(methods.FS_CREATE_DIRECTORY, params, m.EmptyResult)

    async def fs_get_metadata(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> m.FsGetMetadataResult:
        params = m.FsGetMetadataParams(path=AbsPath(path), sandbox_policy=sandbox)
        return await self.call(methods.FS_GET_METADATA, params, m.FsGetMetadataResult)

    async def fs_read_directory(
        self, path: str, *, sandbox: SandboxPolicy | None = None
    ) -> list[m.FsDirectoryEntry]:
        params = m.FsReadDirectoryParams(path=AbsPath(path), sandbox_policy=sandbox)
        return (await self.call(methods.FS_READ_DIRECTORY, params, m.FsReadDirectoryResult)).entries

    async def fs_remove(
        self,
        path: str,
        *,
        recursive: bool | None = None,
        force: bool | None = None,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        params = m.FsRemoveParams(path=AbsPath(path), recursive=recursive, force=force, sandbox_policy=sandbox)
        await self.call(methods.FS_REMOVE, params, m.EmptyResult)

    async def fs_copy(
        self,
        source: str,
        destination: str,
        *,
        recursive: bool,
        sandbox: SandboxPolicy | None = None,
    ) -> None:
        params = m.FsCopyParams(
            source_path=AbsPath(source), destination_path=AbsPath(destination), recursive=recursive,
            sandbox_policy=sandbox,
        )
        await self.call(methods.FS_COPY, params, m.EmptyResult)


@asynccontextmanager
async def open_client_with(
    connector: Connector,
    *,
    target: str = "the exec-server",
    client_name: str = "trio-exec-client",
    reconnect: ReconnectPolicy | None = DEFAULT_RECONNECT,
    ping_interval: float | None = 20.0,
    ping_timeout: float = 20.0,
    tap: Tap | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    on_server_down: ServerDown | None = None,
) -> AsyncIterator[ExecClient]:
    """A client over `connector` (called once per connection attempt). Raises `ConnectFailed`
    when the first connection or handshake fails. On exit every process is abandoned (the
    server keeps them until its session TTL) and the connection is closed. An exception from
    the block comes out as itself, not wrapped in an exception group.

    `max_message_size`: the largest request message the server accepts, as the client believes
    (None: no check). `on_server_down(cause, seconds_left)`: told at once when the server
    shuts down or refuses a reconnect, while recovery goes on (`session.Supervisor`)."""
    client = ExecClient()
    try:
        async with trio.open_nursery() as nursery:
            client._nursery = nursery
            client._supervisor = Supervisor(
                connector,
                target,
                client_name,
                reconnect,
                on_notification=client._on_notification,
                on_resumed=client._on_resumed,
                on_session_lost=client._on_session_lost,
                on_fatal=client._on_fatal,
                ping_interval=ping_interval,
                ping_timeout=ping_timeout,
                tap=tap,
                max_message_size=max_message_size,
                on_server_down=on_server_down,
            )
            await nursery.start(client._supervisor.run, nursery)
            try:
                yield client
            finally:
                with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                    await client._supervisor.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        sole = _sole_exception(group)
        if sole is None:
            raise
        # `raise sole from None` would erase the caller's own `raise ... from ...` cause.
        cause, context, suppress = sole.__cause__, sole.__context__, sole.__suppress_context__
        try:
            raise sole
        finally:
            sole.__cause__, sole.__context__ = cause, context
            sole.__suppress_context__ = suppress


def _sole_exception(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    if len(group.exceptions) != 1:
        return None
    inner = group.exceptions[0]
    if isinstance(inner, BaseExceptionGroup):
        return _sole_exception(inner)
    return inner


def open_client(
    url: str,
    *,
    client_name: str = "trio-exec-client",
    auth_token: str | None = None,
    reconnect: ReconnectPolicy | None = DEFAULT_RECONNECT,
    ping_interval: float | None = 20.0,
    tap: Tap | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    on_server_down: ServerDown | None = None,
    ca_file: str | None = None,
) -> AbstractAsyncContextManager[ExecClient]:
    """`async with open_client("ws://127.0.0.1:8765") as client: ...` (the options are
    `open_client_with`'s; a `wss://` server's certificate is verified against `ca_file`, else
    the system store or `SSL_CERT_FILE`)."""
    return open_client_with(
        url_connector(url, auth_token=auth_token, ca_file=ca_file),
        target=url,
        client_name=client_name,
        reconnect=reconnect,
        ping_interval=ping_interval,
        tap=tap,
        max_message_size=max_message_size,
        on_server_down=on_server_down,
    )


def open_client_over_stream(
    open_stream: Callable[[], Awaitable[trio.abc.Stream]],
    *,
    client_name: str = "trio-exec-client",
    reconnect: ReconnectPolicy | None = None,
    tap: Tap | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
    on_server_down: ServerDown | None = None,
) -> AbstractAsyncContextManager[ExecClient]:
    """A client speaking WebSocket over `open_stream()` (e.g. one end of
    `trio.testing.memory_stream_pair()` served by `Daemon.handle_stream`). With a policy,
    `open_stream` is called again for every reconnect."""
    return open_client_with(
        stream_connector(open_stream),
        target="the exec-server (stream)",
        client_name=client_name,
        reconnect=reconnect,
        ping_interval=None,
        tap=tap,
        max_message_size=max_message_size,
        on_server_down=on_server_down,
    )




def open_client_via(
    command: Sequence[str],
    *,
    client_name: str = "trio-exec-client",
    tap: Tap | None = None,
    max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
) -> AbstractAsyncContextManager[ExecClient]:
    """A client speaking one JSON message per line with `command` (started here, e.g.
    `["ssh", "devbox", "trio-exec", "serve", "--listen", "stdio"]`) on its stdin and stdout.
    There is no resume over a command: when it dies, every call fails (`ConnectionLost`)."""
    return open_client_with(
        command_connector(command),
        target=f"the exec-server via `{' '.join(command)}`",
        client_name=client_name,
        reconnect=None,
        ping_interval=None,
        tap=tap,
        max_message_size=max_message_size,
    )
