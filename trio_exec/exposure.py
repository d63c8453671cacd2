"""Who can reach the daemon without a token: the safe default.

Rules:
- An address is loopback when it is in 127.0.0.0/8 or is ::1 (an IPv4-mapped loopback,
  `::ffff:127.0.0.1`, too); `localhost` binds only such addresses. Every other address,
  the wildcards 0.0.0.0 and :: included, can be reached from the network.
- What counts is what is bound (an activated socket by its bound address), never the name asked.
- Serving a non-loopback address without a token is refused (`ConfigError`, exit 2) unless the
  operator says `--allow-unauthenticated`; then it is served with a warning at start naming the
  address, since anyone who reaches it can run commands as the daemon's user.
"""

from __future__ import annotations

import getpass
import ipaddress
import logging

from trio_exec.config import ConfigError, ListenAddress

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether the bound IP `host` is reachable only from this machine."""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_exposure(
    bound: list[ListenAddress], *, authenticated: bool, allow_unauthenticated: bool
) -> None:
    """Refuse (or, when allowed, warn about) serving a non-loopback address without a token."""
    if authenticated:
        return
    exposed = [address for address in bound if not is_loopback(address.host)]
    if not exposed:
        return
    where = ", ".join(address.url for address in exposed)
    if not allow_unauthenticated:
        raise ConfigError(
            f"refusing to serve {where} without a token: anyone who can reach it could run "
            "commands here; set --auth-token-file or --auth-token-sha256, listen on loopback, "
            "or pass --allow-unauthenticated"
        )
    log.warning(
        "serving %s WITHOUT a token (--allow-unauthenticated): anyone who can reach it can run "
        "commands as %s", where, _user(),
    )


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "this daemon's user"
