"""A small, fast WebSocket + JSON-RPC client used for *both* servers.

Written directly on a trio ``SocketStream`` (no trio-websocket/wsproto on the client side) so
the client costs as little CPU as possible and is never the bottleneck it would otherwise be
(wsproto tops out around 250 MiB/s of 8 KiB messages on this kind of machine):

* never offers permessage-deflate (the reference drops connections that do);
* client frames are masked with an all-zero key (legal framing; servers XOR as usual);
* one reader task per connection parses frames out of a bytearray, answers pings, resolves
  pending requests by id and hands notifications to a synchronous callback;
* ``quickack=True`` sets ``TCP_QUICKACK`` on the socket before every receive, so the client
  ACKs at once. The reference server lacks ``TCP_NODELAY``; without immediate ACKs a response
  followed by another write stalls on the client's delayed ACK (~40 ms).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import socket
import struct
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import trio

Json = Any

_LINGER_RST = struct.pack("ii", 1, 0)
_RECV_SMALL = 256 * 1024
_RECV_BUF = 64 * 1024
_RECV_MAX = 1024 * 1024
#: How long `close()` waits for the server's Close.
CLOSE_WAIT = 5.0


class RpcError(Exception):
    """The server answered a request with an error object."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionLost(Exception):
    """The connection closed (or broke) before the awaited reply arrived."""


class Pending:
    """One request in flight."""

    __slots__ = ("_event", "error", "id", "result", "t_done", "t_sent")

    def __init__(self, rid: int) -> None:
        self.id = rid
        self._event = trio.Event()
        self.result: Json = None
        self.error: BaseException | None = None
        self.t_sent = 0.0
        self.t_done = 0.0

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def _finish(self, result: Json, error: BaseException | None) -> None:
        if not self._event.is_set():
            self.result = result
            self.error = error
            self.t_done = time.perf_counter()
            self._event.set()

    async def wait(self) -> Json:
        await self._event.wait()
        if self.error is not None:
            raise self.error
        return self.result


def _frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A FIN client frame with an all-zero masking key (payload is sent as is)."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + b"\0\0\0\0" + payload


