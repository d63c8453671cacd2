"""The session's events as wire notifications: the one place they are encoded.

Rules:
- Each event becomes the notification message class of `proto/` (`ProcessOutputNotification`,
  `ProcessExitedNotification`, `ProcessClosedNotification`, `FsMissingChangedNotification`)
  and is encoded through the converter, so member names, order and omitted members are the
  message class's: `process/output` carries the chunk in base64; `process/exited` carries
  `sandboxDenied` only for a 0.169-dialect process, `signal` only when a signal ended it, and
  `resourceUsage` when the child's usage could be read.
- `process/output` is the hot path (one per 64 KiB of output): its params are built straight
  from the message class's fields (`output_params`: its wire member names, in field order),
  saving the converter's ~9 µs per chunk (the whole encoding costs ~20 µs at 64 KiB); they
  equal the converter's output, member order included (tests/test_domain_types.py).
- `NotificationSink` is what a connection hands its session (`Session.open_sink`): it encodes
  each event and gives it to the connection's send (`Peer.send`), in the order it is sent (the
  process sends under its record lock, so seq order is send order). `process/output`, the hot
  path, is written at once by the pump when nothing is queued (no hand-off to the writer);
  the other events always go through the writer's queue, so the process's own work right
  after them (its leader reaped once `process/closed` is recorded) goes first, as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, assert_never

import attrs

from trio_exec.fs.watch import MissingChanged
from trio_exec.process.events import ProcessClosed, ProcessExited, ProcessOutput
from trio_exec.process.usage import ResourceUsage
from trio_exec.proto import b64, methods
from trio_exec.proto.codec import Encoded, encode_notification
from trio_exec.proto.convert import unstructure, wire_name
from trio_exec.proto.dialect import Dialect
from trio_exec.proto.fs_messages import FsMissingChangedNotification
from trio_exec.proto.process_messages import (
    ProcessClosedNotification,
    ProcessExitedNotification,
    ProcessOutputNotification,
    ResourceUsageInfo,
)
from trio_exec.session.session import SessionEvent


def _usage(used: ResourceUsage | None) -> ResourceUsageInfo | None:
    if used is None:
        return None
    return ResourceUsageInfo(user_cpu_usec=used.user_cpu_usec,
                             system_cpu_usec=used.system_cpu_usec,
                             max_rss_bytes=used.max_rss_bytes)


def notification(event: SessionEvent) -> tuple[str, Any]:
    """The method and the message object of `event`'s notification."""
    if isinstance(event, ProcessOutput):
        chunk = event.chunk
        return methods.PROCESS_OUTPUT, ProcessOutputNotification(
            process_id=event.process_id,
            seq=chunk.seq,
            stream=chunk.stream,
            chunk=b64.encode(chunk.data),
        )
    if isinstance(event, ProcessExited):
        return methods.PROCESS_EXITED, ProcessExitedNotification(
            process_id=event.process_id,
            seq=event.seq,
            exit_code=event.exit_code,
            sandbox_denied=event.sandbox_denied if event.dialect is Dialect.V0169 else None,
            signal=event.signal,
            resource_usage=_usage(event.resource_usage),
        )
    if isinstance(event, ProcessClosed):
        return methods.PROCESS_CLOSED, ProcessClosedNotification(
            process_id=event.process_id, seq=event.seq
        )
    if isinstance(event, MissingChanged):
        return methods.FS_MISSING_CHANGED, FsMissingChangedNotification(watch_id=event.watch_id)
    assert_never(event)


_OUTPUT_FIELDS = attrs.fields(ProcessOutputNotification)
#: The wire members of `process/output`, in field order; every one always present.
_PROCESS_ID, _SEQ, _STREAM, _CHUNK = (wire_name(field) for field in _OUTPUT_FIELDS)
assert [field.name for field in _OUTPUT_FIELDS] == ["process_id", "seq", "stream", "chunk"]
assert not any(field.metadata.get("omit_if_none") for field in _OUTPUT_FIELDS)


def output_params(event: ProcessOutput) -> dict[str, Any]:
    """The params of `event`'s `process/output`, as the converter would make them."""
    chunk = event.chunk
    return {
        _PROCESS_ID: event.process_id,
        _SEQ: chunk.seq,
        _STREAM: chunk.stream,
        _CHUNK: b64.encode(chunk.data),
    }


def encode_event(event: SessionEvent) -> bytes:
    """The notification frame of `event`."""
    if isinstance(event, ProcessOutput):
        return encode_notification(methods.PROCESS_OUTPUT, output_params(event))
    method, message = notification(event)
    return encode_notification(method, unstructure(message))


@attrs.define(eq=False)
class NotificationSink:
    """A connection's end of its session's events: encoded, then sent by `send_encoded` (the
    connection's: the message, and whether it may be written at once; trio's
    `BrokenResourceError`/`ClosedResourceError` once the connection has ended)."""

    send_encoded: Callable[[Encoded, bool], Awaitable[None]]

    async def send(self, event: SessionEvent) -> None:
        await self.send_encoded(encode_event(event), isinstance(event, ProcessOutput))
