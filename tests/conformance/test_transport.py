"""The WebSocket transport (protocol.md §1; contract §2 #1, #2 and the transport rows).

The reference runs document its behaviour (no Close frames, deflate offers dropped, plain
HTTP unanswered, no TCP_NODELAY, 16 MiB frame limit); the trio-exec runs pin the fixes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

import orjson
import pytest
import trio
from support import sockets
from support.expect import not_implemented
from support.rawws import CloseConnection, Message, handshake_answer, masked_frame, open_raw
from support.servers import TRIO_EXEC, ServerHandle
from support.wsclient import connect, session
from wsproto.events import Ping

MIB = 1024 * 1024


async def http_exchange(server: ServerHandle, request: bytes) -> bytes:
    """Send a raw HTTP request; return everything the server sent until it closed."""
    with trio.fail_after(10):
        stream = await trio.open_tcp_stream(server.host, server.port)
        async with stream:
            await stream.send_all(request)
            received = b""
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
                received += data
                if b"\r\n\r\n" in received:
                    head, _, body = received.partition(b"\r\n\r\n")
                    length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")]
                    if length and len(body) >= length[0]:
                        break
            return received


async def test_plain_http_readyz(server: ServerHandle) -> None:
    """Reference: no bytes, the socket is closed. trio-exec: ``GET /readyz`` answers 200."""
    answer = await http_exchange(
        server, b"GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    if server.is_reference:
        assert answer == b""
    else:
        assert answer.startswith(b"HTTP/1.1 200 "), answer


async def test_plain_http_head_is_answered_like_get_without_a_body(server: ServerHandle) -> None:
    """Reference: no bytes. trio-exec: ``HEAD`` gets ``GET``'s status and headers, no body."""
    for path in (b"/readyz", b"/nothing-here"):
        request = b" %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path
        answer = await http_exchange(server, b"HEAD" + request)
        if server.is_reference:
            assert answer == b""
            continue
        head, _, body = (await http_exchange(server, b"GET" + request)).partition(b"\r\n\r\n")
        assert body, "GET has a body"
        assert answer == head + b"\r\n\r\n", answer


