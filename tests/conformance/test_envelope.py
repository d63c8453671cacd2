"""The message envelope (protocol.md §2, §13, §15; contract §1 and §2 #3, #4, #7).

Each test runs against trio-exec and the reference. Where the contract says "identical" the
two must send the very same reply; where it lists a fix, ``server.kind`` picks the expectation
so the reference run documents the bug and the trio-exec run pins the fix.
"""

from __future__ import annotations

import json

import pytest
from support.expect import (
    EXEC_METHODS,
    FS_METHODS,
    PARAM_STRUCTS,
    invalid_params,
    invalid_request,
    not_implemented,
    reference_parse_error,
)
from support.servers import ServerHandle
from support.wsclient import ABSENT, WireClient, connect

NOT_IMPLEMENTED_RAW = (
    '{"error":{"code":-32601,"message":"exec-server stub does not implement `bogus/x` yet"},'
    '"id":%s}'
)


async def assert_malformed_reply(server: ServerHandle, client: WireClient, serde_text: str,
                                 *, usable_id: object = ABSENT, invalid_json: bool) -> None:
    """The reply to a frame that is not a usable request, then prove the connection lives."""
    reply = await client.next_reply()
    if server.is_reference:
        assert reply == reference_parse_error(client.ws.local.port, serde_text)
    else:
        # contract §2 #4: invalid JSON -> -32700 id null; valid JSON that is not a request
        # -> -32600 with id null (or the message's own id when it has a usable one).
        assert reply["error"]["code"] == (-32700 if invalid_json else -32600), reply
        allowed_ids = [None] if usable_id is ABSENT else [None, usable_id]
        assert any(reply["id"] == i and type(reply["id"]) is type(i) for i in allowed_ids), reply
        assert set(reply) == {"error", "id"} and set(reply["error"]) <= {"code", "message", "data"}
        assert isinstance(reply["error"]["message"], str) and reply["error"]["message"]
    await client.assert_usable()


# ----------------------------------------------------------------------------------- ids


@pytest.mark.parametrize(
    "request_id",
    [0, 1, -1, 2**53 + 1, 2**63 - 1, -(2**63), "", "1", "ü x/\"quoted\"", "a" * 300],
    ids=repr,
)
async def test_request_ids_are_echoed_with_the_same_json_type_and_value(
    server: ServerHandle, request_id: object
) -> None:
    async with connect(server.url) as client:
        item_id = await client.send_request("bogus/x", {}, id=request_id)
        item = await client.reply_item_for(item_id)
        assert item.raw == NOT_IMPLEMENTED_RAW % json.dumps(request_id, ensure_ascii=False)


