"""Ways for a client to go wrong, shared by the fault tests and `scripts/faults`.

Each helper performs one fault against a server at `host:port` and returns; what the server
does about it is counted afterwards with `support.census`. The helpers speak the 0.120 dialect
(which both dialects' servers accept), so the same fault runs against trio-exec and against the
reference servers.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import trio
from wsproto.events import AcceptConnection, Ping

from support.rawws import Message, RawWs, masked_frame, open_raw
from support.wsclient import WireClient

TIMEOUT = 10.0
#: The working directory of started processes: a plain path (0.120) or a `file:` URI, which
#: the 0.169 reference requires (trio-exec takes both).
CWD = {"0.120": "/", "0.169": "file:///"}


async def reset(stream: trio.SocketStream) -> None:
    """Close `stream` with a TCP RST (SO_LINGER 0): the peer is gone, no Close, no FIN."""
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await trio.aclose_forcefully(stream)


async def vanish(client: WireClient) -> None:
    """The client's machine is gone: its TCP connection is reset under the WebSocket."""
    await reset(client.ws._stream)  # type: ignore[attr-defined]


async def raw_request(raw: RawWs, message: dict[str, Any], *, answer_pings: bool = True) -> Any:
    """Send one JSON-RPC request over a bare client and return its reply (pings answered)."""
    await raw.send(Message(data=json.dumps(message)))
    with trio.fail_after(TIMEOUT):
        while True:
            for event in list(raw.events):
                if isinstance(event, Ping) and answer_pings:
                    raw.events.remove(event)
                    await raw.send(event.response())
                elif isinstance(event, Message):
                    reply = json.loads(event.data)
                    if reply.get("id") == message["id"]:
                        raw.events.remove(event)
                        return reply
            assert not raw.eof, f"the server closed the connection before answering {message}"
            await raw._receive_once()


async def raw_session(raw: RawWs, env: dict[str, str], argv: list[str], cwd: str = "/") -> None:
    """Upgrade, handshake, and start one process `p` on a bare client."""
    accepted = await raw.wait_event(AcceptConnection)
    assert accepted is not None, "the upgrade was refused"
    reply = await raw_request(raw, {"id": 1, "method": "initialize", "params": {"clientName": "fault"}})
    assert "result" in reply, reply
    await raw.send(Message(data=json.dumps({"method": "initialized", "params": {}})))
    start = {"processId": "p", "argv": argv, "cwd": cwd, "env": env, "tty": False}
    reply = await raw_request(raw, {"id": 2, "method": "process/start", "params": start})
    assert reply.get("result", {}).get("processId") == "p", reply


async def gone_mid_request(
    host: str, port: int, env: dict[str, str], argv: list[str], cwd: str = "/"
) -> None:
    """A session with a running process, a long-poll in flight, then a TCP reset."""
    async with open_raw(host, port) as raw:
        await raw_session(raw, env, argv, cwd)
        read = {"processId": "p", "afterSeq": 0, "waitMs": 60_000}
        await raw.send(Message(data=json.dumps({"id": 3, "method": "process/read", "params": read})))
        await reset(raw.stream)


async def gone_mid_frame(
    host: str, port: int, env: dict[str, str], argv: list[str], cwd: str = "/"
) -> None:
    """A session with a running process, then half of a 1 MiB frame, then a TCP reset."""
    async with open_raw(host, port) as raw:
        await raw_session(raw, env, argv, cwd)
        frame = masked_frame(0x1, b" " * (1 << 20))
        await raw.send_bytes(frame[: len(frame) // 2])
        await reset(raw.stream)


async def gone_mid_upgrade(host: str, port: int) -> None:
    """Half of an HTTP upgrade request, then a TCP reset."""
    stream = await trio.open_tcp_stream(host, port)
    await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Up")
    await reset(stream)


async def gone_mid_initialize(host: str, port: int) -> None:
    """`initialize` sent (the session is created), its reply never read, then a TCP reset."""
    async with open_raw(host, port) as raw:
        accepted = await raw.wait_event(AcceptConnection)
        assert accepted is not None, "the upgrade was refused"
        message = {"id": 1, "method": "initialize", "params": {"clientName": "fault"}}
        await raw.send(Message(data=json.dumps(message)))
        await reset(raw.stream)


async def half_open_session(
    raw: RawWs, env: dict[str, str], argv: list[str], cwd: str = "/"
) -> None:
    """A session with a running process whose peer then goes silent: from here on `raw` is
    never read again, so pings go unanswered, yet its TCP connection stays open."""
    await raw_session(raw, env, argv, cwd)
