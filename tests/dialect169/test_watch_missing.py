"""What `fs/watchMissing` must NOT do, proven on trio-exec's own watch without waiting out time.

`test_dialect.py` runs the watch differentially (trio-exec and the references alike) for what
it does: fire once, soon, for the right change. That a change did *not* fire cannot be seen
from the wire without a time window, so these tests run the daemon in-process and ask it:
`next_poll()` returns once the watch has looked at the file system as it is now and not
fired; a watch that fired or was replaced leaves the session with no watch at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from support.daemon import TcpDaemon, next_poll, tcp_daemon
from support.wsclient import WireClient, connect

from trio_exec.fs.watch import MissingWatches

from .test_dialect import call, uri


def fired(client: WireClient) -> list[Any]:
    return [n["params"]["watchId"] for n in client.notifications
            if n["method"] == "fs/missingChanged"]


def watches_of(served: TcpDaemon, session_id: str) -> MissingWatches:
    session = served.daemon.registry.get(session_id)
    assert session is not None
    return session.watches


async def test_an_unrelated_entry_never_fires_and_a_fired_watch_is_gone(tmp_path: Path) -> None:
    with trio.fail_after(10):
        async with tcp_daemon() as served, connect(served.url) as client:
            watches = watches_of(served, await client.handshake())
            reply = await call(client, "fs/watchMissing", {
                "watchId": 7, "missing": [uri(tmp_path / "a" / "b" / "c")], "present": None})
            assert reply["result"] == {"watching": True}
            (tmp_path / "unrelated").mkdir()
            await next_poll(watches)  # it has seen `unrelated` and stayed armed
            assert fired(client) == []
            (tmp_path / "a").mkdir()
            assert await client.wait_for(lambda: fired(client)) == [7]
            assert watches._current is None  # one-shot: nothing is left to fire
            (tmp_path / "a" / "b").mkdir()
            reply = await call(client, "fs/watchMissing", {
                "watchId": 8, "missing": [uri(tmp_path / "x")], "present": None})
            assert reply["result"] == {"watching": True}
            await next_poll(watches)  # the session's only watch is 8, and a/b fired nothing
            assert fired(client) == [7]


async def test_a_replaced_watch_never_fires(tmp_path: Path) -> None:
    """Replaced by a refused request (its path exists): watch 1 is gone and `a` fires
    nothing; an empty `missing` leaves watch 11 alone, and `a` fires it (after `q`, which
    stays unrelated)."""
    with trio.fail_after(10):
        async with tcp_daemon() as served, connect(served.url) as client:
            watches = watches_of(served, await client.handshake())
            first = await call(client, "fs/watchMissing", {
                "watchId": 1, "missing": [uri(tmp_path / "a")], "present": None})
            assert first["result"] == {"watching": True}
            refused = await call(client, "fs/watchMissing", {
                "watchId": 2, "missing": [uri(tmp_path)], "present": None})
            assert refused["result"] == {"watching": False}
            assert watches._current is None
            (tmp_path / "a").mkdir()
            later = await call(client, "fs/watchMissing", {
                "watchId": 4, "missing": [uri(tmp_path / "z")], "present": None})
            assert later["result"] == {"watching": True}
            await next_poll(watches)
            assert fired(client) == []
            (tmp_path / "a").rmdir()

            kept = await call(client, "fs/watchMissing", {
                "watchId": 11, "missing": [uri(tmp_path / "a")], "present": None})
            assert kept["result"] == {"watching": True}
            empty = await call(client, "fs/watchMissing", {
                "watchId": 3, "missing": [], "present": None})
            assert empty["result"] == {"watching": False}
            (tmp_path / "q").mkdir()
            await next_poll(watches)
            assert fired(client) == []
            (tmp_path / "a").mkdir()
            assert await client.wait_for(lambda: fired(client)) == [11]
