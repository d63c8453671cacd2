"""The daemon's listening sockets: systemd's, or fresh ones for `--listen`.

Rules:
- Under socket activation the sockets systemd passed are served as they are; `--listen` is
  not used.
- Otherwise the host is resolved and every address it resolves to is bound, all on one port
  (`localhost` may be 127.0.0.1 and ::1): port 0 binds the first address on a port the kernel
  picks and the others on that same port, so one URL reaches them all.
- An address this host cannot use (its family unsupported, or not configured here) is
  skipped while another one binds. A name that does not resolve, or an address that cannot be
  bound, is a `ListenError`: one line naming the address. Nothing stays open after an error.
- The address to announce keeps a host name as given (what a user pastes) with the bound
  port; an IP, or an activated socket, is announced as bound; `wss://` when TLS is on.
- What is bound, activated sockets included, passes `exposure.check_exposure` (no token on a
  non-loopback address is refused) before anything is served; a refusal closes every socket.
"""

from __future__ import annotations

import errno
import logging
import socket

import attrs
import trio

from trio_exec import systemd
from trio_exec.config import Config, ListenAddress
from trio_exec.exposure import check_exposure
from trio_exec.proto.errors import os_error_text

log = logging.getLogger(__name__)

#: bind() errors meaning "not an address of this host" rather than "this address is taken".
_UNUSABLE_HERE = frozenset({errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL})


class ListenError(OSError):
    """The daemon cannot listen where it was asked; `str(err)` is the line for stderr."""


@attrs.frozen
class Listening:
    listeners: list[trio.SocketListener]
    #: Where clients reach the daemon (see the module rules).
    address: ListenAddress


async def open_listening(config: Config) -> Listening:
    """Listeners for `config.listen`, or systemd's. Raises `ListenError`, or `ConfigError`
    when the exposure check refuses what was bound."""
    activated = systemd.take_activation_sockets()
    if activated:
        listeners = [trio.SocketListener(trio.socket.from_stdlib_socket(s)) for s in activated]
    else:
        listeners = await bind_every_address(config.listen)
    try:
        check_exposure(
            [bound_address(listener) for listener in listeners],
            authenticated=config.authenticated,
            allow_unauthenticated=config.allow_unauthenticated,
        )
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    bound = bound_address(listeners[0], tls=config.listen.tls)
    if config.listen.is_name and not activated:
        bound = attrs.evolve(bound, host=config.listen.host)
    return Listening(listeners, bound)


async def bind_every_address(requested: ListenAddress) -> list[trio.SocketListener]:
    """One listener per address `requested.host` resolves to, all on the same port."""
    try:
        resolved = await trio.socket.getaddrinfo(
            requested.host, requested.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise ListenError(
            f"cannot resolve the host of --listen `{requested.url}`: {exc.strerror}"
        ) from None
    hosts = list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in resolved))
    listeners: list[trio.SocketListener] = []
    unusable: list[ListenError] = []
    port = requested.port
    try:
        for host in hosts:
            try:
                listeners += await trio.open_tcp_listeners(port, host=host)
            except OSError as exc:
                failure = ListenError(
                    f"cannot listen on {ListenAddress(host=host, port=port).url}: "
                    f"{os_error_text(exc)}"
                )
                if exc.errno not in _UNUSABLE_HERE:
                    raise failure from None
                unusable.append(failure)
                continue
            port = bound_address(listeners[0]).port
    except BaseException:
        for listener in listeners:
            listener.socket.close()
        raise
    if not listeners:
        raise unusable[0]
    for failure in unusable:
        log.warning("%s (serving the other addresses of `%s`)", failure, requested.host)
    return listeners


def bound_address(listener: trio.SocketListener, *, tls: bool = False) -> ListenAddress:
    host, port, *_ = listener.socket.getsockname()
    return ListenAddress(host=host, port=port, tls=tls)
