"""The handshake: ``initialize``, ``initialized`` and the gating of the other methods
(protocol.md §4, §15; contract §1 and §2 #7, #22)."""

from __future__ import annotations

import uuid

import pytest
import trio
from support.expect import (
    EXEC_METHODS,
    FS_METHODS,
    UUID4,
    invalid_request,
)
from support.gates import Gates
from support.servers import ServerHandle
from support.wsclient import WireClient, connect

VALID_PARAMS = {
    "process/start": {"processId": "g", "argv": ["/bin/true"], "cwd": "/", "env": {},
                      "tty": False},
    "process/read": {"processId": "g"},
    "process/write": {"processId": "g", "chunk": ""},
    "process/terminate": {"processId": "g"},
    "fs/readFile": {"path": "/etc/hostname"},
    "fs/writeFile": {"path": "/nonexistent-dir/x", "dataBase64": ""},
    "fs/createDirectory": {"path": "/nonexistent-dir/x"},
    "fs/getMetadata": {"path": "/"},
    "fs/readDirectory": {"path": "/"},
    "fs/remove": {"path": "/nonexistent-dir/x"},
    "fs/copy": {"sourcePath": "/nonexistent-dir/x", "destinationPath": "/nonexistent-dir/y",
                "recursive": False},
}


async def assert_gated(client: WireClient, stage: str) -> None:
    """Every process/fs method is refused with the gating text for ``stage``."""
    verb = {"initialize": "call initialize", "initialized": "send initialized"}[stage]
    for method in [*EXEC_METHODS, *FS_METHODS]:
        kind = "exec" if method.startswith("process/") else "filesystem"
        id = client.next_id()
        assert await client.request(method, VALID_PARAMS[method], id=id) == invalid_request(
            f"client must {verb} before using {kind} methods", id
        ), method


async def test_initialize_returns_a_fresh_lowercase_uuid4_session_id(server: ServerHandle) -> None:
    ids = []
    for _ in range(3):
        async with connect(server.url) as client:
            reply = await client.request("initialize", {"clientName": "c"}, id=1)
            assert reply["id"] == 1
            result = reply["result"]
            assert UUID4.match(result["sessionId"]), result
            assert next(iter(result)) == "sessionId"
            if server.is_reference:
                assert list(result) == ["sessionId"]
            ids.append(result["sessionId"])
    assert len(set(ids)) == 3


@pytest.mark.parametrize(
    "params",
    [{"clientName": ""}, {"clientName": "codex-environment", "resumeSessionId": None}],
    ids=["empty-client-name", "explicit-null-resume"],
)
async def test_initialize_accepts_any_client_name_and_null_resume(
    server: ServerHandle, params: dict[str, object]
) -> None:
    async with connect(server.url) as client:
        reply = await client.request("initialize", params)
        assert UUID4.match(reply["result"]["sessionId"])


async def test_a_second_initialize_is_refused_and_the_session_keeps_working(
    server: ServerHandle,
) -> None:
    async with connect(server.url) as client:
        session_id = await client.handshake()
        assert await client.request("initialize", {"clientName": "c"}, id=50) == invalid_request(
            "initialize may only be sent once per connection", 50
        )
        assert await client.request(
            "initialize", {"clientName": "c", "resumeSessionId": session_id}, id=51
        ) == invalid_request("initialize may only be sent once per connection", 51)
        await client.start_ok("still-works", ["/bin/true"])


@pytest.mark.parametrize(
    "resume_id",
    [str(uuid.uuid4()), "", "not-a-uuid", "E7CFEDA5-2D09-4938-BEAD-39E19FBDC8F2"],
    ids=["random-uuid", "empty", "not-a-uuid", "uppercase-uuid"],
)
async def test_unknown_resume_session_id_is_refused_and_initialize_may_be_retried(
    server: ServerHandle, resume_id: str
) -> None:
    async with connect(server.url) as client:
        assert await client.request(
            "initialize", {"clientName": "c", "resumeSessionId": resume_id}, id=1
        ) == invalid_request(f"unknown session id {resume_id}", 1)
        # the failed initialize left the connection un-initialized
        await assert_gated(client, "initialize")
        reply = await client.request("initialize", {"clientName": "c"}, id=2)
        assert UUID4.match(reply["result"]["sessionId"])
        await assert_gated(client, "initialized")
        await client.notify("initialized", {})
        await client.start_ok("after-retry", ["/bin/true"])


async def test_the_uppercased_id_of_a_live_session_is_unknown(server: ServerHandle) -> None:
    async with connect(server.url) as owner:
        session_id = await owner.handshake()
        async with connect(server.url) as client:
            upper = session_id.upper()
            assert await client.request(
                "initialize", {"clientName": "c", "resumeSessionId": upper}, id=1
            ) == invalid_request(f"unknown session id {upper}", 1)


