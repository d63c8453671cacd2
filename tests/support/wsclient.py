"""A raw WebSocket test client for the exec-server protocol.

It speaks the wire, not an API: it sends exactly the frames a test builds (dicts encoded as
compact JSON, or raw text/bytes), and hands back the server's messages as parsed dicts, each
with its raw text. It never offers permessage-deflate (the reference drops such connections).

One reader task files every inbound message, in arrival order, into :attr:`WireClient.inbound`;
replies (messages with an ``id`` and no ``method``) are also queued for :meth:`reply_for` /
:meth:`next_reply`, notifications go to :attr:`WireClient.notifications`. Every wait is bounded
with :func:`trio.fail_after` (the ``within`` argument, in seconds); a wait that cannot be satisfied because the server closed the
connection raises :class:`ServerClosed` at once instead of timing out.
"""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import orjson
import trio
from trio_websocket import (
    CloseReason,
    ConnectionClosed,
    WebSocketConnection,
    open_websocket_url,
)

#: Default bound for a single wait on the server.
TIMEOUT = 10.0

#: Sentinel for "leave this member out of the message".
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()

Json = Any


class ServerClosed(AssertionError):
    """The server closed the connection while the test was waiting for something."""


@attrs.frozen
class Inbound:
    """One message received from the server."""

    raw: str
    msg: Json
    at: float  # trio.current_time() on arrival

    @property
    def is_notification(self) -> bool:
        return isinstance(self.msg, dict) and "method" in self.msg and "id" not in self.msg

    @property
    def is_reply(self) -> bool:
        return isinstance(self.msg, dict) and "id" in self.msg and "method" not in self.msg


def same_id(a: Json, b: Json) -> bool:
    """JSON identity of two ids: same JSON type and value (``1`` is not ``"1"`` nor ``true``)."""
    return type(a) is type(b) and a == b


