"""Retention of finished processes (protocol.md §8.5; contract §2 #10).

The reference keeps an entry 30 s from the *exit* and forgets an exited-but-unclosed process
without ever sending ``process/closed``. trio-exec starts the retention timer at the close;
``--retention`` makes it short enough to test (the reference's 30 s are not tested here).
Time passes on the server's own clock: long-polls on a quiet process serve as the timer.
"""

from __future__ import annotations

from collections.abc import Callable

from support.expect import invalid_request
from support.gates import Gates
from support.servers import TRIO_EXEC, ServerHandle
from support.wsclient import WireClient, session


async def let_time_pass(client: WireClient, seconds: float) -> None:
    """Wait on the server: a long-poll on a quiet process returns after ``seconds``."""
    reply = await client.read("timer", afterSeq=0, waitMs=int(seconds * 1000), within=30)
    assert reply["result"]["chunks"] == [] and reply["result"]["exited"] is False, reply


async def test_retention_starts_at_close_and_closed_is_always_delivered(
    launch_server: Callable[..., ServerHandle], gates: Gates
) -> None:
    server = launch_server(TRIO_EXEC, "--retention", "1")
    async with session(server.url) as client:
        await client.start_ok("timer", ["/bin/sh", "-c", gates.wait("timer")])
        await client.start_ok("held", ["/bin/sh", "-c", f"({gates.wait('release')}) & exit 0"])
        await client.wait_exited("held")
        # longer than the retention since the exit: still known, because not closed yet
        await let_time_pass(client, 1.5)
        result = (await client.read("held"))["result"]
        assert (result["exited"], result["closed"]) == (True, False)
        gates.open("release")
        events = await client.wait_process_closed("held")
        assert [e["method"] for e in events] == ["process/exited", "process/closed"]
        assert (await client.read("held"))["result"]["closed"] is True
        # one retention period after the close it is forgotten everywhere
        await let_time_pass(client, 1.5)
        reply = await client.read("held")
        assert reply == invalid_request("unknown process id held", reply["id"])
        assert (await client.result("process/write", {"processId": "held", "chunk": ""})) == {
            "status": "unknownProcess"}
        assert (await client.result("process/terminate", {"processId": "held"})) == {
            "running": False}
        await client.start_ok("held", ["/bin/true"])  # the id is free again
        await client.wait_process_closed("held")
        gates.open("timer")