class Client:
    """One WebSocket connection speaking the exec-server protocol."""

    def __init__(self, stream: trio.SocketStream, quickack: bool, leftover: bytes) -> None:
        self.stream = stream
        self.quickack = quickack
        self._buf = bytearray(max(_RECV_BUF, len(leftover)))
        self._buf[: len(leftover)] = leftover
        self._view = memoryview(self._buf)
        self._lo = 0
        self._hi = len(leftover)
        self._replies: list[bytes] = []
        self._ids = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._send_lock = trio.StrictFIFOLock()
        self._frag: bytearray | None = None
        self._cancel = trio.CancelScope()
        self.closed = trio.Event()
        self.close_reason = ""
        #: Called synchronously with every notification (dict with "method" and "params").
        self.on_notify: Callable[[Json], None] | None = None
        self.session_id: str | None = None

    # -- connecting --------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls, nursery: trio.Nursery, host: str, port: int, *, quickack: bool = False
    ) -> Client:
        stream = await trio.open_tcp_stream(host, port)
        try:
            sock = stream.socket
            if quickack:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            key = base64.b64encode(os.urandom(16)).decode()
            request = (
                f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
            await stream.send_all(request)
            head = b""
            while b"\r\n\r\n" not in head:
                if quickack:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionLost(f"connection closed during the upgrade (got {head!r})")
                head += data
                if len(head) > 65536:
                    raise ConnectionLost("oversized upgrade response")
            head, _, rest = head.partition(b"\r\n\r\n")
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status + b" ":
                raise ConnectionLost(f"upgrade refused: {status!r}")
        except BaseException:
            await _hard_close(stream)
            raise
        client = cls(stream, quickack, rest)
        nursery.start_soon(client._reader)
        return client

    # -- requests ----------------------------------------------------------------------------

    def _new_request(self, method: str, params: Json) -> tuple[Pending, bytes]:
        rid = next(self._ids)
        pending = Pending(rid)
        self._pending[rid] = pending
        msg = orjson.dumps({"id": rid, "method": method, "params": params})
        return pending, _frame(msg)

    async def _send(self, data: bytes) -> None:
        if self.closed.is_set():
            raise ConnectionLost(self.close_reason or "connection closed")
        try:
            async with self._send_lock:
                await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self._mark_closed(f"send failed: {exc!r}")
            raise ConnectionLost(self.close_reason) from None

    async def start_request(self, method: str, params: Json) -> Pending:
        pending, frame = self._new_request(method, params)
        pending.t_sent = time.perf_counter()
        try:
            await self._send(frame)
        except ConnectionLost as exc:
            pending._finish(None, exc)
        return pending

    async def call(self, method: str, params: Json) -> Json:
        pending = await self.start_request(method, params)
        return await pending.wait()

    async def pipeline(self, calls: Iterable[tuple[str, Json]], batch: int = 64) -> list[Pending]:
        """Send many requests back to back (``batch`` frames per write) without waiting."""
        out: list[Pending] = []
        frames: list[bytes] = []
        for method, params in calls:
            pending, frame = self._new_request(method, params)
            out.append(pending)
            frames.append(frame)
        now = time.perf_counter()
        for p in out:
            p.t_sent = now
        for i in range(0, len(frames), batch):
            try:
                await self._send(b"".join(frames[i : i + batch]))
            except ConnectionLost as exc:
                for p in out:
                    p._finish(None, exc)
                break
        return out

    async def notify(self, method: str, params: Json) -> None:
        await self._send(_frame(orjson.dumps({"method": method, "params": params})))

    async def handshake(self, client_name: str = "bench", resume: str | None = None) -> str:
        params: dict[str, Json] = {"clientName": client_name}
        if resume is not None:
            params["resumeSessionId"] = resume
        result = await self.call("initialize", params)
        await self.notify("initialized", {})
        sid: str = result["sessionId"]
        self.session_id = sid
        return sid

    # -- closing -----------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the connection the WebSocket way: Close 1000, await the server's Close (or
        EOF) for at most ``CLOSE_WAIT`` seconds, then close the socket."""
        with contextlib.suppress(ConnectionLost):
            await self._send(_frame(struct.pack("!H", 1000), 0x8))
            with trio.move_on_after(CLOSE_WAIT):
                await self.closed.wait()
        self._cancel.cancel()
        self._mark_closed("closed by client")
        with trio.CancelScope(shield=True):
            await self.stream.aclose()

    async def abort(self) -> None:
        """Drop the TCP connection abruptly (RST, no Close frame)."""
        self._cancel.cancel()
        self._mark_closed("aborted by client")
        await _hard_close(self.stream)

    def _mark_closed(self, reason: str) -> None:
        if self.closed.is_set():
            return
        self.close_reason = reason
        self.closed.set()
        exc = ConnectionLost(reason)
        pending, self._pending = self._pending, {}
        for p in pending.values():
            p._finish(None, exc)

    # -- reading -----------------------------------------------------------------------------

    async def _reader(self) -> None:
        with self._cancel:
            try:
                await self._read_loop()
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self._mark_closed(f"receive failed: {exc!r}")
            finally:
                self._mark_closed(self.close_reason or "connection closed")

    async def _read_loop(self) -> None:
        # Frames are received straight into one buffer (recv_into, no per-read allocation)
        # and parsed in place; [_lo, _hi) holds unparsed bytes. A frame bigger than the buffer
        # gets a new buffer of its size.
        sock = self.stream.socket
        quickack = self.quickack
        need = self._parse() if self._hi > self._lo else 0
        while not self.closed.is_set():
            cap = len(self._buf)
            if self._hi == cap or (need and self._lo + need > cap):
                pending = self._hi - self._lo
                # Grow for a frame that does not fit, when compaction would move a lot, and
                # (adaptively, up to _RECV_MAX) when traffic fills the buffer.
                if need > cap or pending > cap // 2 or cap < _RECV_MAX:
                    new = bytearray(max(2 * cap, need + _RECV_SMALL if need > cap else 0))
                    new[:pending] = self._view[self._lo : self._hi]
                    self._view.release()
                    self._buf = new
                    self._view = memoryview(new)
                else:
                    self._view[:pending] = bytes(self._view[self._lo : self._hi])
                self._lo, self._hi = 0, pending
            if quickack:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            got = await sock.recv_into(self._view[self._hi :])
            if not got:
                self._mark_closed("server closed the connection (EOF)")
                return
            self._hi += got
            if need and self._hi - self._lo < need:
                continue
            need = self._parse()
            await self._flush_replies()

    async def _flush_replies(self) -> None:
        replies, self._replies = self._replies, []
        for r in replies:
            try:
                async with self._send_lock:
                    await self.stream.send_all(r)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass

    def _parse(self) -> int:
        """Handle every complete frame in the buffer; return the size of an incomplete one."""
        buf = self._buf
        view = self._view
        off = self._lo
        n = self._hi
        need = 0
        try:
            while n - off >= 2:
                b0 = buf[off]
                b1 = buf[off + 1]
                ln = b1 & 0x7F
                hdr = 2
                if ln == 126:
                    if n - off < 4:
                        break
                    ln = int.from_bytes(buf[off + 2 : off + 4], "big")
                    hdr = 4
                elif ln == 127:
                    if n - off < 10:
                        break
                    ln = int.from_bytes(buf[off + 2 : off + 10], "big")
                    hdr = 10
                if b1 & 0x80:
                    self._mark_closed("server sent a masked frame")
                    return 0
                end = off + hdr + ln
                if end > n:
                    need = end - off
                    break
                opcode = b0 & 0x0F
                fin = b0 & 0x80
                start = off + hdr
                off = end
                if opcode in (0x1, 0x2) and fin and self._frag is None:
                    self._dispatch(orjson.loads(view[start:end]))
                elif opcode in (0x1, 0x2, 0x0):
                    if opcode != 0x0:
                        self._frag = bytearray()
                    if self._frag is None:
                        self._mark_closed("continuation frame without a start")
                        return 0
                    self._frag += view[start:end]
                    if fin:
                        msg = orjson.loads(self._frag)
                        self._frag = None
                        self._dispatch(msg)
                elif opcode == 0x9:  # ping
                    self._replies.append(_frame(bytes(view[start:end]), 0xA))
                elif opcode == 0x8:  # close
                    code = int.from_bytes(buf[start : start + 2], "big") if ln >= 2 else None
                    reason = bytes(view[start + 2 : end]).decode(errors="replace")
                    self._replies.append(_frame(bytes(view[start : start + 2]), 0x8))
                    self._mark_closed(f"server sent Close {code} {reason!r}")
                    break
                # pong and others: ignored
        finally:
            self._lo = off
            if off == n:
                self._lo = self._hi = 0
        return need

    def _dispatch(self, msg: Json) -> None:
        if not isinstance(msg, dict):
            return
        if "method" in msg:
            cb = self.on_notify
            if cb is not None:
                cb(msg)
            return
        rid = msg.get("id")
        pending = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if pending is None:
            return
        err = msg.get("error")
        if err is not None:
            pending._finish(None, RpcError(err.get("code", 0), err.get("message", "")))
        else:
            pending._finish(msg.get("result"), None)


async def _hard_close(stream: trio.SocketStream) -> None:
    with contextlib.suppress(OSError):
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    with trio.CancelScope(shield=True):
        await stream.aclose()
