"""Binding `--listen`: every address a host name resolves to, on one port.

A custom trio hostname resolver plays DNS (a name with both an IPv4 and an IPv6 address is
rare on a test machine); the sockets are real.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

from trio_exec.config import Config, ListenAddress, parse_listen_url
from trio_exec.listen import ListenError, bind_every_address, open_listening

#: An address no interface of this machine has (TEST-NET-3): bind() fails with EADDRNOTAVAIL.
NOT_HERE = "203.0.113.7"


class FakeDns(trio.abc.HostnameResolver):
    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def getaddrinfo(  # type: ignore[override]
        self, host: bytes | None, port: bytes | str | int | None, family: int = 0,
        type: int = 0, proto: int = 0, flags: int = 0,
    ) -> list[tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]]:
        assert host is not None
        addresses = self.names.get(host.decode())
        if addresses is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (ip, int(port or 0)))
            for ip in addresses
        ]

    async def getnameinfo(self, sockaddr: tuple[str, int], flags: int) -> tuple[str, str]:
        raise NotImplementedError


@contextmanager
def dns(names: dict[str, list[str]]) -> Iterator[None]:
    previous = trio.socket.set_custom_hostname_resolver(FakeDns(names))
    try:
        yield
    finally:
        trio.socket.set_custom_hostname_resolver(previous)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


async def _reachable(host: str, port: int) -> bool:
    with trio.fail_after(5):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError:
            return False
        await stream.aclose()
        return True


async def test_a_name_with_two_addresses_binds_both_on_one_port() -> None:
    """Port 0: the kernel picks the first address's port and the second one gets the same."""
    if not ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    with dns({"both.test": ["127.0.0.1", "::1"]}):
        listening = await open_listening(Config(listen=parse_listen_url("ws://both.test:0")))
    try:
        bound = [listener.socket.getsockname()[:2] for listener in listening.listeners]
        port = bound[0][1]
        assert bound == [("127.0.0.1", port), ("::1", port)]
        assert listening.address == ListenAddress(host="both.test", port=port)
        assert await _reachable("127.0.0.1", port) and await _reachable("::1", port)
    finally:
        for listener in listening.listeners:
            await listener.aclose()


async def test_an_address_not_of_this_host_is_skipped_while_another_binds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with dns({"half.test": [NOT_HERE, "127.0.0.1"]}), caplog.at_level(logging.WARNING):
        listeners = await bind_every_address(ListenAddress(host="half.test", port=0))
    try:
        [(host, port)] = [listener.socket.getsockname()[:2] for listener in listeners]
        assert host == "127.0.0.1" and port > 0
        assert f"cannot listen on ws://{NOT_HERE}:0: Address not available" in caplog.text
    finally:
        for listener in listeners:
            await listener.aclose()


async def test_a_name_with_no_usable_address_is_an_error() -> None:
    with dns({"away.test": [NOT_HERE]}), pytest.raises(ListenError) as raised:
        await bind_every_address(ListenAddress(host="away.test", port=0))
    assert str(raised.value) == (
        f"cannot listen on ws://{NOT_HERE}:0: Address not available (os error 99)"
    )


async def test_a_taken_port_on_the_second_address_closes_the_first() -> None:
    """Nothing stays open after an error: the first address's listener is closed again, so
    its port can be bound at once by someone else."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.2", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with dns({"busy.test": ["127.0.0.1", "127.0.0.2"]}), pytest.raises(ListenError) as raised:
            await bind_every_address(ListenAddress(host="busy.test", port=port))
        assert str(raised.value) == (
            f"cannot listen on ws://127.0.0.2:{port}: Address in use (os error 98)"
        )
        assert not await _reachable("127.0.0.1", port)
        with socket.socket() as again:
            again.bind(("127.0.0.1", port))


async def test_a_name_that_does_not_resolve_is_an_error() -> None:
    with dns({}), pytest.raises(ListenError) as raised:
        await bind_every_address(ListenAddress(host="nowhere.test", port=8765))
    assert str(raised.value) == (
        "cannot resolve the host of --listen `ws://nowhere.test:8765`: Name or service not known"
    )
