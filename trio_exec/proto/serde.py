"""What the reference's deserializers (serde, `AbsolutePathBuf`) say about a refused value,
and what they do to an absolute path.

Rules:
- A refused value is described as serde's `Unexpected` does: `null`, ``boolean `true` ``,
  ``integer `5` ``, ``floating point `1.5` ``, `string "x"` (JSON-quoted), `sequence`, `map`;
  an integer outside the i64/u64 range is a floating point, as JSON parsers read it there.
- `invalid_type` is the one builder of ``invalid type: <value>, expected <what>``
  (-32602); every module that refuses a value's type uses it.
- An absolute path is normalised lexically, as `AbsolutePathBuf` does before the kernel sees
  it; a relative one is refused with `RELATIVE_PATH_TEXT`.

A leaf of `proto/`: it imports only the error classes. Nothing here imports trio.
"""

from __future__ import annotations

import json

from trio_exec.proto.errors import InvalidParams

RELATIVE_PATH_TEXT = "AbsolutePathBuf deserialized without a base path"


def describe(value: object) -> str:
    """serde's `Unexpected` text for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        if value > 2**64 - 1 or value < -(2**63):
            return f"floating point `{float(value)!r}`"
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value!r}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def invalid_type(value: object, expected: str) -> InvalidParams:
    return InvalidParams(f"invalid type: {describe(value)}, expected {expected}")


def normalize_abs_path(path: str) -> str:
    """Lexical normalisation, as the reference does before the kernel sees the path:
    `.` and empty parts dropped, `..` removes the previous part (never above `/`)."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)
