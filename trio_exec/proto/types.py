"""Wire scalar types that the message classes name, so the converter can check their ranges.

Rule: a message field's Python type says everything the converter needs to accept or refuse a
value with the reference's (serde's) error text: `U64` refuses negatives as `expected u64`,
`Usize` as `expected usize`, and so on. They are `NewType`s: plain `int` at run time.
"""

from typing import NewType

U64 = NewType("U64", int)
Usize = NewType("Usize", int)
I64 = NewType("I64", int)
I32 = NewType("I32", int)
U16 = NewType("U16", int)

#: An absolute path (the reference's `AbsolutePathBuf`); relative paths are refused.
AbsPath = NewType("AbsPath", str)
#: A working directory: a `file:` URI (0.169) or a plain path, relative ones allowed (0.120).
CwdPath = NewType("CwdPath", str)

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
