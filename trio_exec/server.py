"""The daemon: listeners, the session registry, connections, graceful shutdown.

Ownership tree:

    serve()
    └─ root nursery
       ├─ registry nursery ........ sessions, each with its processes (outlives connections)
       └─ connection nursery ...... the accept loop, one task per connection

Shutdown (`Daemon.stop()`, or SIGTERM/SIGINT under `run_daemon`): stop accepting, close every
connection with Close 1001, then end the registry, which kills and reaps every process of every
session, attached or parked. A second signal exits at once, after SIGKILLing every process group
(and every process's cgroup).

Reload (`Daemon.reload()`, SIGHUP under `run_daemon`): every callback in `Daemon.reloaders` runs
once, in order; connections and sessions are untouched.

Containment (`process/cgroup.py`) is detected when the daemon is made and stated in the log:
with a delegated cgroup v2 subtree every process gets a cgroup of its own, else the reason is
logged and teardown kills process groups alone. Per-process limits that cannot be enforced
raise `ContainmentError`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import attrs
import trio

from trio_exec import systemd
from trio_exec.config import Config, ConfigError, ListenAddress
from trio_exec.fs.local import LocalFilesystem
from trio_exec.jsonrpc.stream import MessageStream
from trio_exec.listen import bound_address, open_listening
from trio_exec.metrics import DaemonMetrics
from trio_exec.process import cgroup, heap
from trio_exec.process.daemonenv import inheritable_environment
from trio_exec.process.limits import ProcessQuota
from trio_exec.process.retention import RetentionBudget
from trio_exec.process.spool import SpoolDirectory
from trio_exec.rpc import host_methods
from trio_exec.rpc.connection import (
    CLOSE_TIMEOUT,
    Connection,
    ConnectionConfig,
    websocket_stream,
)
from trio_exec.session.registry import SessionRegistry
from trio_exec.ws.auth import (
    AuthSettingError,
    BearerAuth,
    parse_token_sha256,
    read_token_file,
    read_token_text,
    token_digest,
)
from trio_exec.ws.frontdoor import (
    ConnectionSlots,
    FrontDoorConfig,
    accept_websocket,
    send_missing_close,
)
from trio_exec.ws.tls import ServerTLS, TLSSettingError

log = logging.getLogger(__name__)

#: A reload callback (see `Daemon.reload`): re-reads one setting, returns a line saying what
#: changed (None: nothing to say); raises `ValueError` to keep the old value.
Reloader = Callable[[], str | None]

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

    #: What SIGHUP re-reads, in order (see `reload`); components append to it.
    reloaders: list[Reloader] = attrs.field(factory=list)

    _front: FrontDoorConfig = attrs.field(init=False)
    _conn_config: ConnectionConfig = attrs.field(init=False)
    _auth: BearerAuth | None = attrs.field(init=False, default=None)
    _tls: ServerTLS | None = attrs.field(init=False, default=None)
    #: The connection slots (`--max-connections`), kept across reloads.
    _slots: ConnectionSlots = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        """Raises `ConfigError` for a token or certificate that cannot be used, and
        `ContainmentError` for per-process limits that cannot be enforced."""
        try:
            self._auth = bearer_auth(self.config)
            if self.config.tls_cert_file is not None and self.config.tls_key_file is not None:
                self._tls = ServerTLS(self.config.tls_cert_file, self.config.tls_key_file)
        except (AuthSettingError, TLSSettingError) as exc:
            raise ConfigError(str(exc)) from None
        if self._auth is not None and self._auth.token_file is not None:
            self.reloaders.append(self._reload_token)
        if self._tls is not None:
            self.reloaders.append(self._reload_certificate)
        limits = cgroup.Limits(memory_max=self.config.process_memory_max,
                               pids_max=self.config.process_pids_max)
        detection = cgroup.detect(limits)
        if detection.containment is not None:
            log.info("containment on: each process in a cgroup of its own under %s",
                     detection.containment.root)
        else:
            log.info("containment off (%s): teardown kills process groups only", detection.reason)
        if not heap.available:
            log.info("heap trimming off (not glibc): freed output memory may stay resident")
        config = self.config
        quota = ProcessQuota(
            spool=_prepare_spool(config),
            per_session=config.max_processes_per_session,
            total=config.max_processes,
            budget=RetentionBudget(config.max_retained_bytes),
            inheritable_env=inheritable_environment(os.environ, _token_texts(config)),
        )
        self.registry = SessionRegistry(
            ttl=config.session_ttl,
            retention=config.retention,
            max_sessions=config.max_sessions,
            quota=quota,
            containment=detection.containment,
            events=self.metrics,
        )
        self.metrics.watch(self.registry)
        self._slots = ConnectionSlots(config.max_connections)
        self.reconfigure(config)

    def reconfigure(self, config: Config) -> None:
        """Apply `config` live (a reload): the message and read-pause limits, the pending-request
        limit and the ping timers for connections accepted from now on; the TTL for sessions
        created from now on; the retention for processes started from now on. The listen
        address, the token (re-read from its file by `reload`), TLS, containment and the
        process and session limits are not changed."""
        self.config = config
        self.registry.ttl = config.session_ttl
        self.registry.retention = config.retention
        self._front = FrontDoorConfig(
            max_message_size=config.max_message_size,
            auth=self._auth,
            slots=self._slots,
            routes={"/metrics": self.metrics.exposition},
        )
        self._conn_config = ConnectionConfig(
            ping_interval=config.ping_interval,
            ping_timeout=config.ping_timeout,
            read_pause_requests=config.read_pause_requests,
            read_pause_bytes=config.read_pause_bytes,
            max_pending_requests=config.max_pending_requests,
        )

    def stop(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        """Re-read what can change while serving (SIGHUP), without touching connections.

        The hook others extend: `reloaders` is a list of callbacks owned by the daemon; a
        component whose settings can change live appends one. Each takes no argument, runs
        quickly on the event loop (small local files only, never the network), re-reads its
        setting and returns a line saying what changed, or None. One that raises `ValueError`
        (its `str` naming the setting, never a secret) keeps its old value; the error is logged
        and the callbacks after it still run."""
        for reloader in self.reloaders:
            try:
                changed = reloader()
            except ValueError as exc:
                log.warning("reload: %s; keeping the current setting", exc)
                continue
            if changed:
                log.warning("reload: %s", changed)  # at the level of the other reload lines
        log.info("reload done")

    def _reload_token(self) -> str:
        assert self._auth is not None
        changed = self._auth.reload()
        return f"--auth-token-file re-read, token {'changed' if changed else 'unchanged'}"

    def _reload_certificate(self) -> str:
        assert self._tls is not None
        fingerprint = self._tls.reload()
        return f"--tls-cert re-read, serving the certificate with SHA-256 {fingerprint}"

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
        self.address = (
            bound_address(listeners[0], tls=self.config.listen.tls) if listeners else None
        )
        # the host's identity (a user lookup) once, off the loop, before the first initialize;
        # a lookup that fails or hangs is no reason not to serve (initialize retries it)
        with contextlib.suppress(Exception), trio.move_on_after(IDENTITY_LOOKUP_TIMEOUT):
            await trio.to_thread.run_sync(host_methods.environment_info, abandon_on_cancel=True)
        async with trio.open_nursery() as root:
            await root.start(self.registry.run)
            root.start_soon(self.registry.quota.heap.run)
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
                            secured = await self._secure(stream)
                            if secured is not None:
                                stream = secured
                                upgraded = await accept_websocket(stream, ws_tasks, self._front)
                    finally:
                        self._handshakes.discard(handshake)
                    if upgraded is not None and self.stopping:
                        # upgraded just as the shutdown went by: a Close, not a session
                        upgraded.release()
                        with trio.move_on_after(CLOSE_TIMEOUT):
                            await upgraded.ws.aclose(1001, "server shutting down")
                    elif upgraded is not None:
                        try:
                            await self.serve_connection(
                                websocket_stream(upgraded.ws, upgraded.frames), _peer(stream))
                        finally:
                            upgraded.release()
                        if not upgraded.frames.torn:  # never a Close inside a torn frame
                            await send_missing_close(upgraded.ws, stream)
                finally:
                    ws_tasks.cancel_scope.cancel()
                    # bounded: a TLS stream sends close_notify, which a peer that reads
                    # nothing could block (cancelled, it closes the socket at once)
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT):
                        await stream.aclose()
        except Exception:
            log.exception("connection handler failed")

    async def serve_connection(self, stream: MessageStream, peer: str = "stdio") -> None:
        """Serve one connection over `stream` until it ends (its session is then parked)."""
        connection = Connection(
            stream, self.registry, self.fs, self._conn_config, events=self.metrics
        )
        self._connections.add(connection)
        self.metrics.connection_opened()
        log.info("%s connected from %s", connection.label, peer)
        try:
            await connection.serve()
        finally:
            self._connections.discard(connection)
            self.metrics.connection_closed()

    async def _secure(self, stream: trio.abc.Stream) -> trio.abc.Stream | None:
        """`stream` itself without TLS; with TLS, `stream` after a successful handshake, or
        None (logged by `ServerTLS.accept`)."""
        if self._tls is None:
            return stream
        return await self._tls.accept(stream, _peer(stream))

    def kill_everything_now(self) -> None:
        """The second signal: SIGKILL every process group the daemon started, synchronously."""
        for session in self.registry.sessions():
            session.processes.kill_every_group()


def _token_texts(config: Config) -> list[str]:
    """The token as text, where the daemon has it (not with `--auth-token-sha256`): children
    never inherit a variable that holds it (`process/daemonenv.py`)."""
    if config.auth_token is not None:
        return [config.auth_token]
    if config.auth_token_file is not None:
        return [read_token_text(config.auth_token_file)]
    return []


def bearer_auth(config: Config) -> BearerAuth | None:
    """The token check `config` asks for. Raises `AuthSettingError`."""
    if config.auth_token_sha256 is not None:
        return BearerAuth(parse_token_sha256(config.auth_token_sha256))
    if config.auth_token is not None:
        return BearerAuth(token_digest(config.auth_token), token_file=config.auth_token_file)
    if config.auth_token_file is not None:
        return BearerAuth(read_token_file(config.auth_token_file), token_file=config.auth_token_file)
    return None


def _peer(stream: trio.abc.Stream) -> str:
    """The peer's address for a log line."""
    sock = getattr(stream, "socket", None)
    try:
        host, port, *_ = sock.getpeername() if sock is not None else ("a peer", 0)
    except OSError:
        return "a peer"
    return f"{host}:{port}"