async def test_plain_http_to_another_path(server: ServerHandle) -> None:
    """Reference: no bytes. trio-exec: a proper HTTP error status."""
    answer = await http_exchange(
        server, b"GET /nothing-here HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    if server.is_reference:
        assert answer == b""
    else:
        status = answer.split(b"\r\n", 1)[0]
        assert status.startswith(b"HTTP/1.1 4"), answer


async def test_any_request_path_and_an_origin_header_are_accepted(server: ServerHandle) -> None:
    async with connect(f"{server.url}/anything?x=1",
                       extra_headers=[(b"Origin", b"http://example.com")]) as client:
        await client.handshake()
        await client.assert_usable()


async def test_permessage_deflate_offer(server: ServerHandle) -> None:
    """Reference (oddity 1): the connection is dropped during the upgrade. trio-exec: the
    offer is accepted or declined, and the connection works either way."""
    async with open_raw(server.host, server.port, deflate=True) as raw:
        answer = await handshake_answer(raw)
        if server.is_reference:
            assert answer is None, answer
            return
        assert raw.accepted is not None, answer
        await raw.send(Message(data='{"id":1,"method":"bogus/x"}'))
        reply = await raw.wait_event(Message)
        assert reply is not None, "connection dropped"
        assert orjson.loads(reply.data) == not_implemented("bogus/x", 1)


async def test_client_close_frame_is_answered_with_a_close_frame(server: ServerHandle) -> None:
    """Reference (oddity 2): a client Close gets a bare TCP drop. trio-exec: a Close reply."""
    async with open_raw(server.host, server.port) as raw:
        assert await handshake_answer(raw) is raw.accepted is not None
        await raw.send(CloseConnection(code=1000, reason="bye"))
        answer = await raw.wait_event(CloseConnection)
        if server.is_reference:
            assert answer is None
        else:
            assert answer is not None and answer.code == 1000, answer
        await raw.wait_eof()


async def test_invalid_utf8_in_a_text_frame(server: ServerHandle) -> None:
    """Reference: TCP drop. trio-exec: Close 1007 (invalid frame payload data)."""
    async with open_raw(server.host, server.port) as raw:
        assert await handshake_answer(raw) is raw.accepted is not None
        await raw.send_bytes(masked_frame(0x1, b'{"id":1,"method":"\xff\xfe"}'))
        answer = await raw.wait_event(CloseConnection)
        if server.is_reference:
            assert answer is None
        else:
            assert answer is not None and answer.code == 1007, answer


def big_request(size: int) -> str:
    """A request of exactly ``size`` bytes for an unknown method."""
    head, tail = '{"id":1,"method":"bogus/x","params":{"pad":"', '"}}'
    return head + "x" * (size - len(head) - len(tail)) + tail


async def test_a_20_mib_message(server: ServerHandle) -> None:
    """Reference: frames over 16 MiB drop TCP. trio-exec: the default limit is 64 MiB."""
    async with connect(server.url) as client:
        await client.send_raw(big_request(20 * MIB), may_close=server.is_reference)
        if server.is_reference:
            reason = await client.wait_closed(within=30)
            assert reason.code == 1006
        else:
            assert await client.reply_for(1, within=30) == not_implemented("bogus/x", 1)


async def test_a_message_over_64_mib_is_closed_with_1009(server: ServerHandle) -> None:
    """Reference: TCP drop. trio-exec: Close 1009 (message too big)."""
    async with connect(server.url) as client:
        await client.send_raw(big_request(64 * MIB + 1), may_close=True)
        reason = await client.wait_closed(within=30)
        assert reason.code == (1006 if server.is_reference else 1009), reason
        assert client.pending_replies() == []


async def test_max_message_size_is_configurable(
    launch_server: Callable[..., ServerHandle],
) -> None:
    server = launch_server(TRIO_EXEC, "--max-message-size", "1000")
    async with connect(server.url) as client:
        await client.send_raw(big_request(1000))
        assert await client.reply_for(1) == not_implemented("bogus/x", 1)
        await client.send_raw(big_request(1001), may_close=True)
        reason = await client.wait_closed()
        assert reason.code == 1009, reason


async def test_tcp_nodelay_on_accepted_sockets(server: ServerHandle) -> None:
    """Reference: Nagle stays on (a response followed by a notification stalls ~40 ms).
    trio-exec: ``TCP_NODELAY`` on every accepted socket."""
    async with session(server.url) as client:
        await client.assert_usable()
        try:
            nodelay = sockets.server_socket_option(
                server.pid, server.port, client.ws.local.port,
                socket.IPPROTO_TCP, socket.TCP_NODELAY)
        except sockets.Unavailable as exc:
            pytest.skip(f"cannot inspect the server's socket: {exc}")
        assert bool(nodelay) is (not server.is_reference)


async def test_a_peer_that_stops_answering_pings_is_dropped(
    launch_server: Callable[..., ServerHandle],
) -> None:
    """trio-exec pings idle peers and drops one that does not answer, detaching its session."""
    server = launch_server(TRIO_EXEC, "--ping-interval", "0.2", "--ping-timeout", "0.5")
    async with open_raw(server.host, server.port) as raw:
        assert await handshake_answer(raw) is raw.accepted is not None
        await raw.send(Message(data='{"id":1,"method":"initialize","params":{"clientName":"c"}}'))
        reply = await raw.wait_event(Message)
        assert reply is not None
        session_id = orjson.loads(reply.data)["result"]["sessionId"]
        # never answer: read until the server gives up on us
        ping = await raw.wait_event(Ping, within=5)
        assert ping is not None, "no ping before the connection ended"
        with trio.fail_after(10):
            while not raw.eof and not any(isinstance(e, CloseConnection) for e in raw.events):
                await raw._receive_once()
    # the session was detached: a resume works (and is not a takeover of a live connection)
    async with connect(server.url) as client:
        reply = await client.request("initialize", {"clientName": "c",
                                                    "resumeSessionId": session_id})
        assert reply["result"]["sessionId"] == session_id


async def test_a_peer_that_answers_pings_stays_connected(
    launch_server: Callable[..., ServerHandle],
) -> None:
    server = launch_server(TRIO_EXEC, "--ping-interval", "0.2", "--ping-timeout", "0.5")
    async with open_raw(server.host, server.port) as raw:
        assert await handshake_answer(raw) is raw.accepted is not None
        for _ in range(5):  # five ping rounds, about a second
            ping = await raw.wait_event(Ping, within=5)
            assert ping is not None, "connection ended"
            await raw.send(ping.response())
        await raw.send(Message(data='{"id":1,"method":"bogus/x"}'))
        reply = await raw.wait_event(Message)
        assert reply is not None and orjson.loads(reply.data) == not_implemented("bogus/x", 1)
