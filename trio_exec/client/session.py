"""The client's connection supervisor: connect, handshake, and recover from drops.

Rules:
- The first connection and handshake must succeed, else `open_client` raises `ConnectFailed`.
- After a drop, with a `ReconnectPolicy`, the supervisor reconnects with exponential backoff
  and resumes with `initialize {resumeSessionId}`. While it does, calls wait for the new link
  (never for longer than the policy's `give_up_after`); then every live process is marked
  stale and caught up with `process/read afterSeq`, because the server drops notifications
  while a session is parked and never replays them.
- `unknown session id` at resume time: the session expired; every process of it fails with
  `ProcessLost` and the client continues on a fresh session. `already attached`: the server
  has not noticed the old connection die yet; retried with backoff. Close code 4000 (another
  connection took the session over) and running out of time are final: every pending call and
  live process fails with `ConnectionLost`.
- The server going away is said at once, not after the window: when the drop was its Close
  1001 (shutting down), or a reconnect attempt is refused, `on_server_down` is called (at most
  once per drop) with the cause and the seconds left; the final `ConnectionLost` names the
  cause of the drop and the last attempt's failure.
- Without a policy the first drop is final.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import attrs
import trio
import trio_websocket

from trio_exec.client.connect import Connector
from trio_exec.client.errors import ConnectFailed, ConnectionLost, ProcessLost
from trio_exec.client.link import Link, LinkLost, Tap
from trio_exec.proto import errors, methods
from trio_exec.proto.convert import CONVERTER, unstructure
from trio_exec.proto.errors import RpcError
from trio_exec.proto.session_messages import InitializeParams, InitializeResult

log = logging.getLogger(__name__)

TAKEOVER_CLOSE_CODE = 4000
GOING_AWAY_CLOSE_CODE = 1001
ALREADY_ATTACHED_SUFFIX = "is already attached to another connection"

CONNECT_ERRORS = (
    OSError,
    trio_websocket.HandshakeError,
    trio_websocket.ConnectionClosed,
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    LinkLost,
    RpcError,
)


@attrs.frozen(kw_only=True)
class ReconnectPolicy:
    """Backoff: the first retry is immediate, then `initial_delay` doubling up to
    `max_delay`; the client gives up `give_up_after` seconds after the drop (keep it below
    the server's session TTL, 30 s by default, 10 s for the reference)."""

    initial_delay: float = 0.05
    max_delay: float = 2.0
    give_up_after: float = 25.0
    connect_timeout: float = 10.0


#: Told that the server itself went away: (the cause, seconds left to reconnect).
ServerDown = Callable[[str, float], None]


@attrs.define(eq=False)
class Supervisor:
    """Invariant: `link` is the current live, initialized link or None; `changed` is replaced
    (and the old one set) whenever `link` or `fatal` changes."""

    connector: Connector
    target: str
    client_name: str
    policy: ReconnectPolicy | None
    on_notification: Callable[[str, Any], None]
    on_resumed: Callable[[], None]
    on_session_lost: Callable[[ProcessLost], None]
    on_fatal: Callable[[ConnectionLost], None]
    ping_interval: float | None = 20.0
    ping_timeout: float = 20.0
    tap: Tap | None = None
    max_message_size: int | None = None
    on_server_down: ServerDown | None = None
    link: Link | None = None
    session_id: str | None = None
    initialize_result: InitializeResult | None = None
    fatal: ConnectionLost | None = None
    changed: trio.Event = attrs.field(factory=trio.Event)
    connections: int = 0
    _closing: bool = False

    def _set_link(self, link: Link | None) -> None:
        self.link = link
        self.changed.set()
        self.changed = trio.Event()

    def _set_fatal(self, error: ConnectionLost) -> None:
        self.fatal = error
        self._set_link(None)
        self.on_fatal(error)

    async def aclose(self) -> None:
        """Fail what is pending, close the socket (Close 1000, bounded wait)."""
        self._closing = True
        link = self.link
        if self.fatal is None:
            self._set_fatal(ConnectionLost("the client was closed"))
        if link is not None:
            link.kill("client closed")
            await link.finished.wait()

    async def current_link(self) -> Link:
        """The live link, waiting through a reconnect. Raises the final `ConnectionLost`."""
        while True:
            if self.fatal is not None:
                raise self.fatal
            link = self.link
            if link is not None and not link.dead.is_set():
                return link
            changed = self.changed
            await changed.wait()

    async def run(
        self, nursery: trio.Nursery, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Own the links until the client closes or recovery is impossible."""
        try:
            link = await nursery.start(self._serve_link, None)
        except CONNECT_ERRORS as exc:
            raise ConnectFailed(f"cannot connect to {self.target}: {_describe(exc)}") from exc
        self._set_link(link)
        task_status.started()
        while True:
            await link.dead.wait()
            self._set_link(None)
            if self._closing:
                return
            if link.close_code == TAKEOVER_CLOSE_CODE:
                self._set_fatal(ConnectionLost("the session was resumed by another connection"))
                return
            if self.policy is None:
                self._set_fatal(ConnectionLost(f"connection to the exec-server lost: {link.reason}"))
                return
            log.info("connection lost (%s); reconnecting", link.reason)
            recovered = await self._reconnect(nursery, link)
            if recovered is None:
                return
            link = recovered
            self._set_link(link)
            self.on_resumed()

    async def _reconnect(self, nursery: trio.Nursery, lost: Link) -> Link | None:
        assert self.policy is not None
        give_up_at = trio.current_time() + self.policy.give_up_after
        cause = lost.reason
        server_down = False

        def announce(why: str) -> None:
            nonlocal cause, server_down
            cause, server_down = why, True
            if self.on_server_down is not None:
                self.on_server_down(why, max(0.0, give_up_at - trio.current_time()))

        if lost.close_code == GOING_AWAY_CLOSE_CODE:
            announce("server shutting down (Close 1001)")
        last_attempt: str | None = None
        delay = 0.0
        while True:
            if delay:
                await trio.sleep(min(delay, max(0.0, give_up_at - trio.current_time())))
            if trio.current_time() >= give_up_at:
                tried = f" (last attempt: {last_attempt})" if last_attempt else ""
                self._set_fatal(ConnectionLost(
                    f"connection to the exec-server lost: {cause}; not recovered within "
                    f"{self.policy.give_up_after:g}s{tried}"
                ))
                return None
            delay = min(max(delay * 2, self.policy.initial_delay), self.policy.max_delay)
            try:
                with trio.move_on_at(give_up_at):  # an attempt never outlives the policy
                    link: Link = await nursery.start(self._serve_link, self.session_id)
                    return link
                last_attempt = "the reconnect attempt ran out of time"
            except RpcError as exc:
                if exc.message == errors.unknown_session(self.session_id or "").message:
                    expired = ProcessLost(
                        f"session {self.session_id} expired while disconnected ({cause})"
                    )
                    log.warning("%s", expired)
                    self.session_id = None
                    self.on_session_lost(expired)
                    delay = 0.0
                elif not exc.message.endswith(ALREADY_ATTACHED_SUFFIX):
                    self._set_fatal(ConnectionLost(f"cannot resume the session: {exc.message}"))
                    return None
                last_attempt = exc.message
            except CONNECT_ERRORS as exc:
                last_attempt = _describe(exc)
                log.info("reconnect attempt failed: %s", last_attempt)
                if not server_down and _refused(exc):
                    announce(f"server not accepting connections ({last_attempt})")

    async def _serve_link(
        self, resume: str | None, *, task_status: trio.TaskStatus[Link] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """One connection: connect, handshake, report the link, serve it until it dies. A
        failure before the report is raised (unwrapped) to the caller of `nursery.start`."""
        failure: BaseException | None = None
        started = False
        try:
            async with trio.open_nursery() as nursery:
                try:
                    link = await self._connect(nursery)
                    await nursery.start(link.run)
                    try:
                        timeout = self._connect_timeout()
                        with trio.move_on_after(timeout) as waited:
                            await self._handshake(link, resume)
                        if waited.cancelled_caught:
                            raise TimeoutError(f"no initialize reply within {timeout}s")
                    except BaseException:
                        link.kill("handshake failed")
                        raise
                except CONNECT_ERRORS as exc:
                    failure = exc
                    nursery.cancel_scope.cancel()
                else:
                    self.connections += 1
                    started = True
                    task_status.started(link)
                    await link.finished.wait()  # the close handshake needs trio-websocket's reader
                    nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # trio-websocket raises a rejected upgrade (HTTP 401, ...) from its reader task
            if started:
                raise
            matched, rest = group.split(CONNECT_ERRORS)
            if matched is None or rest is not None:
                raise
            failure = _first_leaf(matched)
        if failure is not None:
            raise failure

    def _connect_timeout(self) -> float:
        return self.policy.connect_timeout if self.policy else ReconnectPolicy().connect_timeout

    async def _connect(self, nursery: trio.Nursery) -> Link:
        timeout = self._connect_timeout()
        with trio.move_on_after(timeout):
            ws = await self.connector(nursery)
            return Link(
                ws,
                self.on_notification,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                tap=self.tap,
                max_message_size=self.max_message_size,
            )
        raise TimeoutError(f"no WebSocket handshake within {timeout}s")

    async def _handshake(self, link: Link, resume: str | None) -> None:
        params = InitializeParams(client_name=self.client_name, resume_session_id=resume)
        raw = await link.request(methods.INITIALIZE, unstructure(params))
        result = CONVERTER.structure(raw, InitializeResult)
        await link.notify(methods.INITIALIZED, {})
        self.session_id = result.session_id
        self.initialize_result = result


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _os_error(exc: BaseException) -> BaseException:
    """A connect failure's own OS error (trio hides it in the cause of its summary)."""
    cause = exc.__cause__
    if isinstance(exc, OSError) and not exc.strerror and isinstance(cause, BaseExceptionGroup):
        return cause.exceptions[0]
    return exc


def _refused(exc: BaseException) -> bool:
    """Nothing listens at the address: the server is not running (not a network failure)."""
    return isinstance(_os_error(exc), ConnectionRefusedError)


def _describe(exc: BaseException) -> str:
    """A short reason: the OS text of a connect failure, or the upgrade's HTTP status."""
    if isinstance(exc, trio_websocket.ConnectionRejected):
        return f"the server refused the upgrade: HTTP {exc.status_code}"
    if isinstance(exc, LinkLost):
        return exc.reason
    if isinstance(exc, trio.BrokenResourceError) and isinstance(exc.__cause__, ssl.SSLError):
        return f"TLS handshake failed: {exc.__cause__}"  # e.g. CERTIFICATE_VERIFY_FAILED
    exc = _os_error(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
