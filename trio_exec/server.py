"""The daemon: listeners, the session registry, connections, graceful shutdown.

Ownership tree:

    serve()
    └─ root nursery
       ├─ registry nursery ........ sessions, each with its processes (outlives connections)
       └─ connection nursery ...... the accept loop, one task per connection

Shutdown (`Daemon.stop()`, or SIGTERM/SIGINT under `run_daemon`): stop accepting, close every
connection with Close 1001, then end the registry, which kills and reaps every process of every
session, attached or parked. A second signal exits at once, after SIGKILLing every process group.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

import attrs
import trio

from trio_exec import systemd
from trio_exec.config import Config, ConfigError, ListenAddress
from trio_exec.fs.local import LocalFilesystem
from trio_exec.listen import bound_address, open_listening
from trio_exec.metrics import DaemonMetrics
from trio_exec.rpc import host_methods
from trio_exec.rpc.connection import CLOSE_TIMEOUT, Connection, ConnectionConfig
from trio_exec.session.registry import SessionRegistry
from trio_exec.ws.frontdoor import FrontDoorConfig, accept_websocket, send_missing_close

log = logging.getLogger(__name__)

#: How long the start waits for the host identity lookup before serving anyway.
IDENTITY_LOOKUP_TIMEOUT = 5.0


@attrs.define(eq=False)
class Daemon:
    """Invariant: `_connections` holds exactly the connections being served."""

    config: Config
    registry: SessionRegistry = attrs.field(init=False)
    fs: LocalFilesystem = attrs.field(factory=LocalFilesystem)
    address: ListenAddress | None = None
    _connections: set[Connection] = attrs.field(factory=set)
    #: One scope per peer still in the front door (HTTP head, WebSocket handshake).
    _handshakes: set[trio.CancelScope] = attrs.field(factory=set)
    _stop: trio.Event = attrs.field(factory=trio.Event)
    #: This daemon's own metrics (`GET /metrics`).
    metrics: DaemonMetrics = attrs.field(factory=DaemonMetrics)

    _front: FrontDoorConfig = attrs.field(init=False)
    _conn_config: ConnectionConfig = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.registry = SessionRegistry(
            ttl=self.config.session_ttl, retention=self.config.retention, events=self.metrics
        )
        self.metrics.watch(self.registry)
        self.reconfigure(self.config)

    def reconfigure(self, config: Config) -> None:
        """Apply `config` live (a reload): the token, the message and read-pause limits and the
        ping timers for connections accepted from now on; the TTL for sessions created from now
        on; the retention for processes started from now on. The listen address is not changed."""
        self.config = config
        self.registry.ttl = config.session_ttl
        self.registry.retention = config.retention
        self._front = FrontDoorConfig(
            max_message_size=config.max_message_size, auth_token=config.auth_token,
            routes={"/metrics": self.metrics.exposition},
        )
        self._conn_config = ConnectionConfig(
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            read_pause_requests=config.read_pause_requests,
            read_pause_bytes=config.read_pause_bytes,
        )

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def run(
        self,
        listeners: list[trio.SocketListener],
        *,
        task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve `listeners` (none at all for a daemon fed by `handle_stream`) until `stop()`.
        Cancellation: like `stop()` without the grace: every process is killed and reaped."""
        self.address = bound_address(listeners[0]) if listeners else None
        # the host's identity (a user lookup) once, off the loop, before the first initialize;
        # a lookup that fails or hangs is no reason not to serve (initialize retries it)
        with contextlib.suppress(Exception), trio.move_on_after(IDENTITY_LOOKUP_TIMEOUT):
            await trio.to_thread.run_sync(host_methods.environment_info, abandon_on_cancel=True)
        async with trio.open_nursery() as root:
            await root.start(self.registry.run)
            async with trio.open_nursery() as connections:
                accepting = trio.CancelScope()

                async def accept_loop() -> None:
                    with accepting:
                        await trio.serve_listeners(
                            self.handle_stream,
                            listeners,
                            handler_nursery=connections,
                        )

                if listeners:
                    connections.start_soon(accept_loop)
                if self.address is not None:
                    log.info("listening on %s", self.address.url)
                task_status.started(self.address)
                await self._stop.wait()
                log.info("shutting down: %d connections, %d sessions",
                         len(self._connections), len(self.registry))
                accepting.cancel()
                for listener in listeners:
                    await listener.aclose()
                for handshake in list(self._handshakes):
                    handshake.cancel()  # a peer that never finished its upgrade waits for nothing
                for connection in list(self._connections):
                    connection.shutdown()
                connections.cancel_scope.deadline = trio.current_time() + self.config.shutdown_grace
            root.cancel_scope.cancel()
        log.info("stopped")

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """One accepted connection (a TCP socket, or an in-memory stream in tests). Nothing
        raised here may end the daemon."""
        try:
            async with trio.open_nursery() as ws_tasks:
                try:
                    upgraded = None
                    handshake = trio.CancelScope()
                    self._handshakes.add(handshake)
                    try:
                        with handshake:
                            upgraded = await accept_websocket(stream, ws_tasks, self._front)
                    finally:
                        self._handshakes.discard(handshake)
                    if upgraded is not None and self.stopping:
                        # upgraded just as the shutdown went by: a Close, not a session
                        with trio.move_on_after(CLOSE_TIMEOUT):
                            await upgraded.ws.aclose(1001, "server shutting down")
                    elif upgraded is not None:
                        connection = Connection(
                            upgraded.ws, upgraded.frames, self.registry, self.fs,
                            self._conn_config, events=self.metrics,
                        )
                        self._connections.add(connection)
                        self.metrics.connection_opened()
                        log.info("%s connected from %s", connection.label, _peer(stream))
                        try:
                            await connection.serve()
                        finally:
                            self._connections.discard(connection)
                            self.metrics.connection_closed()
                        if not upgraded.frames.torn:  # never a Close inside a torn frame
                            await send_missing_close(upgraded.ws, stream)
                finally:
                    ws_tasks.cancel_scope.cancel()
                    with trio.CancelScope(shield=True):
                        await stream.aclose()
        except Exception:
            log.exception("connection handler failed")

    def kill_everything_now(self) -> None:
        """The second signal: SIGKILL every process group the daemon started, synchronously."""
        for session in self.registry.sessions():
            session.processes.kill_every_group()