def b64(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@attrs.define(eq=False)
class WireClient:
    """A connected raw client. Create it with :func:`connect`."""

    ws: WebSocketConnection
    inbound: list[Inbound] = attrs.field(factory=list)
    notifications: list[Json] = attrs.field(factory=list)
    close_reason: CloseReason | None = None
    _replies: list[Inbound] = attrs.field(factory=list)
    _changed: trio.Event = attrs.field(factory=trio.Event)
    _closed: trio.Event = attrs.field(factory=trio.Event)
    _ids: Iterable[int] = attrs.field(factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ reading

    async def _reader(self) -> None:
        try:
            while True:
                data = await self.ws.get_message()
                raw = data if isinstance(data, str) else data.decode("utf-8", "replace")
                item = Inbound(raw=raw, msg=orjson.loads(raw), at=trio.current_time())
                self.inbound.append(item)
                if item.is_notification:
                    self.notifications.append(item.msg)
                else:
                    self._replies.append(item)
                self._wake()
        except ConnectionClosed as exc:
            self.close_reason = exc.reason
        finally:
            if self.close_reason is None:
                self.close_reason = self.ws.closed
            self._closed.set()
            self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def wait_for(
        self, predicate: Callable[[], Any], *, within: float = TIMEOUT, what: str = "condition"
    ) -> Any:
        """Wait until ``predicate()`` is truthy and return its value.

        Raises :class:`ServerClosed` if the connection closes first, ``trio.TooSlowError``
        after ``within`` seconds.
        """
        with trio.fail_after(within):
            while True:
                value = predicate()
                if value:
                    return value
                if self._closed.is_set():
                    raise ServerClosed(
                        f"server closed the connection ({self.close_reason}) "
                        f"while waiting for {what}"
                    )
                await self._changed.wait()

    async def wait_closed(self, within: float = TIMEOUT) -> CloseReason:
        """Wait until the server closed the connection; return the close reason."""
        with trio.fail_after(within):
            await self._closed.wait()
        assert self.close_reason is not None
        return self.close_reason

    # ------------------------------------------------------------------ sending

    def next_id(self) -> int:
        return next(self._ids)  # type: ignore[call-overload]

    async def send_raw(self, data: str | bytes, *, may_close: bool = False) -> None:
        """Send one text (``str``) or binary (``bytes``) frame as is.

        With ``may_close``, the server closing the connection during the send is not an
        error (the close is recorded as usual; see :meth:`wait_closed`).
        """
        try:
            await self.ws.send_message(data)
        except ConnectionClosed:
            if not may_close:
                raise

    async def send(self, obj: Json) -> None:
        """Send ``obj`` as one compact JSON text frame."""
        try:
            text = orjson.dumps(obj).decode()
        except TypeError:  # integers beyond 64 bits: orjson refuses, the stdlib does not
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        await self.ws.send_message(text)

    async def send_request(
        self, method: Json, params: Json = ABSENT, *, id: Json = ABSENT, **extra: Json
    ) -> Json:
        """Send a request without waiting; return its id (allocated if not given)."""
        if id is ABSENT:
            id = self.next_id()
        msg: dict[str, Json] = {"id": id, "method": method}
        if params is not ABSENT:
            msg["params"] = params
        msg.update(extra)
        await self.send(msg)
        return id

    async def notify(self, method: str, params: Json = ABSENT) -> None:
        msg: dict[str, Json] = {"method": method}
        if params is not ABSENT:
            msg["params"] = params
        await self.send(msg)

    # ------------------------------------------------------------------ replies

    def _take(self, match: Callable[[Inbound], bool]) -> Inbound | None:
        for i, item in enumerate(self._replies):
            if match(item):
                del self._replies[i]
                return item
        return None

    async def reply_item_for(self, id: Json, *, within: float = TIMEOUT) -> Inbound:
        """The first not yet consumed reply whose id is JSON-identical to ``id``."""
        return await self.wait_for(
            lambda: self._take(lambda item: same_id(item.msg.get("id"), id)),
            within=within,
            what=f"the reply to id {id!r}",
        )

    async def reply_for(self, id: Json, *, within: float = TIMEOUT) -> Json:
        return (await self.reply_item_for(id, within=within)).msg

    async def next_reply_item(self, *, within: float = TIMEOUT) -> Inbound:
        """The oldest not yet consumed reply, whatever its id."""
        return await self.wait_for(
            lambda: self._take(lambda item: True), within=within, what="any reply"
        )

    async def next_reply(self, *, within: float = TIMEOUT) -> Json:
        return (await self.next_reply_item(within=within)).msg

    def pending_replies(self) -> list[Json]:
        return [item.msg for item in self._replies]

    async def request(
        self,
        method: Json,
        params: Json = ABSENT,
        *,
        id: Json = ABSENT,
        within: float = TIMEOUT,
        **extra: Json,
    ) -> Json:
        """Send a request and return the server's raw reply dict."""
        id = await self.send_request(method, params, id=id, **extra)
        return await self.reply_for(id, within=within)

    async def result(self, method: str, params: Json = ABSENT, *, within: float = TIMEOUT) -> Json:
        """Send a request that must succeed; return its ``result``."""
        reply = await self.request(method, params, within=within)
        assert "result" in reply, f"{method} {params!r} failed: {reply!r}"
        return reply["result"]

    async def assert_usable(self) -> None:
        """Prove the connection is still served: an unknown method gets its -32601 reply."""
        id = self.next_id()
        reply = await self.request("usable/probe", {}, id=id)
        assert reply == {
            "error": {
                "code": -32601,
                "message": "exec-server stub does not implement `usable/probe` yet",
            },
            "id": id,
        }

    # ------------------------------------------------------------------ handshake

    async def initialize(self, client_name: str = "conformance", **params: Json) -> Json:
        return await self.request("initialize", {"clientName": client_name, **params})

    async def handshake(self, client_name: str = "conformance", **params: Json) -> str:
        """``initialize`` (must succeed) then ``initialized``; return the session id."""
        reply = await self.initialize(client_name, **params)
        assert "result" in reply, f"initialize failed: {reply!r}"
        await self.notify("initialized", {})
        return reply["result"]["sessionId"]

    # ------------------------------------------------------------------ processes

    async def start(
        self,
        process_id: str,
        argv: list[str],
        *,
        cwd: str = "/",
        env: dict[str, str] | None = None,
        tty: bool = False,
        **extra: Json,
    ) -> Json:
        """Send ``process/start`` and return the raw reply."""
        params = {
            "processId": process_id,
            "argv": argv,
            "cwd": cwd,
            "env": {"PATH": "/usr/bin:/bin"} if env is None else env,
            "tty": tty,
            **extra,
        }
        return await self.request("process/start", params)

    async def start_ok(self, process_id: str, argv: list[str], **kwargs: Json) -> None:
        reply = await self.start(process_id, argv, **kwargs)
        assert reply.get("result") == {"processId": process_id}, reply

    def events(self, process_id: str) -> list[Json]:
        """The notifications received so far for ``process_id``, in arrival order."""
        return [
            n for n in self.notifications
            if isinstance(n.get("params"), dict) and n["params"].get("processId") == process_id
        ]

    def output(self, process_id: str) -> bytes:
        """The bytes of every ``process/output`` notification for ``process_id``, in seq order."""
        chunks = [
            n["params"] for n in self.events(process_id) if n["method"] == "process/output"
        ]
        return b"".join(unb64(c["chunk"]) for c in sorted(chunks, key=lambda c: c["seq"]))

    def _find(self, process_id: str, method: str) -> Json | None:
        for n in self.events(process_id):
            if n["method"] == method:
                return n["params"]
        return None

    async def wait_event(
        self, process_id: str, method: str, *, within: float = TIMEOUT
    ) -> Json:
        """Wait for the first ``method`` notification of ``process_id``; return its params."""
        return await self.wait_for(
            lambda: self._find(process_id, method),
            within=within,
            what=f"{method} of {process_id!r}",
        )

    async def wait_exited(self, process_id: str, *, within: float = TIMEOUT) -> Json:
        return await self.wait_event(process_id, "process/exited", within=within)

    async def wait_process_closed(self, process_id: str, *, within: float = TIMEOUT) -> list[Json]:
        """Wait for ``process/closed`` of ``process_id``; return all of its notifications."""
        await self.wait_event(process_id, "process/closed", within=within)
        return self.events(process_id)

    async def wait_output(
        self, process_id: str, needle: bytes, *, within: float = TIMEOUT
    ) -> bytes:
        """Wait until the notified output of ``process_id`` contains ``needle``."""
        def found() -> bytes | None:
            out = self.output(process_id)
            return out if needle in out else None

        return await self.wait_for(
            found,
            within=within,
            what=f"{needle!r} in the output of {process_id!r}",
        )

    async def run(
        self, process_id: str, argv: list[str], *, within: float = TIMEOUT, **kwargs: Json
    ) -> tuple[bytes, Json]:
        """Start a process, wait for its ``process/closed``; return (output, exited params)."""
        await self.start_ok(process_id, argv, **kwargs)
        await self.wait_process_closed(process_id, within=within)
        exited = self._find(process_id, "process/exited")
        return self.output(process_id), exited

    async def read(self, process_id: str, *, within: float = TIMEOUT, **params: Json) -> Json:
        """``process/read`` and return the raw reply."""
        return await self.request(
            "process/read", {"processId": process_id, **params}, within=within
        )


@asynccontextmanager
async def connect(
    url: str,
    *,
    within: float = TIMEOUT,
    max_message_size: int = 512 * 1024 * 1024,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> AsyncIterator[WireClient]:
    """Open a connection (no compression offered) and run its reader task.

    Leaving the block closes the connection (the server may drop it first; that is fine).
    """
    ws: WebSocketConnection | None = None
    try:
        async with open_websocket_url(
            url,
            max_message_size=max_message_size,
            connect_timeout=within,
            disconnect_timeout=within,
            extra_headers=extra_headers,
        ) as ws, _run_client(ws) as client:
            yield client
    finally:
        # trio-websocket leaves the TCP stream open when the peer dropped it without a Close
        # frame (the reference always does): close it, or the socket leaks a ResourceWarning.
        if ws is not None:
            await trio.aclose_forcefully(ws._stream)


@asynccontextmanager
async def _run_client(ws: WebSocketConnection) -> AsyncIterator[WireClient]:
    client = WireClient(ws)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client._reader)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # Only the test body can fail here (the reader task never raises): hand its
        # exception back unwrapped so pytest.raises and failure reports stay plain.
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def session(url: str, *, client_name: str = "conformance") -> AsyncIterator[WireClient]:
    """A connection that has completed the handshake."""
    async with connect(url) as client:
        await client.handshake(client_name)
        yield client
