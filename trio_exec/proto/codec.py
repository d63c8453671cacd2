"""The pure codec: one WebSocket frame ↔ one message object.

Rules (the contract's fixes of the reference's oddities 4 and 7):
- invalid JSON → `DecodeError` carrying -32700, reply id `null`;
- valid JSON that is not a request, a notification or a response → -32600, reply id `null`, or
  the object's own id when it is usable (a string, or an integer in the i64 range);
- a `method` with an unusable id (`null`, float, bool, …) → -32600 with id `null`;
- a `method` without `id` is a notification; `{"id", "result"|"error"}` is a response.
The `"jsonrpc"` member is ignored on input and never written. Output is compact JSON with the
reference's member order (`error` before `id`).

A result may carry `Spliced` members (base64 text as bytes): the encoder leaves them out and
the message comes back as `Pieces`, the bytes around each one and the text itself, uncopied.
A 700 MB `fs/readFile` result is then never scanned, copied or held twice on the event loop
(orjson would spend half a second there, with the GIL held).

Inbound, the same idea in reverse (`_loads_lifted`): orjson builds a long string at ~1.5 GB/s,
so in a large frame (`fs/writeFile`, `fs/writeBlock`, `process/write`) the one long member of
`params` (or `result`) is taken out of the frame as it is when it is base64 text, and orjson
parses the rest. The outcome equals `orjson.loads` of the whole frame, or the whole frame is
parsed: see the function for why.
"""

from __future__ import annotations

import binascii
import json
import secrets
from typing import Any

import attrs
import orjson
import pybase64

from trio_exec.proto.errors import InvalidRequest, ParseError, RpcError
from trio_exec.proto.types import Spliced as Spliced  # defined with the other wire value types

Id = int | str

I64_MIN, I64_MAX = -(2**63), 2**63 - 1


@attrs.frozen
class Request:
    id: Id
    method: str
    params: Any


@attrs.frozen
class Notification:
    method: str
    params: Any


@attrs.frozen
class Response:
    """A client's response or error object (the server never sends requests; it ignores these)."""

    id: Any
    result: Any = None
    error: Any = None


Message = Request | Notification | Response


class DecodeError(Exception):
    """A frame that cannot be dispatched; reply with `error` under `reply_id`."""

    def __init__(self, error: RpcError, reply_id: Id | None) -> None:
        super().__init__(error.message)
        self.error = error
        self.reply_id = reply_id


def usable_id(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return True
    return isinstance(value, int) and I64_MIN <= value <= I64_MAX


#: A frame at least this long is looked at for a long base64 member (`_loads_lifted`).
LIFT_MIN = 64 * 1024
#: How many string literals are looked at, from the start of the frame, for the long one.
_LIFT_SEARCH = 64
#: Stands for the lifted member while the rest is parsed; random and never seen by a client.
_LIFT_MARK = "lifted-" + secrets.token_hex(16)
_LIFT_SLOTS = ("params", "result")


def _loads_lifted(frame: str) -> Any | None:
    """`orjson.loads(frame)` when the frame's first long string literal is base64 text and a
    direct member of `params` or `result`; None when the frame is not like that.

    The text between two quotes, `frame[start + 1:end]`, is replaced by a random mark and the
    rest parsed; the mark must then come back as the value of one member of `params` (or
    `result`), and appear once in the rest. Then the two quotes are the delimiters of that
    string for any JSON parser (the text before them is the same in both), and the text between
    them, valid base64, holds no quote, backslash or control character: it is the string's
    value as it is, and the whole frame parses to the same value with it put back. Anything
    else (no such string, not base64, an invalid rest, the mark elsewhere) returns None and the
    frame is parsed whole, errors and their texts included."""
    end = -1
    for _ in range(_LIFT_SEARCH):
        start = frame.find('"', end + 1)
        end = frame.find('"', start + 1) if start >= 0 else -1
        if end < 0:
            return None
        if end - start > LIFT_MIN:
            break
    else:
        return None
    text = frame[start + 1 : end]
    try:
        pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    rest = f"{frame[: start + 1]}{_LIFT_MARK}{frame[end:]}"
    if rest.count(_LIFT_MARK) != 1:
        return None
    try:
        value = orjson.loads(rest)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    for slot in _LIFT_SLOTS:
        members = value.get(slot)
        if isinstance(members, dict):
            for name, member in members.items():
                if member == _LIFT_MARK:
                    members[name] = text
                    return value
    return None


def loads(frame: str | bytes) -> Any:
    """JSON → Python; orjson first, the stdlib for what orjson refuses (integers beyond 64 bits).
    Raises `DecodeError` (-32700) for anything that is not one JSON value, including values
    nested deeper than orjson's limit (the stdlib would exhaust the interpreter's stack there).
    A large text frame with a long base64 member is parsed faster (`_loads_lifted`)."""
    if isinstance(frame, str) and len(frame) >= LIFT_MIN:
        lifted = _loads_lifted(frame)
        if lifted is not None:
            return lifted
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as fast_error:
        try:
            return json.loads(frame)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise DecodeError(
                ParseError(f"failed to parse JSON-RPC message: {fast_error}"), None
            ) from None


def decode(frame: str | bytes) -> Message:
    value = loads(frame)
    if not isinstance(value, dict):
        raise DecodeError(InvalidRequest("message must be a JSON object"), None)
    raw_id = value.get("id")
    has_id = "id" in value
    reply_id = raw_id if usable_id(raw_id) else None
    if "method" in value:
        method = value["method"]
        if not isinstance(method, str):
            raise DecodeError(InvalidRequest("`method` must be a string"), reply_id)
        params = value.get("params")
        if not has_id:
            return Notification(method, params)
        if reply_id is None:
            raise DecodeError(
                InvalidRequest("request id must be a string or an integer in the i64 range"), None
            )
        return Request(reply_id, method, params)
    if has_id and ("result" in value or "error" in value):
        return Response(raw_id, value.get("result"), value.get("error"))
    raise DecodeError(
        InvalidRequest("message is neither a request, a notification nor a response"), reply_id
    )


@attrs.frozen
class Pieces:
    """One encoded message as consecutive byte strings (they go out as one frame)."""

    parts: tuple[bytes, ...]

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)


#: What the encoders produce: one byte string, or `Pieces` when a result carried `Spliced`.
Encoded = bytes | Pieces

#: Stands for a `Spliced` value while the rest is encoded; random and never sent.
#: The daemon's default limit on one inbound message (`serve --max-message-size`); the client
#: checks its requests against the same figure unless told another.
DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024

_SPLICE_MARK = "splice-" + secrets.token_hex(16)


def encode_result(request_id: Id, result: Any) -> Encoded:
    spliced: list[bytes] = []

    def splice(value: object) -> str:
        if isinstance(value, Spliced):
            spliced.append(value.text)
            return _SPLICE_MARK
        raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")

    encoded = orjson.dumps({"id": request_id, "result": result}, default=splice)
    if not spliced:
        return encoded
    around = encoded.split(_SPLICE_MARK.encode())
    assert len(around) == len(spliced) + 1
    parts = [around[0]]
    for text, after in zip(spliced, around[1:], strict=True):
        parts += (text, after)
    return Pieces(tuple(parts))


def encode_error(request_id: Id | None, error: RpcError) -> bytes:
    return orjson.dumps({"error": error.to_wire(), "id": request_id})


def encode_notification(method: str, params: Any) -> bytes:
    return orjson.dumps({"method": method, "params": params})


def encode_request(request_id: Id, method: str, params: Any) -> bytes:
    return orjson.dumps({"id": request_id, "method": method, "params": params})
