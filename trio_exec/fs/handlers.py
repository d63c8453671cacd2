"""The `fs/*` request handlers: params object in, one `LocalFilesystem` call, result object out.

Rule: handlers only translate. Defaults of absent members (`fs/remove`: recursive and force;
`fs/createDirectory`: recursive) and base64 live here; every filesystem decision lives in
`LocalFilesystem`. Base64 work on large payloads runs in a worker thread, like the I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pybase64
import trio

from trio_exec.proto import b64
from trio_exec.proto import methods as m
from trio_exec.proto.errors import InvalidRequest
from trio_exec.proto.fs_messages import (
    FsCopyParams,
    FsCreateDirectoryParams,
    FsGetMetadataParams,
    FsGetMetadataResult,
    FsReadDirectoryParams,
    FsReadDirectoryResult,
    FsReadFileParams,
    FsReadFileResult,
    FsRemoveParams,
    FsWriteFileParams,
)
from trio_exec.proto.process_messages import EmptyResult

from .local import LocalFilesystem

#: Payloads at least this big are base64-coded in a worker thread, off the event loop.
THREAD_CODEC_BYTES = 1024 * 1024


def _default(value: bool | None, default: bool) -> bool:
    return default if value is None else value


def _encode_payload(data: bytes) -> str:
    # Straight into a `str`, with the GIL released: `b64.encode`'s bytes → str step holds the
    # GIL for the whole payload and would stall the event loop from the worker thread.
    return pybase64.b64encode_as_string(data)


async def read_file(fs: LocalFilesystem, params: FsReadFileParams) -> FsReadFileResult:
    data = await fs.read_file(params.path, sandbox=params.sandbox_policy)
    if len(data) < THREAD_CODEC_BYTES:
        return FsReadFileResult(data_base64=b64.encode(data))
    encoded = await trio.to_thread.run_sync(_encode_payload, data, abandon_on_cancel=True)
    return FsReadFileResult(data_base64=encoded)


def _decode_payload(text: str) -> bytes:
    if len(text) >= THREAD_CODEC_BYTES:
        # The bulk straight from the `str` with the GIL released (`b64.decode` first copies the
        # whole text to bytes while holding it); `b64.decode` of the last quantum adds the
        # reference's rule on unused bits. A refusal is explained by `b64.decode` below.
        try:
            data = pybase64.b64decode(text, validate=True)
            b64.decode(text[-4:])
            return data
        except ValueError:
            pass
    try:
        return b64.decode(text)
    except b64.Base64Error as exc:
        raise InvalidRequest(f"fs/writeFile requires valid base64 dataBase64: {exc}") from None


async def write_file(fs: LocalFilesystem, params: FsWriteFileParams) -> EmptyResult:
    if len(params.data_base64) < THREAD_CODEC_BYTES:
        data = _decode_payload(params.data_base64)
    else:
        data = await trio.to_thread.run_sync(
            _decode_payload, params.data_base64, abandon_on_cancel=True
        )
    await fs.write_file(params.path, data, sandbox=params.sandbox_policy)
    return EmptyResult()


async def create_directory(fs: LocalFilesystem, params: FsCreateDirectoryParams) -> EmptyResult:
    await fs.create_directory(
        params.path,
        recursive=_default(params.recursive, True),
        sandbox=params.sandbox_policy,
    )
    return EmptyResult()


async def get_metadata(fs: LocalFilesystem, params: FsGetMetadataParams) -> FsGetMetadataResult:
    return await fs.get_metadata(params.path, sandbox=params.sandbox_policy)


async def read_directory(
    fs: LocalFilesystem, params: FsReadDirectoryParams
) -> FsReadDirectoryResult:
    entries = await fs.read_directory(params.path, sandbox=params.sandbox_policy)
    return FsReadDirectoryResult(entries=entries)


async def remove(fs: LocalFilesystem, params: FsRemoveParams) -> EmptyResult:
    await fs.remove(
        params.path,
        recursive=_default(params.recursive, True),
        force=_default(params.force, True),
        sandbox=params.sandbox_policy,
    )
    return EmptyResult()


async def copy(fs: LocalFilesystem, params: FsCopyParams) -> EmptyResult:
    await fs.copy(
        params.source_path,
        params.destination_path,
        recursive=params.recursive,
        sandbox=params.sandbox_policy,
    )
    return EmptyResult()


Handler = Callable[[LocalFilesystem, Any], Awaitable[object]]

FS_HANDLERS: dict[str, Handler] = {
    m.FS_READ_FILE: read_file,
    m.FS_WRITE_FILE: write_file,
    m.FS_CREATE_DIRECTORY: create_directory,
    m.FS_GET_METADATA: get_metadata,
    m.FS_READ_DIRECTORY: read_directory,
    m.FS_REMOVE: remove,
    m.FS_COPY: copy,
}
