"""A large frame's long base64 member is taken out of the frame as it is (`codec._loads_lifted`);
the outcome must be the whole frame's, value or error, whatever surrounds that member.

The whole-frame outcome is `codec.loads` of the frame's bytes (bytes are never lifted).
"""

from __future__ import annotations

import json
import os

import orjson
import pybase64
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trio_exec.proto import codec

LONG = pybase64.b64encode(os.urandom(codec.LIFT_MIN)).decode()  # 87 384 symbols


def outcome(frame: str | bytes) -> object:
    try:
        return ("value", codec.loads(frame))
    except codec.DecodeError as exc:
        return ("error", exc.error.code, exc.error.message, exc.reply_id)


def same_as_whole(frame: str) -> None:
    assert outcome(frame) == outcome(frame.encode())


@pytest.mark.parametrize("slot", ["params", "result"])
def test_a_long_base64_member_is_lifted(slot: str) -> None:
    message = {"id": 3, "method": "fs/writeFile", slot: {"path": "/p", "dataBase64": LONG}}
    if slot == "result":
        del message["method"]
    frame = json.dumps(message)
    assert codec._loads_lifted(frame) == orjson.loads(frame)
    same_as_whole(frame)


@pytest.mark.parametrize(
    "frame",
    [
        # an escaped quote before the long string: the quotes no longer pair up
        '{"id":1,"method":"m","params":{"path":"/a\\"b","dataBase64":"%s"}}',
        '{"id":1,"method":"m","params":{"path":"/a\\\\","dataBase64":"%s"}}',
        # the long string where it is not a direct member of params/result
        '{"id":1,"method":"m","params":{"%s":1}}',
        '{"id":1,"method":"m","params":{"x":{"y":"%s"}}}',
        '{"id":1,"method":"m","params":["%s"]}',
        '{"id":1,"method":"m","params":{},"other":"%s"}',
        '["%s"]',
        '"%s"',
        # duplicate members: the last one counts, in both orders
        '{"id":1,"method":"m","params":{"d":"%s","d":"short"}}',
        '{"id":1,"method":"m","params":{"d":"short","d":"%s"}}',
        # integers beyond 64 bits go to the stdlib either way
        '{"id":1,"method":"m","params":{"n":123456789012345678901234567890,"d":"%s"}}',
        # invalid JSON around a valid long member: the whole frame's error text
        '{"id":1,"method":"m","params":{"d":"%s"}',
        '{"id":1,"method":"m","params":{"d":"%s"}}}',
        '{"id":1,"method":"m","params":{"d":"%s",}}',
        '{"id":1,"method":"m","params":{"d":"%s" "e":1}}',
        '{"id":1,"method":"m",params:{"d":"%s"}}',
        '{"id":1 "method":"m","params":{"d":"%s"}}',
        '{"id":1,"method":"m","params":{"d":"%s"}} x',
        # nested deeper than orjson's limit before the long member
        '[' * 2000 + '{"params":{"d":"%s"}}' + ']' * 2000,
    ],
)
def test_whatever_surrounds_it_the_outcome_is_the_whole_frames(frame: str) -> None:
    same_as_whole(frame % LONG)


@pytest.mark.parametrize(
    "text",
    [
        LONG[:1000] + "\\n" + LONG,  # an escape
        LONG[:1000] + "\\u0041" + LONG,
        LONG[:1000] + "\n" + LONG,  # a raw control character: invalid JSON
        LONG[:1000] + "\t" + LONG,
        LONG[:1000] + "é" + LONG,  # not base64
        LONG[:1000] + "!" + LONG,
        LONG + "A",  # not whole quanta
        LONG[:-4] + "AAB=",  # unused bits set: valid for this check, refused later by b64
        LONG[:-4] + "A===",
        "=" + LONG,
    ],
)
def test_a_long_member_that_is_not_plain_base64(text: str) -> None:
    same_as_whole(json.dumps({"id": 1, "method": "m", "params": {"d": text}}, ensure_ascii=False))
    same_as_whole('{"id":1,"method":"m","params":{"d":"' + text + '"}}')


json_leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from('ab"\\\n é'), max_size=6)
)
json_trees = st.recursive(
    json_leaves,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(alphabet=st.sampled_from('k"\\'), max_size=3), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(alphabet=st.sampled_from('p"\\'), max_size=3), json_trees, max_size=4),
    st.integers(0, 4),
    st.sampled_from(["params", "result"]),
    st.data(),
)
def test_a_long_member_among_arbitrary_members(
    members: dict[str, object], at: int, slot: str, data: st.DataObject
) -> None:
    """The long member at any place among members with quotes, backslashes and control
    characters in their names and texts; sometimes the frame cut short or given a tail."""
    items = list(members.items())
    items.insert(min(at, len(items)), ("dataBase64", LONG))
    message: dict[str, object] = {"id": 9, slot: dict(items)}
    if slot == "params":
        message["method"] = "fs/writeFile"
    frame = json.dumps(message, ensure_ascii=data.draw(st.booleans()))
    frame = frame[: len(frame) - data.draw(st.integers(0, 2))] + data.draw(
        st.sampled_from(["", " ", "}", ",", '"'])
    )
    same_as_whole(frame)
