"""A fuzzer of frames and params against a live daemon, for `tests/test_fuzz_live.py` (short)
and `scripts/fuzz` (as long as asked).

Rules:
- Params are drawn per method from the method table (`proto/methods.py`): every member of the
  method's params class, each either a value of its declared type (at the edges of its integer
  range, in either path form) or any JSON at all (wrong types, huge numbers, deep nesting),
  members left out at random, unknown members added.
- Nothing harmful can be drawn: `process/start` runs only `/bin/true` or `/bin/echo` (by
  absolute path, whatever `env` says), and every path that is a string names something under
  the fuzz root (a fresh directory), so writes, copies and removals stay inside it.
- A case is one connection: maybe a handshake, then frames (requests, arbitrary JSON, text
  frames of arbitrary bytes, binary frames, deeply nested JSON, oversize frames). Every
  request with a usable id (a string, or an integer in the i64 range) must be answered exactly
  once, well formed, never with the generic "internal error" of an unexpected exception, unless
  the daemon ended the connection for a frame the WebSocket rules forbid (invalid UTF-8 in a
  text frame: Close 1007; over the message limit: Close 1009), which must be the case's last.
"""

from __future__ import annotations

import base64
import contextlib
import enum
import itertools
import json
import os
import struct
import types
import typing
from pathlib import Path
from typing import Any

import attrs
import trio
from hypothesis import strategies as st
from wsproto.events import AcceptConnection, CloseConnection, Ping

from support.rawws import Message, RawWs, open_raw
from trio_exec.proto import convert, methods
from trio_exec.proto.types import INT_RANGES, AbsPath, CwdPath

#: The daemon under fuzzing runs with this message limit, so oversize frames stay cheap.
MESSAGE_LIMIT = 256 * 1024
#: How long a case waits for its replies.
REPLY_WAIT = 5.0
#: The message of an unexpected exception caught by the daemon's error barrier.
INTERNAL = "internal error"

TEXT = 1
BINARY = 2

huge_ints = st.sampled_from(
    [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 10**30, -(10**30)]
)
scalars = (
    st.none() | st.booleans() | st.integers() | huge_ints
    | st.floats(allow_nan=False) | st.just(1e308) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=10,
)
#: Ids that are not usable (a usable one is given at sending time, unique in the run).
bad_ids = st.none() | st.booleans() | st.floats(allow_nan=False) | huge_ints.filter(lambda i: not -(2**63) <= i < 2**63)
#: Names of things a case creates, so that later requests find them.
process_ids = st.sampled_from(["p0", "p1", "p2"])
handle_ids = st.sampled_from(["h0", "h1"])
SAFE_ARGV = [["/bin/true"], ["/bin/echo", "fuzz"], ["/bin/echo", "-n", ""]]
#: Never a list of strings: that could name a program.
BAD_ARGV = st.none() | st.integers() | st.text(max_size=8) | st.just([]) | st.lists(st.integers(), min_size=1, max_size=2)
SIGNALS = ["interrupt", "terminate", "hangup", "kill", "SIGUSR1", "SIGSTOP", "SIGCONT", "bogus", "", "9"]


@attrs.frozen
class Frame:
    """One frame to send: its opcode and payload; `ends` is the Close code the daemon must end
    the connection with for it. A request's frame is `request` instead of a payload: its id is
    given at sending time (unique in the run) unless `id_kind` names a value to send as is."""

    opcode: int
    payload: bytes = b""
    ends: int | None = None
    request: dict[str, Any] | None = None
    id_kind: str = "int"  # "int", "str", or "as-is" (`request` carries an id, maybe a bad one)

    def with_id(self, serial: int) -> tuple[bytes, str | int | None]:
        """The bytes to send and the id they must be answered under (None: no usable id)."""
        if self.request is None:
            return self.payload, None
        message = dict(self.request)
        if self.id_kind != "as-is":
            message["id"] = serial if self.id_kind == "int" else f"r{serial}"
        request_id = message["id"]
        return json.dumps(message).encode(), request_id if usable_id(request_id) else None


def usable_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, str) or (isinstance(value, int) and -(2**63) <= value < 2**63)


