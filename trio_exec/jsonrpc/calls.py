"""The calls a peer has sent and awaits a reply for, by id.

Rules:
- Ids are integers from 1, never reused on one peer.
- A call is pending from `register` until its caller leaves `pending`; a reply files its
  result or error and wakes the caller; a reply whose id is not pending is ignored (False).
- A call is marked `sent` just before its message is handed to the stream, so after a drop
  the caller knows whether the request may have reached the other end; a call its caller
  abandoned (cancelled) before that point is never sent.
- `fail_all` ends every pending call with the error it is given and empties the table; a
  call already answered keeps its reply (its caller runs next).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import trio

from trio_exec.proto import codec
from trio_exec.proto.errors import error_from_wire


@attrs.define(eq=False)
class Call:
    method: str
    #: Bytes of its message.
    size: int
    done: trio.Event = attrs.field(factory=trio.Event)
    sent: bool = False
    abandoned: bool = False
    result: Any = None
    error: BaseException | None = None


@attrs.frozen
class Outgoing:
    """A call's request on its way to the writer."""

    call: Call
    payload: codec.Encoded


@attrs.define(eq=False)
class Calls:
    """Invariant: `_pending` holds exactly the calls awaiting a reply."""

    _ids: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))
    _pending: dict[int, Call] = attrs.field(factory=dict)

    def next_id(self) -> int:
        return next(self._ids)

    @contextmanager
    def pending(self, request_id: int, call: Call) -> Iterator[Call]:
        """Hold `call` under `request_id` while the caller waits for its reply."""
        self._pending[request_id] = call
        try:
            yield call
        finally:
            self._pending.pop(request_id, None)
            call.abandoned = not call.done.is_set()

    def file(self, reply: codec.Response) -> bool:
        """File `reply` into its call; False when no call awaits that id."""
        call = self._pending.get(reply.id) if isinstance(reply.id, int) else None
        if call is None:
            return False
        if reply.error is not None:
            error = reply.error if isinstance(reply.error, dict) else {}
            code = error.get("code")
            text = error.get("message")
            call.error = error_from_wire(
                code if isinstance(code, int) else -32603,
                text if isinstance(text, str) else repr(reply.error),
            )
        else:
            call.result = reply.result
        call.done.set()
        return True

    def fail_all(self, error_for: Callable[[list[Call]], Callable[[Call], BaseException]]) -> None:
        """End every unanswered call with `error_for(unanswered)(call)`."""
        calls, self._pending = self._pending, {}
        unanswered = [call for call in calls.values() if not call.done.is_set()]
        error_of = error_for(unanswered)
        for call in unanswered:
            call.error = error_of(call)
            call.done.set()


def leaving(item: Outgoing) -> bool:
    """Just before `item` is written: False for an abandoned call (never sent), else mark it
    sent."""
    if item.call.abandoned:
        return False
    item.call.sent = True
    return True
