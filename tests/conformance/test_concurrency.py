"""Request processing per connection (protocol.md §3, §8.2; contract §2 #5)."""

from __future__ import annotations

from support.expect import not_implemented
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import session


async def test_a_long_poll_and_the_other_requests_on_its_connection(
    server: ServerHandle, gates: Gates
) -> None:
    """Reference (oddity 5): requests run one at a time, a long-poll delays every later
    request. trio-exec (contract §2 #5): requests run concurrently."""
    async with session(server.url) as client:
        await client.start_ok("quiet", ["/bin/sh", "-c", gates.wait("end")])
        poll_id = await client.send_request("process/read", {
            "processId": "quiet", "waitMs": 1000})
        probe_id = await client.send_request("bogus/x", {})
        probe = await client.reply_item_for(probe_id, within=10)
        poll = await client.reply_item_for(poll_id, within=10)
        assert probe.msg == not_implemented("bogus/x", probe_id)
        assert poll.msg["result"]["chunks"] == []
        if server.is_reference:
            assert client.inbound.index(poll) < client.inbound.index(probe)
        else:
            assert client.inbound.index(probe) < client.inbound.index(poll)
            assert poll.at - probe.at > 0.6, "the probe was answered during the long-poll"
        gates.open("end")
        await client.wait_process_closed("quiet")


async def test_notifications_flow_during_a_long_poll(server: ServerHandle, gates: Gates) -> None:
    async with session(server.url) as client:
        await client.start_ok("quiet", ["/bin/sh", "-c", gates.wait("end")])
        await client.start_ok("talker", ["/bin/sh", "-c", f"{gates.wait('talk')}; echo hi"])
        poll_id = await client.send_request("process/read", {
            "processId": "quiet", "waitMs": 3000})
        gates.open("talk")
        await client.wait_process_closed("talker")
        assert client.pending_replies() == [], "the long-poll should still be waiting"
        gates.open("end")  # the exit ends the long-poll
        poll = await client.reply_item_for(poll_id, within=10)
        assert poll.msg["result"]["chunks"] == []
        await client.wait_process_closed("quiet")


async def test_other_connections_are_not_blocked_by_a_long_poll(
    server: ServerHandle, gates: Gates
) -> None:
    async with session(server.url) as poller, session(server.url) as other:
        await poller.start_ok("quiet", ["/bin/sh", "-c", gates.wait("end")])
        poll_id = await poller.send_request("process/read", {
            "processId": "quiet", "waitMs": 3000})
        await other.assert_usable()
        await other.run("other", ["/bin/true"])
        assert poller.pending_replies() == [], "the long-poll should still be waiting"
        gates.open("end")  # the exit ends the long-poll
        await poller.reply_for(poll_id, within=10)
        await poller.wait_process_closed("quiet")


async def test_requests_pipelined_behind_a_start_see_the_started_process(
    server: ServerHandle,
) -> None:
    """Reference: sequential processing makes this trivially true. trio-exec (contract §2
    #5): a request naming a processId whose start is in flight waits for that start."""
    async with session(server.url) as client:
        for round_ in range(5):
            process_id = f"cat-{round_}"
            start_id = await client.send_request("process/start", {
                "processId": process_id, "argv": ["/bin/cat"], "cwd": "/", "env": {},
                "tty": True})
            read_id = await client.send_request("process/read", {"processId": process_id})
            write_id = await client.send_request("process/write", {
                "processId": process_id, "chunk": ""})
            terminate_id = await client.send_request("process/terminate", {
                "processId": process_id})
            assert (await client.reply_for(start_id))["result"] == {"processId": process_id}
            read = await client.reply_for(read_id)
            assert "result" in read, read
            assert (await client.reply_for(write_id))["result"] == {"status": "accepted"}
            assert (await client.reply_for(terminate_id))["result"] == {"running": True}
            await client.wait_process_closed(process_id)
