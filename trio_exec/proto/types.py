"""Wire scalar types that the message classes name, so the converter can check their ranges.

Rule: a message field's Python type says everything the converter needs to accept or refuse a
value with the reference's (serde's) error text: `U64` refuses negatives as `expected u64`,
`Usize` as `expected usize`, and so on. They are `NewType`s: plain `int` at run time.

Three value types mark what a member was on the wire: `UriPath`, a path member the client sent
as a `file:` URI (still the plain path, a `str`); `Spliced`, a result member the codec splices
into the reply as it is; `Wire`, a result already in its wire form, passed through unconverted.
A leaf of `proto/`: it imports nothing of the package.
"""

from typing import Generic, NewType, TypeVar

U64 = NewType("U64", int)
Usize = NewType("Usize", int)
I64 = NewType("I64", int)
I32 = NewType("I32", int)
U16 = NewType("U16", int)

#: An absolute path (the reference's `AbsolutePathBuf`); relative paths are refused.
AbsPath = NewType("AbsPath", str)
#: A working directory: a `file:` URI (0.169) or a plain path, relative ones allowed (0.120).
CwdPath = NewType("CwdPath", str)


class UriPath(str):
    """A path member that was sent as a `file:` URI: the plain path it names, marked so the
    request's form (`proto/dialect.py`) can tell. Services see an ordinary `str`."""

    __slots__ = ()


class Spliced:
    """A JSON string value given as bytes that need no escaping (base64 text)."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


#: The message class a `Wire` value stands for.
M = TypeVar("M")


class Wire(Generic[M]):
    """A value already in its wire form (JSON types, wire member names), built directly where
    the schema is fixed and the result is large; the converter passes it through as it is.
    Each use has a test that it equals the converter's output for the same result. Its type
    argument names the message class it stands for (`Wire[InitializeResult]`)."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value


INT_RANGES: dict[object, tuple[str, int, int]] = {
    U64: ("u64", 0, 2**64 - 1),
    Usize: ("usize", 0, 2**64 - 1),
    I64: ("i64", -(2**63), 2**63 - 1),
    I32: ("i32", -(2**31), 2**31 - 1),
    U16: ("u16", 0, 2**16 - 1),
}


def omit_if_none() -> dict[str, bool]:
    """Field metadata for an additive member that is left out of a result while it is None."""
    return {"omit_if_none": True}