def _peer(stream: trio.abc.Stream) -> str:
    """The peer's address of a socket stream (`in-memory` for others)."""
    try:
        host, port, *_ = stream.socket.getpeername()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return "in-memory"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_listeners(config: Config) -> list[trio.SocketListener]:
    """systemd's activation sockets when present, else one per address of `config.listen`."""
    return (await open_listening(config)).listeners


async def serve(
    config: Config, *, task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Embeddable: `address = await nursery.start(serve, config)`. Runs until cancelled;
    cancellation kills and reaps every process of every session."""
    listeners = await open_listeners(config)
    daemon = Daemon(config)
    await daemon.run(listeners, task_status=task_status)


async def run_daemon(config: Config, *, reload: Callable[[], Config] | None = None) -> None:
    """The CLI's daemon: `serve` plus signal handling, the URL on stdout, systemd notifications
    (READY, STOPPING, RELOADING, and WATCHDOG at half the watchdog timeout). SIGHUP calls
    `reload` and applies the settings it returns (`Daemon.reconfigure`); one it refuses with a
    `ConfigError` is logged and the current settings stay. Raises `ListenError` when it cannot
    listen."""
    listening = await open_listening(config)
    watchdog_period = systemd.watchdog_period()
    notify_socket = systemd.scrub_environment()
    daemon = Daemon(config)
    watched = (signal.SIGTERM, signal.SIGINT, *((signal.SIGHUP,) if reload else ()))
    with trio.open_signal_receiver(*watched) as signals:
        async with trio.open_nursery() as nursery:

            async def run_then_stop_watching(
                *, task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED
            ) -> None:
                await daemon.run(listening.listeners, task_status=task_status)
                nursery.cancel_scope.cancel()

            async def watch_signals() -> None:
                async for signum in signals:
                    if signum == signal.SIGHUP and reload is not None:
                        _reload(daemon, reload, notify_socket)
                    elif not daemon.stopping:
                        log.info("signal %s: graceful shutdown", signal.Signals(signum).name)
                        systemd.notify(notify_socket, "STOPPING=1")
                        daemon.stop()
                    else:
                        log.warning("second signal: exiting now")
                        daemon.kill_everything_now()
                        os._exit(1)

            async def feed_watchdog(period: float) -> None:
                while True:
                    systemd.notify(notify_socket, "WATCHDOG=1")
                    await trio.sleep(period)

            nursery.start_soon(watch_signals)
            await nursery.start(run_then_stop_watching)
            if watchdog_period is not None:
                nursery.start_soon(feed_watchdog, watchdog_period)
            address = listening.address  # a --listen host name stays a name
            print(address.url, flush=True)
            systemd.notify(notify_socket, f"READY=1\nSTATUS=listening on {address.url}")


def _reload(daemon: Daemon, reload: Callable[[], Config], notify_socket: str | None) -> None:
    systemd.notify(notify_socket, f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
    try:
        daemon.reconfigure(reload())
    except ConfigError as exc:
        log.error("reload refused, the current settings stay: %s", exc)
    systemd.notify(notify_socket, "READY=1")