async def open_listeners(config: Config) -> list[trio.SocketListener]:
    """systemd's activation sockets when present, else one per address of `config.listen`."""
    return (await open_listening(config)).listeners


async def serve(
    config: Config, *, task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED
) -> None:
    """Embeddable: `address = await nursery.start(serve, config)`. Runs until cancelled;
    cancellation kills and reaps every process of every session."""
    daemon = Daemon(config)
    listeners = await open_listeners(config)
    await daemon.run(listeners, task_status=task_status)


async def run_daemon(config: Config, *, reload: Callable[[], Config] | None = None) -> None:
    """The CLI's daemon: `serve` plus signal handling, the URL on stdout, systemd notifications.
    SIGHUP re-reads the token and certificate files (`Daemon.reload`) and, given `reload`, the
    settings it returns (`Daemon.reconfigure`; one it refuses with a `ConfigError` is logged and
    the current settings stay); READY, STOPPING, RELOADING and WATCHDOG (at half the watchdog
    timeout) go to systemd. Raises `ListenError` when it cannot listen, `ConfigError`
    for a setting that cannot work (a token, a certificate, an exposed address without a token)."""
    daemon = Daemon(config)
    listening = await open_listening(config)
    watchdog_period = systemd.watchdog_period()
    notify_socket = systemd.scrub_environment()
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async with trio.open_nursery() as nursery:

            async def run_then_stop_watching(
                *, task_status: trio.TaskStatus[ListenAddress | None] = trio.TASK_STATUS_IGNORED
            ) -> None:
                await daemon.run(listening.listeners, task_status=task_status)
                nursery.cancel_scope.cancel()

            async def watch_signals() -> None:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        if not daemon.stopping:
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


def _reload(
    daemon: Daemon, reload: Callable[[], Config] | None, notify_socket: str | None
) -> None:
    systemd.notify(notify_socket, f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
    daemon.reload()  # the token and certificate files
    if reload is not None:  # the settings (the config file, the flags still winning)
        try:
            daemon.reconfigure(reload())
        except ConfigError as exc:
            log.error("reload refused, the current settings stay: %s", exc)
    systemd.notify(notify_socket, "READY=1")


def _prepare_spool(config: Config) -> SpoolDirectory | None:
    """The output spool of `--output-spool-dir`, its directory made and its stale files gone;
    a directory that cannot be used is a `ConfigError` naming the setting."""
    if config.output_spool_dir is None:
        log.info("output spool off: output older than a process's ring is lost")
        return None
    spool = SpoolDirectory(Path(config.output_spool_dir),
                           process_bytes=config.output_spool_process_bytes,
                           total_bytes=config.output_spool_total_bytes)
    try:
        removed = spool.prepare()
    except OSError as exc:
        raise ConfigError(
            f"--output-spool-dir {config.output_spool_dir}: {exc.strerror or exc}") from None
    log.info("output spool on in %s (%d stale files removed)", spool.path, removed)
    return spool
