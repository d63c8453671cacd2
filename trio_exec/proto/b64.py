"""Standard padded base64, with the reference server's decoder error texts.

Rule: encoding and the success path of decoding are a maintained C library (pybase64); only a
refused input is examined here, to explain it the way the reference's decoder does
(`Invalid symbol 33, offset 0.`, `Invalid padding`, `Invalid last symbol 66, offset 2.`).
"""

from __future__ import annotations

import binascii

import pybase64

from trio_exec.proto.errors import InvalidParams

_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
_VALUES = {c: i for i, c in enumerate(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


#: How many `=` a final group of 0, 2 or 3 symbols takes.
_PADDING_WANTED = {0: 0, 2: 2, 3: 1}


class Base64Error(ValueError):
    """`str(err)` is the decoder text clients see."""


def decode_chunk(text: str) -> bytes:
    """A `chunk` member: refused with -32602 and the bare decoder text, as the reference."""
    try:
        return decode(text)
    except Base64Error as exc:
        raise InvalidParams(str(exc)) from None


def encode(data: bytes) -> str:
    return pybase64.b64encode_as_string(data)


def encode_bytes(data: bytes) -> bytes:
    """The same text as `encode`, as bytes (for a `codec.Spliced` member)."""
    return pybase64.b64encode(data)


def decode(text: str) -> bytes:
    """Strings go to the C decoder as they are: no copy of a large payload in Python."""
    try:
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    else:
        # pybase64 accepts non-zero unused bits in the last symbol; the reference does not.
        # Valid input is whole quanta, so the last four symbols decide (no copy of the rest).
        if not text.endswith("=") or _last_symbol_error(text[-4:].encode("ascii")) is None:
            return data
    raise Base64Error(explain(text.encode("utf-8")))


def _last_symbol_error(raw: bytes) -> str | None:
    """The text for a final symbol whose unused bits are not zero, in well-padded `raw`."""
    data_len = len(raw.rstrip(b"="))
    remainder = data_len % 4
    if not remainder:
        return None
    last = raw[data_len - 1]
    unused_bits = 4 if remainder == 2 else 2
    if _VALUES[last] & ((1 << unused_bits) - 1):
        return f"Invalid last symbol {last}, offset {data_len - 1}."
    return None


def explain(raw: bytes) -> str:
    """Why the reference's decoder refuses `raw` (which pybase64 already refused)."""
    data_len = raw.find(b"=")
    if data_len < 0:
        data_len = len(raw)
    for offset in range(data_len):
        if raw[offset] not in _ALPHABET:
            return f"Invalid symbol {raw[offset]}, offset {offset}."
    if any(byte != ord("=") for byte in raw[data_len:]):
        return f"Invalid symbol {ord('=')}, offset {data_len}."
    remainder = data_len % 4
    if remainder == 1:
        return f"Invalid input length: {len(raw)}"
    padding, wanted = len(raw) - data_len, _PADDING_WANTED[remainder]
    if padding > wanted:
        return f"Invalid symbol {ord('=')}, offset {data_len}."
    if padding < wanted:
        return "Invalid padding"
    return _last_symbol_error(raw) or "Invalid padding"
