"""The codec and the converter: classification, error texts, and property tests."""

from __future__ import annotations

import contextlib
import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_exec.proto import b64, codec, errors
from trio_exec.proto import messages as m
from trio_exec.proto.convert import structure_params, unstructure


def json_trees(integers: st.SearchStrategy[int]) -> st.SearchStrategy[object]:
    return st.recursive(
        st.none() | st.booleans() | integers | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4),
        max_leaves=12,
    )


#: Any JSON, including integers no 64-bit type holds (clients may send them).
json_values = json_trees(st.integers())
#: JSON the daemon itself may emit (its integers fit 64 bits).
emitted_values = json_trees(st.integers(min_value=codec.I64_MIN, max_value=2**64 - 1))


@given(json_values)
def test_decoding_any_json_yields_a_message_or_a_protocol_error(value: object) -> None:
    try:
        frame = json.dumps(value)
        message = codec.decode(frame)
    except codec.DecodeError as exc:
        assert exc.error.code in (errors.PARSE_ERROR, errors.INVALID_REQUEST)
        assert exc.reply_id is None or codec.usable_id(exc.reply_id)
    else:
        assert isinstance(message, codec.Request | codec.Notification | codec.Response)


@given(st.binary(max_size=64))
def test_decoding_arbitrary_bytes_never_raises_anything_else(frame: bytes) -> None:
    with contextlib.suppress(codec.DecodeError):
        codec.decode(frame)


@given(
    st.one_of(st.text(), st.integers(min_value=codec.I64_MIN, max_value=codec.I64_MAX)),
    st.text(min_size=1),
    emitted_values,
)
def test_request_round_trip_keeps_the_id_type(request_id: int | str, method: str, params: object) -> None:
    decoded = codec.decode(codec.encode_request(request_id, method, params))
    assert decoded == codec.Request(request_id, method, params)


@pytest.mark.parametrize(
    ("frame", "code", "reply_id"),
    [
        ("not json", errors.PARSE_ERROR, None),
        ('{"id":1,"method":"x"} {"id":2}', errors.PARSE_ERROR, None),
        ("\ufeff{}", errors.PARSE_ERROR, None),
        ("[]", errors.INVALID_REQUEST, None),
        ("3", errors.INVALID_REQUEST, None),
        ("{}", errors.INVALID_REQUEST, None),
        ('{"id":4}', errors.INVALID_REQUEST, 4),
        ('{"id":"a","method":5}', errors.INVALID_REQUEST, "a"),
        ('{"id":null,"method":"initialize"}', errors.INVALID_REQUEST, None),
        ('{"id":1.5,"method":"initialize"}', errors.INVALID_REQUEST, None),
        ('{"id":true,"method":"initialize"}', errors.INVALID_REQUEST, None),
        ('{"id":9223372036854775808,"method":"initialize"}', errors.INVALID_REQUEST, None),
    ],
)
def test_undispatchable_frames(frame: str, code: int, reply_id: object) -> None:
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(frame)
    assert caught.value.error.code == code
    assert caught.value.reply_id == reply_id


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_json_nested_too_deep_is_a_parse_error(opener: str) -> None:
    """Deeper than orjson's limit, the stdlib fallback would raise RecursionError: the frame is
    refused like any invalid JSON instead (found by the live fuzzer: it ended the connection)."""
    closer = "]" if opener == "[" else "}"
    frame = '{"id":1,"method":"m","params":' + opener * 5000 + "1" + closer * 5000 + "}"
    with pytest.raises(codec.DecodeError) as caught:
        codec.decode(frame)
    assert caught.value.error.code == errors.PARSE_ERROR
    assert "depth limit exceeded" in caught.value.error.message
    assert caught.value.reply_id is None


def test_classification() -> None:
    assert codec.decode('{"jsonrpc":"1.0","id":"","method":"m"}') == codec.Request("", "m", None)
    assert codec.decode('{"method":"initialized"}') == codec.Notification("initialized", None)
    assert isinstance(codec.decode('{"id":1,"result":{}}'), codec.Response)
    assert isinstance(codec.decode('{"id":1,"error":{}}'), codec.Response)
    big = codec.decode('{"id":9223372036854775807,"method":"m","params":{"waitMs":18446744073709551616}}')
    assert isinstance(big, codec.Request) and big.id == 2**63 - 1


def test_encoding_is_compact_with_the_reference_member_order() -> None:
    assert codec.encode_result(1, {}) == b'{"id":1,"result":{}}'
    assert (
        codec.encode_error(-1, errors.InvalidRequest("x"))
        == b'{"error":{"code":-32600,"message":"x"},"id":-1}'
    )
    assert codec.encode_notification("a", {"b": 1}) == b'{"method":"a","params":{"b":1}}'


