"""Request dispatch: method table → params → handshake gate → handler → result.

Rules:
- Order of checks, as the reference: unknown method (-32601, also before `initialize`), then
  params (-32602), then the handshake gate (-32600), then the handler.
- `initialize` succeeds once per connection; a failed one may be retried. `initialized`
  opens the gate for `process/*` and `fs/*`; before a successful `initialize` it is ignored.
- Handlers are thin: they get a `CallContext` (the connection's session and attachment, the
  filesystem) and the params, and return a result object. Work that must happen after the
  response is queued (publishing a process, opening a resumed session's notifications) is
  registered with `ctx.after_reply`.
- Each request's form (`proto/dialect.py` states the rule): its dialect is detected from the
  method and the raw params' member names before structuring, the params are structured by the
  converter of that dialect, and the form is read from the detected dialect and the structured
  params' path members. It is put on the `CallContext` (`ctx.form`) before the handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from . import __version__, hostenv
from .fs.handlers import FS_HANDLERS
from .fs.handlers import Handler as FsHandler
from .fs.handles import FileHandles
from .fs.local import LocalFilesystem
from .fs.policy import ServerPaths
from .hostenv import HOSTENV_HANDLERS
from .process.handlers import PROCESS_HANDLERS
from .proto import b64, codec, dialect, errors, methods
from .proto.convert import structure_params, unstructure
from .proto.fs_messages import (
    FsCloseParams,
    FsHandleResult,
    FsOpenParams,
    FsReadBlockParams,
    FsReadBlockResult,
    FsWatchMissingParams,
    FsWatchMissingResult,
    FsWriteBlockParams,
)
from .proto.process_messages import EmptyResult
from .proto.session_messages import InitializeParams, InitializeResult, ServerInfo
from .session.registry import SessionRegistry
from .session.session import Attachment, Session

log = logging.getLogger(__name__)

CAPABILITIES: dict[str, Any] = {
    "exec": True,
    "filesystem": True,
    "methods": sorted(methods.METHODS),
    "processSignal": True,
    "processResize": True,
    "processList": True,
    "pipeStdin": True,
    "closeStdin": True,
    "retentionGap": True,
    "takeover": True,
}


@attrs.define(eq=False)
class ConnectionState:
    """The handshake state of one connection. Invariant: `acknowledged` implies `session`."""

    label: str
    registry: SessionRegistry
    fs: LocalFilesystem
    sink: trio.MemorySendChannel[codec.Encoded]
    on_attached: Callable[[Attachment], None]
    session: Session | None = None
    attachment: Attachment | None = None
    acknowledged: bool = False
    _initializing: bool = False
    #: `fs/open` handles: the connection's own, closed when it ends (`close`).
    handles: FileHandles = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.handles = FileHandles(
            ServerPaths(cwd=self.fs.cwd, tmpdir=self.fs.tmpdir), self.fs.threads
        )

    def close(self) -> None:
        """The connection has ended: its file handles are closed."""
        self.handles.close_all()


@attrs.define(eq=False)
class CallContext:
    conn: ConnectionState
    #: The request's dialect and path form, set by `call` once the params are structured.
    form: dialect.RequestForm = dialect.PLAIN
    _after_reply: list[Callable[[], None]] = attrs.field(factory=list)

    @property
    def session(self) -> Session:
        assert self.conn.session is not None
        return self.conn.session

    @property
    def attachment(self) -> Attachment:
        assert self.conn.attachment is not None
        return self.conn.attachment

    @property
    def fs(self) -> LocalFilesystem:
        return self.conn.fs

    def after_reply(self, callback: Callable[[], None]) -> None:
        self._after_reply.append(callback)

    def run_after_reply(self) -> None:
        callbacks, self._after_reply = self._after_reply, []
        for callback in callbacks:
            callback()


Handler = Callable[[CallContext, Any], Awaitable[Any]]


async def handle_initialize(ctx: CallContext, params: InitializeParams) -> InitializeResult:
    conn = ctx.conn
    if conn.session is not None or conn._initializing:
        raise errors.InvalidRequest(errors.INITIALIZE_TWICE)
    conn._initializing = True
    try:
        attachment = Attachment(conn.label)
        if params.resume_session_id is not None:
            session = conn.registry.resume(params.resume_session_id, attachment)
        else:
            session = await conn.registry.create(attachment)
    finally:
        conn._initializing = False
    conn.session, conn.attachment, conn.acknowledged = session, attachment, False
    conn.on_attached(attachment)
    ctx.after_reply(lambda: session.open_sink(attachment, conn.sink))
    return InitializeResult(
        session_id=session.session_id,
        environment_info=hostenv.environment_info(),
        capabilities=CAPABILITIES,
        server_info=ServerInfo(name="trio-exec", version=__version__),
    )


async def handle_watch_missing(
    ctx: CallContext, params: FsWatchMissingParams
) -> FsWatchMissingResult:
    watching = await ctx.session.watches.watch(
        params.watch_id, list(params.missing), params.present
    )
    return FsWatchMissingResult(watching=watching)


async def handle_fs_open(ctx: CallContext, params: FsOpenParams) -> FsHandleResult:
    await ctx.conn.handles.open(params.handle_id, params.path, params.mode, params.sandbox)
    return FsHandleResult(handle_id=params.handle_id)


async def handle_fs_read_block(ctx: CallContext, params: FsReadBlockParams) -> FsReadBlockResult:
    data, eof = await ctx.conn.handles.read_block(params.handle_id, params.offset, params.len)
    return FsReadBlockResult(chunk=b64.encode(data), eof=eof)


async def handle_fs_write_block(ctx: CallContext, params: FsWriteBlockParams) -> EmptyResult:
    data = b64.decode_chunk(params.chunk)
    await ctx.conn.handles.write_block(params.handle_id, params.offset, data)
    return EmptyResult()


async def handle_fs_close(ctx: CallContext, params: FsCloseParams) -> EmptyResult:
    ctx.conn.handles.close(params.handle_id)
    return EmptyResult()


def _with_filesystem(fs_handler: FsHandler) -> Handler:
    async def handler(ctx: CallContext, params: Any) -> Any:
        return await fs_handler(ctx.fs, params, ctx.form)

    return handler


HANDLERS: dict[str, Handler] = {
    methods.INITIALIZE: handle_initialize,
    **PROCESS_HANDLERS,
    **HOSTENV_HANDLERS,
    methods.FS_WATCH_MISSING: handle_watch_missing,
    methods.FS_OPEN: handle_fs_open,
    methods.FS_READ_BLOCK: handle_fs_read_block,
    methods.FS_WRITE_BLOCK: handle_fs_write_block,
    methods.FS_CLOSE: handle_fs_close,
    **{name: _with_filesystem(fs_handler) for name, fs_handler in FS_HANDLERS.items()},
}


def check_gate(conn: ConnectionState, service: str) -> None:
    if conn.session is None:
        raise errors.not_initialized(service)
    if not conn.acknowledged:
        raise errors.not_acknowledged(service)


async def call(ctx: CallContext, method: str, raw_params: Any) -> Any:
    """The JSON result of one request, or an `RpcError`."""
    spec = methods.METHODS.get(method)
    handler = HANDLERS.get(method)
    if spec is None or handler is None:
        raise errors.method_not_found(method)
    spoken = dialect.detect(raw_params, method_is_v0169=spec.v0169_only)
    params: Any = structure_params(raw_params, spec.params, spoken)
    ctx.form = dialect.form(spoken, params)
    if spec.service is not None:
        check_gate(ctx.conn, spec.service)
    result = await handler(ctx, params)
    return unstructure(result)


def handle_notification(conn: ConnectionState, method: str) -> None:
    if method == methods.INITIALIZED:
        if conn.session is None:
            log.info("%s: `initialized` before `initialize`, ignored", conn.label)
            return
        conn.acknowledged = True
        return
    log.info("%s: unknown notification %r ignored", conn.label, method)