def paths(root: Path) -> st.SearchStrategy[Any]:
    names = st.text(alphabet="abcdefgh.-_ ", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
    under = st.lists(names, min_size=0, max_size=3).map(lambda parts: str(root.joinpath(*parts)))
    return st.one_of(
        under, under.map(lambda p: f"file://{p}"), st.just(str(root) + "/"),
        st.text(alphabet="abc./", max_size=6).filter(lambda p: not p.startswith("/")),  # relative
        st.just("file://host/x"), st.just("file:relative"), st.none(), st.integers(),
    )


def _int_strategy(kind: object) -> st.SearchStrategy[int]:
    _, low, high = INT_RANGES[kind]
    return st.integers(low, min(high, 2**20)) | st.sampled_from([low, high, low - 1, high + 1])


def value_of(tp: Any, root: Path, field: str) -> st.SearchStrategy[Any]:
    """A value for a member declared as `tp`, or (often) any JSON."""
    return st.one_of(_typed(tp, root, field), json_values)


def _typed(tp: Any, root: Path, field: str) -> st.SearchStrategy[Any]:
    if tp in (AbsPath, CwdPath):
        return paths(root)
    if tp in INT_RANGES:
        return _int_strategy(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return st.one_of([st.none() if a is type(None) else _typed(a, root, field) for a in args])
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin is list:
        return st.lists(_typed(args[0], root, field), max_size=3)
    if origin is dict:
        return st.dictionaries(st.text(max_size=8), _typed(args[1], root, field), max_size=3)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return st.sampled_from([member.value for member in tp])
    if attrs.has(tp):
        return params_of(tp, root)
    if tp is bool:
        return st.booleans()
    if tp is int:
        return st.integers() | huge_ints
    if tp is str:
        if field == "processId":
            return process_ids
        if field == "handleId":
            return handle_ids
        if field == "signal":
            return st.sampled_from(SIGNALS)
        if field in ("chunk", "dataBase64"):
            return st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()) | st.text(max_size=12)
        return st.text(max_size=20)
    return json_values


def params_of(cls: type, root: Path) -> st.SearchStrategy[dict[str, Any]]:
    """A map of `cls`'s wire members, each present or not, plus unknown members."""
    hints = typing.get_type_hints(cls)
    members = {
        convert.wire_name(f): value_of(hints[f.name], root, convert.wire_name(f))
        for f in attrs.fields(cls)
    }
    extra = st.dictionaries(st.text(max_size=8).filter(lambda k: k not in members), json_values, max_size=2)
    return st.builds(lambda known, unknown: {**unknown, **known}, st.fixed_dictionaries({}, optional=members), extra)


def method_params(name: str, root: Path) -> st.SearchStrategy[Any]:
    params = params_of(methods.METHODS[name].params, root)
    if name == methods.PROCESS_START:
        # a harmless program is always named, so the other members are what gets fuzzed
        params = st.builds(lambda p, argv: {**p, "argv": argv}, params, st.sampled_from(SAFE_ARGV) | BAD_ARGV)
    return st.one_of(params, params, params, json_values)


def requests(root: Path) -> st.SearchStrategy[Frame]:
    """A request for a method of the table (or an unknown one) with fuzzed params and id."""
    names = [*sorted(methods.METHODS), "bogus/method"]

    @st.composite
    def build(draw: st.DrawFn) -> Frame:
        name = draw(st.sampled_from(names))
        params = draw(method_params(name, root)) if name in methods.METHODS else draw(json_values)
        id_kind = draw(st.sampled_from(["int", "str", "as-is"]))
        message: dict[str, Any] = {"method": name}
        if id_kind == "as-is":
            message["id"] = draw(bad_ids)
        if draw(st.booleans()) or params is not None:
            message["params"] = params
        return Frame(TEXT, request=message, id_kind=id_kind)

    return build()


def deep(depth: int, opener: str) -> bytes:
    closer = {"[": "]", "{\"a\":": "}"}[opener]
    return (opener * depth + "1" + closer * depth).encode()


def frames(root: Path) -> st.SearchStrategy[Frame]:
    other = st.one_of(
        json_values.map(lambda v: Frame(TEXT, json.dumps(v).encode())),
        st.binary(max_size=64).map(lambda b: Frame(BINARY, b)),
        st.integers(1, 5000).flatmap(lambda d: st.sampled_from(["[", "{\"a\":"]).map(lambda o: Frame(TEXT, deep(d, o)))),
    )
    ending = st.one_of(
        st.binary(min_size=1, max_size=32).filter(_invalid_utf8).map(lambda b: Frame(TEXT, b, ends=1007)),
        st.integers(MESSAGE_LIMIT + 1, MESSAGE_LIMIT + 4096).map(lambda n: Frame(TEXT, b" " * n, ends=1009)),
    )
    return st.one_of(requests(root), requests(root), other, ending)


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def cases(root: Path) -> st.SearchStrategy[tuple[bool, list[Frame]]]:
    """(handshake first?, frames up to and including the first one that ends the connection)."""
    def cut(frame_list: list[Frame]) -> list[Frame]:
        for i, frame in enumerate(frame_list):
            if frame.ends:
                return frame_list[: i + 1]
        return frame_list

    return st.tuples(st.booleans() | st.just(True), st.lists(frames(root), max_size=8).map(cut))


# --- running a case -----------------------------------------------------------------------


@attrs.define
class Tally:
    """What a fuzz run did, for its report."""

    cases: int = 0
    frames: int = 0
    requests: int = 0
    #: Requests in cases the daemon had no reason to end: each must be answered.
    owed: int = 0
    answered: int = 0
    closes: dict[int, int] = attrs.field(factory=dict)


async def _pump(raw: RawWs) -> None:
    """Read one batch of events, answering pings."""
    await raw._receive_once()
    for event in [e for e in raw.events if isinstance(e, Ping)]:
        raw.events.remove(event)
        await raw.send(event.response())


#: Request ids, unique over a run.
_serials = itertools.count(1)


async def run_case(host: str, port: int, handshake: bool, frame_list: list[Frame], tally: Tally) -> None:
    """Send the case's frames on a fresh connection and check the daemon's answers."""
    async with open_raw(host, port) as raw:
        with trio.fail_after(REPLY_WAIT):
            while not any(isinstance(e, AcceptConnection) for e in raw.events):
                assert not raw.eof, "the upgrade was not answered"
                await _pump(raw)
        expected: set[str | int] = set()
        if handshake:
            await _send(raw, json.dumps({"id": "init", "method": "initialize", "params": {"clientName": "fuzz"}}).encode())
            await _send(raw, b'{"method":"initialized","params":{}}')
            expected.add("init")
        ending = None
        for frame in frame_list:
            payload, answer_id = frame.with_id(next(_serials))
            await _send(raw, payload, frame.opcode)
            tally.frames += 1
            if answer_id is not None:
                expected.add(answer_id)
                tally.requests += 1
            ending = frame.ends
        if ending is None:
            await _send(raw, b'{"id":"probe","method":"bogus/probe"}')
            expected.add("probe")
        answers = await _collect(raw, expected, ending)
        if ending is None:
            assert set(answers) == expected, f"unanswered: {expected - set(answers)}"
            owed = len(expected) - 1 - (1 if handshake else 0)  # less the probe and initialize
            tally.owed += owed
            tally.answered += owed
        tally.cases += 1


def masked(opcode: int, payload: bytes) -> bytes:
    """One final masked client frame (the XOR done on one big integer: fast for any size)."""
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        header = bytes([0x80 | opcode, 0x80 | 126]) + struct.pack("!H", n)
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + struct.pack("!Q", n)
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
    return header + key + body


async def _send(raw: RawWs, payload: bytes, opcode: int = TEXT) -> None:
    # the daemon may have ended the connection: `_collect` checks it had the right to
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await raw.send_bytes(masked(opcode, payload))


async def _collect(raw: RawWs, expected: set[str | int], ending: int | None) -> dict[str | int, Any]:
    """The replies, checked, until all expected ones came (or the daemon's Close)."""
    answers: dict[str | int, Any] = {}
    with trio.fail_after(REPLY_WAIT):
        while True:
            for event in list(raw.events):
                if isinstance(event, Message):
                    raw.events.remove(event)
                    _check_reply(json.loads(event.data), answers)
                elif isinstance(event, CloseConnection):
                    assert ending is not None, f"the daemon closed the connection: {event}"
                    assert event.code == ending, f"closed with {event.code}, expected {ending}"
                    return answers
            if ending is None and expected <= set(answers):
                return answers
            if raw.eof:
                assert ending is not None, "the daemon dropped the connection"
                return answers
            await _pump(raw)


def _check_reply(reply: Any, answers: dict[str | int, Any]) -> None:
    assert isinstance(reply, dict), reply
    if "method" in reply:
        return  # a notification of a process the case started
    assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
    if "error" in reply:
        error = reply["error"]
        assert isinstance(error["code"], int) and error["message"], reply
        assert error["message"] != INTERNAL, f"an unexpected exception in the daemon: {reply}"
        assert "Traceback" not in json.dumps(error), reply
    if reply["id"] is not None:
        assert reply["id"] not in answers, f"answered twice: {reply}"
        answers[reply["id"]] = reply