async def test_gating_before_initialize(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        await assert_gated(client, "initialize")


async def test_gating_after_initialize_before_initialized(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        assert "result" in await client.initialize()
        await assert_gated(client, "initialized")


async def test_argv_emptiness_is_checked_after_gating(server: ServerHandle) -> None:
    """``argv must not be empty`` is not a serde error: gating wins over it."""
    params = {"processId": "e", "argv": [], "cwd": "/", "env": {}, "tty": False}
    async with connect(server.url) as client:
        assert await client.request("process/start", params, id=1) == invalid_request(
            "client must call initialize before using exec methods", 1
        )


@pytest.mark.parametrize("params", [{}, None], ids=["empty-params", "no-params"])
async def test_initialized_may_omit_params_and_may_be_sent_twice(
    server: ServerHandle, params: object
) -> None:
    async with connect(server.url) as client:
        assert "result" in await client.initialize()
        if params is None:
            await client.notify("initialized")
            await client.notify("initialized")
        else:
            await client.notify("initialized", params)
            await client.notify("initialized", params)
        await client.start_ok("after-initialized", ["/bin/true"])
        await client.assert_usable()


@pytest.mark.parametrize("history", ["fresh", "after-failed-initialize"])
async def test_initialized_before_a_successful_initialize(
    server: ServerHandle, history: str
) -> None:
    """Reference: the connection is dropped. trio-exec (contract §2 #7): ignored; the
    connection stays un-initialized and usable."""
    async with connect(server.url) as client:
        if history == "after-failed-initialize":
            missing = str(uuid.uuid4())
            assert await client.request(
                "initialize", {"clientName": "c", "resumeSessionId": missing}, id=1
            ) == invalid_request(f"unknown session id {missing}", 1)
        await client.notify("initialized", {})
        if server.is_reference:
            await client.wait_closed()
            assert client.pending_replies() == []
            return
        await assert_gated(client, "initialize")
        await client.handshake()
        await client.start_ok("after-ignored-initialized", ["/bin/true"])


async def resume(url: str, session_id: str, client: WireClient) -> dict[str, object]:
    """``initialize`` with ``resumeSessionId`` once the previous owner is gone.

    The reference detaches a session when it notices the TCP drop, which races with the
    client's next connection; it answers "already attached" until then. Retry on exactly that
    answer (bounded), so the test waits on the server's state and not on a sleep.
    """
    attached = f"session {session_id} is already attached to another connection"
    with trio.fail_after(5):
        while True:
            reply = await client.request(
                "initialize", {"clientName": "c", "resumeSessionId": session_id}
            )
            if reply.get("error", {}).get("message") != attached:
                return reply
            await trio.sleep(0.01)


async def test_resume_returns_the_same_session_and_needs_initialized_again(
    server: ServerHandle,
) -> None:
    async with connect(server.url) as first:
        session_id = await first.handshake()
        await first.run("kept", ["/bin/echo", "kept"], env={})
    async with connect(server.url) as second:
        reply = await resume(server.url, session_id, second)
        assert reply["result"]["sessionId"] == session_id, reply
        await assert_gated(second, "initialized")
        await second.notify("initialized", {})
        read = await second.read("kept")
        assert read["result"]["closed"] is True
        assert read["result"]["chunks"][0]["chunk"] == "a2VwdAo="
        # the process id is still taken in the resumed session
        id = second.next_id()
        reply = await second.request("process/start", {
            "processId": "kept", "argv": ["/bin/true"], "cwd": "/", "env": {}, "tty": False,
        }, id=id)
        assert reply == invalid_request("process kept already exists", id)


async def test_process_ids_are_scoped_to_their_session(server: ServerHandle) -> None:
    async with connect(server.url) as owner:
        await owner.handshake()
        await owner.start_ok("mine", ["/bin/sleep", "5"])
        async with connect(server.url) as other:
            await other.handshake()
            assert await other.request("process/read", {"processId": "mine"}, id=1) == (
                invalid_request("unknown process id mine", 1))
            assert await other.request(
                "process/write", {"processId": "mine", "chunk": ""}, id=2
            ) == {"id": 2, "result": {"status": "unknownProcess"}}
            assert await other.request("process/terminate", {"processId": "mine"}, id=3) == {
                "id": 3, "result": {"running": False}}
            # and the id is free in the other session
            await other.start_ok("mine", ["/bin/true"])
        assert await owner.request("process/terminate", {"processId": "mine"}, id=9) == {
            "id": 9, "result": {"running": True}}


async def test_resuming_a_session_that_is_still_attached(
    server: ServerHandle, gates: Gates
) -> None:
    """Reference: refused, the owner undisturbed. trio-exec (contract §2 #22): the resume
    takes over; the old connection's long-poll is answered ``session has been resumed by
    another connection`` and the old connection is closed (with a Close frame)."""
    async with connect(server.url) as owner:
        session_id = await owner.handshake()
        await owner.start_ok("quiet", ["/bin/sh", "-c", gates.wait("end")])
        poll_id = await owner.send_request("process/read", {
            "processId": "quiet", "waitMs": 20000})
        async with connect(server.url) as thief:
            reply = await thief.request(
                "initialize", {"clientName": "c", "resumeSessionId": session_id}, id=1
            )
            if server.is_reference:
                assert reply == invalid_request(
                    f"session {session_id} is already attached to another connection", 1
                )
                gates.open("end")
                poll = await owner.reply_for(poll_id)
                assert poll["result"]["exited"] is True
                await owner.start_ok("owner-still-attached", ["/bin/true"])
                await owner.wait_process_closed("owner-still-attached")
                # a failed resume may be retried as a fresh initialize
                reply = await thief.request("initialize", {"clientName": "c"}, id=2)
                assert UUID4.match(reply["result"]["sessionId"])
                assert reply["result"]["sessionId"] != session_id
            else:
                assert reply["id"] == 1
                assert reply["result"]["sessionId"] == session_id
                assert await owner.reply_for(poll_id) == invalid_request(
                    "session has been resumed by another connection", poll_id)
                reason = await owner.wait_closed()
                assert reason.code != 1006, "trio-exec closes with a Close frame (§2 #1, #2)"
                await thief.notify("initialized", {})
                await thief.start_ok("thief-owns-it", ["/bin/true"])
                await thief.wait_process_closed("thief-owns-it")
                gates.open("end")
                await thief.wait_process_closed("quiet")
