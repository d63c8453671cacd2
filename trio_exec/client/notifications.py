"""The server's notifications as message classes, decoded with the one converter.

Rule: `decode_notification` returns one of the three classes or None for a notification this
client does not know (ignored, as the contract asks of both sides). The fields are the wire's
(protocol.md §7) plus trio-exec's additive `signal`.
"""

from __future__ import annotations

from typing import Any

from trio_exec.proto import methods
from trio_exec.proto.convert import CONVERTER
from trio_exec.proto.errors import RpcError
from trio_exec.proto.process_messages import (
    ProcessClosedNotification,
    ProcessExitedNotification,
    ProcessOutputNotification,
)

ProcessNotification = ProcessOutputNotification | ProcessExitedNotification | ProcessClosedNotification

_CLASSES: dict[str, type[ProcessNotification]] = {
    methods.PROCESS_OUTPUT: ProcessOutputNotification,
    methods.PROCESS_EXITED: ProcessExitedNotification,
    methods.PROCESS_CLOSED: ProcessClosedNotification,
}


def decode_notification(method: str, params: Any) -> ProcessNotification | None:
    """The notification object, or None when `method` is unknown or `params` malformed."""
    cls = _CLASSES.get(method)
    if cls is None:
        return None
    try:
        return CONVERTER.structure(params, cls)
    except (RpcError, TypeError, ValueError):
        return None
