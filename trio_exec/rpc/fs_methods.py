"""The `fs/*` request handlers: params object in, one `LocalFilesystem` call, result object out.

The path-based methods take `(LocalFilesystem, params, form)` (`FS_HANDLERS`, testable without
a connection); `CONTEXT_HANDLERS` adapts them to the one handler signature and adds the methods
whose state is the connection's (`fs/open` handles) or the session's (`fs/watchMissing`).

Rule: handlers only translate. Defaults of absent members (`fs/remove`: recursive and force;
`fs/createDirectory`: recursive) and base64 live here; every filesystem decision lives in
`LocalFilesystem`. Base64 work on large payloads runs in a worker thread, like the I/O.

Dialects (`proto/dialect.py`) are decided here, never in `LocalFilesystem`: each handler gets
the request's form (the dispatcher passes `ctx.form`; a call from outside a request is a 0.120
one) and turns it into the filesystem's arguments. The ONE access policy of the call
(`access_policy`, `sandbox/access.py`): a 0.169-dialect request has its `sandbox` context
honoured and its `sandboxPolicy` ignored, a 0.120 one the reverse. The behaviours, as named
arguments: a 0.169 request gets detailed metadata, dangling entries omitted, and a read of
anything but a regular file refused with -32600; and paths in its result (`fs/canonicalize`,
`fs/walk`) in the form it sent them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import trio

from trio_exec.fs.local import LocalFilesystem
from trio_exec.fs.walk import WalkLimits
from trio_exec.proto import b64
from trio_exec.proto import methods as m
from trio_exec.proto.codec import Spliced
from trio_exec.proto.dialect import PLAIN, RequestForm
from trio_exec.proto.errors import InvalidRequest
from trio_exec.proto.fs_messages import (
    FsCanonicalizeParams,
    FsCloseParams,
    FsCopyParams,
    FsCreateDirectoryParams,
    FsGetMetadataParams,
    FsGetMetadataResult,
    FsHandleResult,
    FsOpenParams,
    FsPathResult,
    FsReadBlockParams,
    FsReadBlockResult,
    FsReadDirectoryParams,
    FsReadDirectoryResult,
    FsReadFileParams,
    FsReadFileResult,
    FsReadFileSplicedResult,
    FsRemoveParams,
    FsWalkEntry,
    FsWalkError,
    FsWalkParams,
    FsWalkResult,
    FsWatchMissingParams,
    FsWatchMissingResult,
    FsWriteBlockParams,
    FsWriteFileParams,
)
from trio_exec.proto.process_messages import EmptyResult
from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.proto.types import Wire
from trio_exec.rpc.context import CallContext
from trio_exec.rpc.context import Handler as ContextHandler
from trio_exec.sandbox import access
from trio_exec.sandbox.access import AccessPolicy

#: Payloads at least this big are base64-coded in a worker thread, off the event loop. Below
#: it the C codec stalls the loop for at most ~1.3 ms, less than a thread hop costs twice.
THREAD_CODEC_BYTES = 2 * 1024 * 1024


class _HasSandboxes(Protocol):
    @property
    def sandbox_policy(self) -> SandboxPolicy | None: ...
    @property
    def sandbox(self) -> SandboxContext | None: ...


def access_policy(params: _HasSandboxes, form: RequestForm) -> AccessPolicy:
    """The access policy of a request, by its dialect: its `sandbox` context (0.169) or its
    `sandboxPolicy` (0.120); the other member is ignored."""
    if form.is_v0169:
        return access.for_context(params.sandbox)
    return access.for_policy(params.sandbox_policy)


def _default(value: bool | None, default: bool) -> bool:
    return default if value is None else value


async def read_file(
    fs: LocalFilesystem, params: FsReadFileParams, form: RequestForm = PLAIN
) -> FsReadFileResult | FsReadFileSplicedResult:
    """A large file's base64 is made in a worker thread, as bytes the codec splices into the
    reply: the event loop never touches the text (see `codec.Spliced`)."""
    data = await fs.read_file(
        params.path, policy=access_policy(params, form), regular_only=form.is_v0169
    )
    if len(data) < THREAD_CODEC_BYTES:
        return FsReadFileResult(data_base64=b64.encode(data))
    encoded = await trio.to_thread.run_sync(b64.encode_bytes, data, abandon_on_cancel=True)
    return FsReadFileSplicedResult(data_base64=Spliced(encoded))


def _decode_payload(text: str) -> bytes:
    try:
        return b64.decode(text)
    except b64.Base64Error as exc:
        raise InvalidRequest(f"fs/writeFile requires valid base64 dataBase64: {exc}") from None


async def write_file(
    fs: LocalFilesystem, params: FsWriteFileParams, form: RequestForm = PLAIN
) -> EmptyResult:
    if len(params.data_base64) < THREAD_CODEC_BYTES:
        data = _decode_payload(params.data_base64)
    else:
        data = await trio.to_thread.run_sync(
            _decode_payload, params.data_base64, abandon_on_cancel=True
        )
    await fs.write_file(params.path, data, policy=access_policy(params, form))
    return EmptyResult()


async def create_directory(
    fs: LocalFilesystem, params: FsCreateDirectoryParams, form: RequestForm = PLAIN
) -> EmptyResult:
    await fs.create_directory(
        params.path,
        recursive=_default(params.recursive, True),
        policy=access_policy(params, form),
    )
    return EmptyResult()


async def get_metadata(
    fs: LocalFilesystem, params: FsGetMetadataParams, form: RequestForm = PLAIN
) -> FsGetMetadataResult:
    return await fs.get_metadata(
        params.path, policy=access_policy(params, form), detailed=form.is_v0169
    )


def wire_directory_entry(name: str, is_directory: bool, is_file: bool) -> dict[str, object]:
    """One `FsDirectoryEntry` in its wire form (`test_fs_wire_form.py` pins it to the
    converter's output)."""
    return {"fileName": name, "isDirectory": is_directory, "isFile": is_file}


async def read_directory(
    fs: LocalFilesystem, params: FsReadDirectoryParams, form: RequestForm = PLAIN
) -> Wire[FsReadDirectoryResult]:
    """An `FsReadDirectoryResult`, built in its wire form by the scan itself: per-entry objects
    and their conversion cost more than the scan (10 000 entries: 50 ms against 6 ms)."""
    entries = await fs.list_directory(
        params.path,
        wire_directory_entry,
        policy=access_policy(params, form),
        omit_dangling=form.is_v0169,
    )
    return Wire({"entries": entries})


async def remove(
    fs: LocalFilesystem, params: FsRemoveParams, form: RequestForm = PLAIN
) -> EmptyResult:
    await fs.remove(
        params.path,
        recursive=_default(params.recursive, True),
        force=_default(params.force, True),
        policy=access_policy(params, form),
    )
    return EmptyResult()


async def copy(fs: LocalFilesystem, params: FsCopyParams, form: RequestForm = PLAIN) -> EmptyResult:
    await fs.copy(
        params.source_path,
        params.destination_path,
        recursive=params.recursive,
        policy=access_policy(params, form),
    )
    return EmptyResult()


async def canonicalize(
    fs: LocalFilesystem, params: FsCanonicalizeParams, form: RequestForm = PLAIN
) -> FsPathResult:
    resolved = await fs.canonicalize(params.path, policy=access.for_context(params.sandbox))
    return FsPathResult(path=form.path_out(resolved))


async def walk(
    fs: LocalFilesystem, params: FsWalkParams, form: RequestForm = PLAIN
) -> FsWalkResult:
    options = params.options
    limits = WalkLimits(
        max_depth=options.max_depth,
        max_directories=options.max_directories,
        max_entries=options.max_entries,
        follow_directory_symlinks=options.follow_directory_symlinks,
        prune_hidden_directories=options.prune_hidden_directories,
    )
    outcome = await fs.walk(params.path, limits, policy=access.for_context(params.sandbox))
    return FsWalkResult(
        entries=[FsWalkEntry(path=form.path_out(p), kind=k) for p, k in outcome.entries],
        errors=[FsWalkError(path=form.path_out(p), message=m) for p, m in outcome.errors],
        truncated=outcome.truncated,
    )


Handler = Callable[[LocalFilesystem, Any, RequestForm], Awaitable[object]]

FS_HANDLERS: dict[str, Handler] = {
    m.FS_READ_FILE: read_file,
    m.FS_WRITE_FILE: write_file,
    m.FS_CREATE_DIRECTORY: create_directory,
    m.FS_GET_METADATA: get_metadata,
    m.FS_READ_DIRECTORY: read_directory,
    m.FS_REMOVE: remove,
    m.FS_COPY: copy,
    m.FS_CANONICALIZE: canonicalize,
    m.FS_WALK: walk,
}


async def watch_missing(ctx: CallContext, params: FsWatchMissingParams) -> FsWatchMissingResult:
    watching = await ctx.session.watches.watch(
        params.watch_id, list(params.missing), params.present
    )
    return FsWatchMissingResult(watching=watching)


async def open_handle(ctx: CallContext, params: FsOpenParams) -> FsHandleResult:
    await ctx.conn.handles.open(
        params.handle_id, params.path, params.mode, access.for_context(params.sandbox)
    )
    return FsHandleResult(handle_id=params.handle_id)


async def read_block(ctx: CallContext, params: FsReadBlockParams) -> FsReadBlockResult:
    data, eof = await ctx.conn.handles.read_block(params.handle_id, params.offset, params.len)
    return FsReadBlockResult(chunk=b64.encode(data), eof=eof)


async def write_block(ctx: CallContext, params: FsWriteBlockParams) -> EmptyResult:
    data = b64.decode_chunk(params.chunk)
    await ctx.conn.handles.write_block(params.handle_id, params.offset, data)
    return EmptyResult()


async def close_handle(ctx: CallContext, params: FsCloseParams) -> EmptyResult:
    ctx.conn.handles.close(params.handle_id)
    return EmptyResult()


def _with_filesystem(fs_handler: Handler) -> ContextHandler:
    async def handler(ctx: CallContext, params: Any) -> Any:
        return await fs_handler(ctx.fs, params, ctx.form)

    return handler


CONTEXT_HANDLERS: dict[str, ContextHandler] = {
    **{name: _with_filesystem(fs_handler) for name, fs_handler in FS_HANDLERS.items()},
    m.FS_WATCH_MISSING: watch_missing,
    m.FS_OPEN: open_handle,
    m.FS_READ_BLOCK: read_block,
    m.FS_WRITE_BLOCK: write_block,
    m.FS_CLOSE: close_handle,
}
