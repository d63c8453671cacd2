"""How the client reaches a server: a `Connector` opens one connection in a given nursery: a
WebSocket, or (`command_connector`, `--via`) a command speaking one JSON message per line on
its stdin and stdout, such as `ssh devbox trio-exec serve --listen stdio`.

Rule: the client never opens sockets itself; it calls its connector once per connection
attempt (the first one and every reconnect), so the same client runs over TCP, TLS, or any trio
Stream (an in-memory pair in tests). Connectors never offer permessage-deflate (the reference
server drops such connections) and accept large messages (a 512 MiB `fs/readFile` in base64).
The stream is closed when the nursery given to the connector ends: trio-websocket closes it
only when our side closes first, so a connection the server closed (1001, 1009, 4000, or a
plain EOF) would otherwise keep its socket open until garbage collection.

A command is started in its own process group (as the codex client starts an exec-server
child), with our stderr as its stderr. When the connection's nursery ends, its stdin is
closed (a stdio server's cue to kill its processes and exit); a command still running
`COMMAND_EXIT_TIMEOUT` seconds later gets SIGTERM on its group, and SIGKILL as long again
after; it is always reaped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import trio
import trio_websocket

from trio_exec.jsonrpc.lines import LineMessages
from trio_exec.jsonrpc.stream import MessageStream

#: Largest inbound message: a 512 MiB file in base64 plus the envelope.
MAX_MESSAGE_SIZE = 1024 * 1024 * 1024
MESSAGE_QUEUE = 16
RECEIVE_BUFFER = 256 * 1024

#: How long a `--via` command may take to exit after its stdin closed, before SIGTERM.
COMMAND_EXIT_TIMEOUT = 5.0

Connector = Callable[
    [trio.Nursery], Awaitable[trio_websocket.WebSocketConnection | MessageStream]
]


class BadUrl(ValueError):
    """Not a `ws://` or `wss://` URL."""


def _headers(auth_token: str | None) -> list[tuple[bytes, bytes]]:
    if auth_token is None:
        return []
    return [(b"Authorization", f"Bearer {auth_token}".encode())]


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise BadUrl(f"not a WebSocket URL: {url!r} (expected ws://HOST:PORT or wss://HOST:PORT)")


def client_tls_context(ca_file: str | None = None) -> ssl.SSLContext:
    """The context `wss://` is verified with: the certificate must chain to a trusted CA and
    name the URL's host. Trusted: the CAs in `ca_file` when given, else the system store,
    which OpenSSL lets `SSL_CERT_FILE` / `SSL_CERT_DIR` replace (as the codex client does)."""
    return ssl.create_default_context(cafile=ca_file)


def url_connector(
    url: str,
    *,
    auth_token: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    ca_file: str | None = None,
) -> Connector:
    """Connect to `url` (`ws://` or `wss://`), sending `Authorization: Bearer` when given.
    `wss://` is verified with `ssl_context`, else `client_tls_context(ca_file)`. The TCP (and
    TLS) stream is opened here, so it is closed on every failure, including a rejected upgrade
    (HTTP 401)."""
    check_url(url)
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    if secure and ssl_context is None:
        ssl_context = client_tls_context(ca_file)
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host_name = f"[{host}]" if ":" in host else host
    host_header = host_name if parts.port is None else f"{host_name}:{port}"

    async def open_stream() -> trio.abc.Stream:
        stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
        if secure:
            assert ssl_context is not None
            secured = trio.SSLStream(
                stream, ssl_context, server_hostname=host, https_compatible=True
            )
            try:
                # here, not inside trio-websocket, which would take a refused certificate
                # for a peer that went quiet and wait out its handshake timeout
                await secured.do_handshake()
            except BaseException:
                await trio.aclose_forcefully(stream)
                raise
            stream = secured
        return stream

    return stream_connector(open_stream, host=host_header, resource=resource, auth_token=auth_token)


def stream_connector(
    open_stream: Callable[[], Awaitable[trio.abc.Stream]],
    *,
    host: str = "localhost",
    resource: str = "/",
    auth_token: str | None = None,
) -> Connector:
    """Speak WebSocket over whatever stream `open_stream()` returns (called per attempt)."""

    async def connect(nursery: trio.Nursery) -> trio_websocket.WebSocketConnection:
        stream: Any = await open_stream()
        try:
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                host,
                resource,
                extra_headers=_headers(auth_token),
                message_queue_size=MESSAGE_QUEUE,
                max_message_size=MAX_MESSAGE_SIZE,
                receive_buffer_size=RECEIVE_BUFFER,
            )
        except BaseException:
            with trio.CancelScope(shield=True):
                await stream.aclose()
            raise
        nursery.start_soon(_close_when_done, stream)
        return ws

    return connect


async def _close_when_done(stream: trio.abc.Stream) -> None:
    """Close `stream` when the connection's nursery is cancelled (never blocks on a dead peer).

    Cancellation: this is how it ends."""
    try:
        await trio.sleep_forever()
    finally:
        await trio.aclose_forcefully(stream)


def command_connector(command: Sequence[str]) -> Connector:
    """Start `command` per connection attempt and speak newline-delimited JSON on its stdin
    and stdout. Raises `OSError` when it cannot be started."""
    argv = list(command)
    if not argv:
        raise ValueError("empty --via command")

    async def connect(nursery: trio.Nursery) -> MessageStream:
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        assert process.stdin is not None and process.stdout is not None
        nursery.start_soon(_end_command_when_done, process)
        return LineMessages(process.stdout, process.stdin, max_message_size=MAX_MESSAGE_SIZE)

    return connect


async def _end_command_when_done(process: trio.Process) -> None:
    """When the connection's nursery ends: close the command's stdin, wait for it to exit,
    then SIGTERM and SIGKILL its group if it does not. Cancellation: this is how it ends."""
    try:
        await trio.sleep_forever()
    finally:
        with trio.CancelScope(shield=True):
            assert process.stdin is not None
            await trio.aclose_forcefully(process.stdin)
            for signum in (None, signal.SIGTERM, signal.SIGKILL):
                if signum is not None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(process.pid, signum)
                with trio.move_on_after(COMMAND_EXIT_TIMEOUT):
                    await process.wait()
                    break
            if process.stdout is not None:
                await trio.aclose_forcefully(process.stdout)