async def test_duplicate_in_flight_ids_are_both_answered(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        await client.send_request("bogus/x", {}, id=9)
        await client.send_request("bogus/y", {}, id=9)
        first = await client.reply_for(9)
        second = await client.reply_for(9)
        assert sorted([first, second], key=str) == sorted(
            [not_implemented("bogus/x", 9), not_implemented("bogus/y", 9)], key=str
        )


@pytest.mark.parametrize("version", ["2.0", "1.0", 5, None])
async def test_jsonrpc_member_is_ignored_on_input_and_never_emitted(
    server: ServerHandle, version: object
) -> None:
    async with connect(server.url) as client:
        assert await client.request("bogus/x", {}, id=1, jsonrpc=version) == not_implemented(
            "bogus/x", 1
        )
        reply = await client.request("initialize", {"clientName": "c"}, jsonrpc=version)
        assert "result" in reply
        assert all('"jsonrpc"' not in item.raw for item in client.inbound)


async def test_extra_top_level_members_are_ignored(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        reply = await client.request(
            "bogus/x", {}, id=3, trace={"traceparent": "00-ab-cd-01"}, result={"stray": 1}
        )
        assert reply == not_implemented("bogus/x", 3)


async def test_replies_are_compact_json_with_error_before_id_and_id_before_result(
    server: ServerHandle,
) -> None:
    async with connect(server.url) as client:
        await client.request("bogus/x", {}, id=1)
        reply = await client.request("initialize", {"clientName": "c"}, id=2)
        error_raw, result_raw = (item.raw for item in client.inbound)
        assert error_raw == NOT_IMPLEMENTED_RAW % "1"
        session_id = reply["result"]["sessionId"]
        assert result_raw.startswith(f'{{"id":2,"result":{{"sessionId":"{session_id}"')
        assert result_raw == json.dumps(reply, separators=(",", ":"))


async def test_leading_and_trailing_whitespace_in_a_frame_is_fine(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        await client.send_raw(' \t{"id":2,"method":"bogus/x"}\n\n')
        assert await client.reply_for(2) == not_implemented("bogus/x", 2)


async def test_binary_frames_are_parsed_as_json(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        await client.send_raw(b'{"id":7,"method":"bogus/x"}')
        assert await client.reply_for(7) == not_implemented("bogus/x", 7)


# ------------------------------------------------------------------- malformed frames

INVALID_JSON = {
    "not-json": ("nope", "expected ident at line 1 column 2"),
    "empty": ("", "EOF while parsing a value at line 1 column 0"),
    "truncated-object": ('{"id":4,"method":"bogus/x"', "EOF while parsing an object at line 1 column 26"),
    "truncated-value": ('{"a":', "EOF while parsing a value at line 1 column 5"),
    "utf8-bom": ('\ufeff{"id":3,"method":"bogus/x"}', "expected value at line 1 column 1"),
    "two-messages-in-one-frame": (
        '{"id":5,"method":"bogus/x"}\n{"id":6,"method":"bogus/x"}',
        "trailing characters at line 2 column 1",
    ),
    # serde tries the untagged variants before it sees the trailing object:
    "two-objects-glued": ('{"a":1}{"b":2}', "data did not match any variant of untagged enum JSONRPCMessage"),
}


@pytest.mark.parametrize("case", INVALID_JSON.values(), ids=INVALID_JSON.keys())
async def test_invalid_json_is_answered_and_the_connection_stays_usable(
    server: ServerHandle, case: tuple[str, str]
) -> None:
    """Reference: -32600 with id -1 and serde's text. trio-exec: -32700 with id null."""
    raw, serde_text = case
    async with connect(server.url) as client:
        await client.send_raw(raw)
        await assert_malformed_reply(server, client, serde_text, invalid_json=True)


NO_VARIANT = "data did not match any variant of untagged enum JSONRPCMessage"
NOT_A_MESSAGE = {
    "empty-object": ("{}", ABSENT),
    "null": ("null", ABSENT),
    "scalar": ("5", ABSENT),
    "string": ('"x"', ABSENT),
    "empty-array": ("[]", ABSENT),
    "batch": ('[{"id":1,"method":"bogus/x"}]', ABSENT),
    "id-only": ('{"id":4}', 4),
    "method-not-a-string": ('{"id":4,"method":5}', 4),
    "method-null": ('{"id":"m","method":null}', "m"),
}


@pytest.mark.parametrize("case", NOT_A_MESSAGE.values(), ids=NOT_A_MESSAGE.keys())
async def test_valid_json_that_is_not_a_message_is_answered_and_the_connection_stays_usable(
    server: ServerHandle, case: tuple[str, object]
) -> None:
    """Reference: -32600 with id -1. trio-exec: -32600 with id null (or the usable id)."""
    raw, usable_id = case
    async with connect(server.url) as client:
        await client.send_raw(raw)
        await assert_malformed_reply(server, client, NO_VARIANT, usable_id=usable_id,
                                     invalid_json=False)


BAD_IDS = {
    "null": "null",
    "true": "true",
    "float": "1.5",
    "integral-float": "1.0",
    "array": "[1]",
    "object": "{}",
    "2^63": str(2**63),
    "below-i64": str(-(2**63) - 1),
}


@pytest.mark.parametrize("raw_id", BAD_IDS.values(), ids=BAD_IDS.keys())
async def test_request_with_an_unusable_id(server: ServerHandle, raw_id: str) -> None:
    """Reference: treated as an unknown notification, the connection is dropped.
    trio-exec (contract §2 #7): -32600 with id null, the connection stays usable."""
    async with connect(server.url) as client:
        await client.send_raw(f'{{"id":{raw_id},"method":"bogus/x","params":{{}}}}')
        if server.is_reference:
            await client.wait_closed()
            assert client.pending_replies() == []
        else:
            reply = await client.next_reply()
            assert reply["id"] is None and reply["error"]["code"] == -32600, reply
            await client.assert_usable()


# ---------------------------------------------------------------- client notifications

UNKNOWN_NOTIFICATIONS = ["exit", "$/cancelRequest", "notifications/cancelled", "process/output",
                         "foo/bar"]


@pytest.mark.parametrize("phase", ["before-handshake", "after-handshake"])
@pytest.mark.parametrize("method", UNKNOWN_NOTIFICATIONS)
async def test_unknown_client_notification(server: ServerHandle, method: str, phase: str) -> None:
    """Reference: the connection is dropped without a reply. trio-exec (contract §2 #7): the
    notification is ignored and the connection (and its session) stays usable."""
    async with connect(server.url) as client:
        if phase == "after-handshake":
            await client.handshake()
        await client.notify(method, {"processId": "p", "seq": 1})
        if server.is_reference:
            await client.wait_closed()
            assert client.pending_replies() == []
        else:
            await client.assert_usable()
            if phase == "after-handshake":
                await client.start_ok("after-notification", ["/bin/true"])


@pytest.mark.parametrize(
    "raw",
    ['{"id":1,"result":{}}', '{"id":1,"error":{"code":-32601,"message":"no"}}'],
    ids=["response", "error"],
)
async def test_client_response_objects(server: ServerHandle, raw: str) -> None:
    """Reference: a response or error object from the client drops the connection.
    trio-exec (contract §2 #7): stray responses are ignored."""
    async with connect(server.url) as client:
        await client.handshake()
        await client.send_raw(raw)
        if server.is_reference:
            await client.wait_closed()
            assert client.pending_replies() == []
        else:
            await client.assert_usable()


# --------------------------------------------------------------------- unknown methods

UNKNOWN_METHODS = [
    "bogus/x", "shutdown", "exit", "ping", "$/cancelRequest", "initialized", "process/output",
    "process/exited", "process/kill", "Process/Start", "process/start ", " initialize",
    "PROCESS/READ", "fs/ReadFile", "", "bogus/ü`x` \"q\"",
]


@pytest.mark.parametrize("phase", ["before-handshake", "after-handshake"])
async def test_unknown_methods_answer_32601_with_the_name_echoed(
    server: ServerHandle, phase: str
) -> None:
    async with connect(server.url) as client:
        if phase == "after-handshake":
            await client.handshake()
        for method in UNKNOWN_METHODS:
            id = client.next_id()
            assert await client.request(method, {}, id=id) == not_implemented(method, id)
        # also without params
        assert await client.request("bogus/x", id=77) == not_implemented("bogus/x", 77)


# Methods of later protocol versions or of trio-exec's extensions (contract §3, §4): the
# reference does not have them; trio-exec may serve them, so only the reference is pinned.
LATER_METHODS = [
    "process/signal", "process/resize", "process/list", "environment/info",
    "environmentConfig/read", "http/request", "fs/canonicalize", "fs/open", "fs/readBlock",
    "fs/close", "fs/watch", "fs/unwatch", "fs/watchMissing", "fs/rename", "fs/move",
]


async def test_reference_0120_lacks_the_later_methods(server: ServerHandle) -> None:
    if not server.is_reference:
        pytest.skip("trio-exec serves extensions and the newer dialect under some of these")
    async with connect(server.url) as client:
        await client.handshake()
        for method in LATER_METHODS:
            id = client.next_id()
            assert await client.request(method, {}, id=id) == not_implemented(method, id)


# --------------------------------------------------------------------- params shapes

ALL_METHODS = ["initialize", *EXEC_METHODS, *FS_METHODS]


@pytest.mark.parametrize("method", ALL_METHODS)
async def test_params_that_are_not_an_object_get_serde_texts(
    server: ServerHandle, method: str
) -> None:
    """Absent or null params parse as JSON null; an empty array and a string are refused."""
    struct, fields = PARAM_STRUCTS[method]
    plural = "element" if fields == 1 else "elements"
    async with connect(server.url) as client:
        null_text = f"invalid type: null, expected struct {struct}"
        assert await client.request(method, id=1) == invalid_params(null_text, 1)
        assert await client.request(method, None, id=2) == invalid_params(null_text, 2)
        assert await client.request(method, [], id=3) == invalid_params(
            f"invalid length 0, expected struct {struct} with {fields} {plural}", 3
        )
        assert await client.request(method, "/", id=4) == invalid_params(
            f'invalid type: string "/", expected struct {struct}', 4
        )


async def test_params_array_of_the_right_length_is_read_positionally(
    server: ServerHandle,
) -> None:
    """serde reads a struct from a sequence in field order: ``["x"]`` is
    ``{"processId": "x"}`` for ``process/terminate``; a short one names the expected length."""
    async with connect(server.url) as client:
        await client.handshake()
        assert await client.request("process/terminate", ["x"], id=1) == {
            "id": 1, "result": {"running": False}}
        assert await client.request("process/read", ["x"], id=2) == invalid_params(
            "invalid length 1, expected struct ReadParams with 4 elements", 2
        )


PARAM_ERRORS = [
    ("process/start", {}, "missing field `processId`"),
    ("process/start", {"processId": "p", "cwd": "/", "env": {}, "tty": False},
     "missing field `argv`"),
    ("process/start", {"processId": "p", "argv": ["/bin/true"], "env": {}, "tty": False},
     "missing field `cwd`"),
    ("process/start", {"processId": "p", "argv": ["/bin/true"], "cwd": "/", "tty": False},
     "missing field `env`"),
    ("process/start", {"processId": "p", "argv": ["/bin/true"], "cwd": "/", "env": {}},
     "missing field `tty`"),
    ("process/start", {"processId": 5, "argv": ["/bin/true"], "cwd": "/", "env": {}, "tty": False},
     "invalid type: integer `5`, expected a string"),
    ("process/start", {"processId": "p", "argv": "x", "cwd": "/", "env": {}, "tty": False},
     'invalid type: string "x", expected a sequence'),
    ("process/start", {"processId": "p", "argv": [5], "cwd": "/", "env": {}, "tty": False},
     "invalid type: integer `5`, expected a string"),
    ("process/start", {"processId": "p", "argv": ["x"], "cwd": "/", "env": None, "tty": False},
     "invalid type: null, expected a map"),
    ("process/start", {"processId": "p", "argv": ["x"], "cwd": "/", "env": {"A": 5}, "tty": False},
     "invalid type: integer `5`, expected a string"),
    ("process/start", {"processId": "p", "argv": ["x"], "cwd": "/", "env": {}, "tty": "yes"},
     'invalid type: string "yes", expected a boolean'),
    ("process/start",
     {"processId": "p", "argv": ["x"], "cwd": "/", "env": {}, "tty": False, "arg0": 5},
     "invalid type: integer `5`, expected a string"),
    ("process/read", {}, "missing field `processId`"),
    ("process/read", {"processId": 5}, "invalid type: integer `5`, expected a string"),
    ("process/read", {"processId": "p", "maxBytes": -1}, "invalid value: integer `-1`, expected usize"),
    ("process/read", {"processId": "p", "maxBytes": 1.5},
     "invalid type: floating point `1.5`, expected usize"),
    ("process/read", {"processId": "p", "afterSeq": -1}, "invalid value: integer `-1`, expected u64"),
    ("process/read", {"processId": "p", "waitMs": "x"}, 'invalid type: string "x", expected u64'),
    ("process/read", {"processId": "p", "waitMs": 1.5},
     "invalid type: floating point `1.5`, expected u64"),
    ("process/write", {"processId": "p"}, "missing field `chunk`"),
    ("process/write", {"chunk": ""}, "missing field `processId`"),
    ("process/write", {"processId": "p", "chunk": None}, "invalid type: null, expected a string"),
    ("process/terminate", {}, "missing field `processId`"),
    ("process/terminate", {"processId": None}, "invalid type: null, expected a string"),
    ("initialize", {}, "missing field `clientName`"),
    ("initialize", {"clientName": 5}, "invalid type: integer `5`, expected a string"),
    ("initialize", {"clientName": "c", "resumeSessionId": 5},
     "invalid type: integer `5`, expected a string"),
    ("fs/getMetadata", {}, "missing field `path`"),
    ("fs/getMetadata", {"path": "relative"}, "AbsolutePathBuf deserialized without a base path"),
    ("fs/copy", {}, "missing field `sourcePath`"),
]


@pytest.mark.parametrize(
    "phase", ["before-initialize", "before-initialized", "after-handshake"]
)
async def test_parameter_errors_are_serde_texts_and_win_over_gating(
    server: ServerHandle, phase: str
) -> None:
    """-32602 with serde's text, reported before the handshake-state check (oddity 6)."""
    async with connect(server.url) as client:
        if phase == "before-initialized":
            assert "result" in await client.initialize()
        elif phase == "after-handshake":
            await client.handshake()
        for method, params, text in PARAM_ERRORS:
            if method == "initialize" and phase != "before-initialize":
                continue  # a second initialize is refused for another reason
            id = client.next_id()
            assert await client.request(method, params, id=id) == invalid_params(text, id), (
                method, params)


async def test_unknown_members_inside_params_are_ignored(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        reply = await client.request("initialize", {"clientName": "c", "bogus": [1, 2]}, id=1)
        assert "result" in reply
        await client.notify("initialized", {"extra": True})
        assert await client.request(
            "process/terminate", {"processId": "x", "bogusMember": "bogus"}, id=2
        ) == {"id": 2, "result": {"running": False}}
        assert await client.request(
            "process/read", {"processId": "x", "afterSeq": None, "maxBytes": None,
                             "waitMs": None, "junk": 1}, id=3,
        ) == invalid_request("unknown process id x", 3)