@pytest.mark.parametrize(
    ("params", "cls", "text"),
    [
        (None, m.InitializeParams, "invalid type: null, expected struct InitializeParams"),
        ({}, m.InitializeParams, "missing field `clientName`"),
        ([], m.FsGetMetadataParams, "invalid length 0, expected struct FsGetMetadataParams with 2 elements"),
        ("/", m.FsGetMetadataParams, 'invalid type: string "/", expected struct FsGetMetadataParams'),
        ({"path": "rel"}, m.FsGetMetadataParams, "AbsolutePathBuf deserialized without a base path"),
        ({}, m.ProcessStartParams, "missing field `processId`"),
        ({"processId": 5}, m.ProcessReadParams, "invalid type: integer `5`, expected a string"),
        ({"processId": "p", "afterSeq": -1}, m.ProcessReadParams, "invalid value: integer `-1`, expected u64"),
        ({"processId": "p", "maxBytes": -1}, m.ProcessReadParams, "invalid value: integer `-1`, expected usize"),
        ({"processId": "p", "maxBytes": 1.5}, m.ProcessReadParams, "invalid type: floating point `1.5`, expected usize"),
        ({"processId": "p", "chunk": None}, m.ProcessWriteParams, "invalid type: null, expected a string"),
        (
            {"processId": "p", "argv": ["x"], "cwd": "/", "env": None, "tty": False},
            m.ProcessStartParams,
            "invalid type: null, expected a map",
        ),
        (
            {"processId": "p", "argv": ["x"], "cwd": "/", "env": {}, "tty": 1},
            m.ProcessStartParams,
            "invalid type: integer `1`, expected a boolean",
        ),
    ],
)
def test_param_errors_carry_the_serde_text(params: object, cls: type, text: str) -> None:
    with pytest.raises(errors.InvalidParams) as caught:
        structure_params(params, cls)
    assert caught.value.message == text


def test_spliced_values_come_back_as_pieces_around_their_text() -> None:
    """The encoder leaves `Spliced` text out of the document and hands back the bytes around
    each one and the text itself (the same object, uncopied), member order kept."""
    first, second = b"AAAA", b"QkJC"
    encoded = codec.encode_result(
        "r", {"before": 1, "a": codec.Spliced(first), "mid": [2], "b": codec.Spliced(second)}
    )
    assert isinstance(encoded, codec.Pieces)
    assert encoded.parts[1] is first and encoded.parts[3] is second
    wire = b"".join(encoded.parts)
    assert len(encoded) == len(wire)
    assert wire == b'{"id":"r","result":{"before":1,"a":"AAAA","mid":[2],"b":"QkJC"}}'
    assert codec.encode_result(1, {"x": "y"}) == b'{"id":1,"result":{"x":"y"}}'
    with pytest.raises(TypeError):
        codec.encode_result(1, {"x": object()})


def test_paths_are_normalised_lexically() -> None:
    assert structure_params({"path": "/../../etc//./x/../hostname"}, m.FsGetMetadataParams).path == "/etc/hostname"


def test_additive_members_are_omitted_while_none() -> None:
    result = m.ProcessReadResult(
        chunks=[], next_seq=1, exited=False, exit_code=None, closed=False, failure=None
    )
    assert list(unstructure(result)) == ["chunks", "nextSeq", "exited", "exitCode", "closed", "failure"]


@pytest.mark.parametrize(
    ("text", "message"),
    [  # each one observed on the reference server (codex 0.120.0, fs/writeFile)
        ("!", "Invalid symbol 33, offset 0."),
        ("aGVsbG8K\n", "Invalid symbol 10, offset 8."),
        ("aGVsbG8==", "Invalid symbol 61, offset 7."),
        ("aGVsbG8===", "Invalid symbol 61, offset 7."),
        ("aGk", "Invalid padding"),
        ("aGk==", "Invalid symbol 61, offset 3."),
        ("aGVs=", "Invalid symbol 61, offset 4."),
        ("aG=k", "Invalid symbol 61, offset 2."),
        ("a", "Invalid input length: 1"),
        ("aGVsbGxxx", "Invalid input length: 9"),
        ("aB==", "Invalid last symbol 66, offset 1."),
        ("aGVsbA===", "Invalid symbol 61, offset 6."),
        ("aGVsbA=", "Invalid padding"),
        ("aGVsbA", "Invalid padding"),
        ("aGVsbG8=a", "Invalid symbol 61, offset 7."),
        ("=", "Invalid symbol 61, offset 0."),
        ("==", "Invalid symbol 61, offset 0."),
    ],
)
def test_base64_errors_have_the_reference_text(text: str, message: str) -> None:
    with pytest.raises(b64.Base64Error) as caught:
        b64.decode(text)
    assert str(caught.value) == message


@given(st.binary(max_size=300))
def test_base64_round_trip(data: bytes) -> None:
    assert b64.decode(b64.encode(data)) == data
    assert orjson.loads(orjson.dumps(b64.encode(data))) == b64.encode(data)


def test_params_built_without_newer_members_do_not_look_like_the_newer_dialect() -> None:
    """The daemon reads the dialect from which members are present; the client's own
    unstructured 0.120 params must not carry a 0.169-only member, even as `null`."""
    from trio_exec.proto.dialect import SIGNAL_MEMBERS

    for params in (
        m.ProcessStartParams(process_id="p", argv=["true"], cwd="/", env={}, tty=False),
        m.ProcessWriteParams(process_id="p", chunk=""),
        m.FsReadFileParams(path="/etc/hostname"),  # type: ignore[arg-type]
        m.FsCopyParams(source_path="/a", destination_path="/b", recursive=True),  # type: ignore[arg-type]
    ):
        assert SIGNAL_MEMBERS.isdisjoint(unstructure(params)), params
