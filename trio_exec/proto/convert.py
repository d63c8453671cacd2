"""The one cattrs converter between wire JSON values and the attrs message classes.

Rules:
- Python fields are snake_case; the wire name is the camelCase of the field name unless the
  field's metadata says `wire=...`.
- Structuring refuses bad input with `InvalidParams` carrying the reference server's (serde's)
  text verbatim: ``missing field `processId` ``, ``invalid type: integer `5`, expected a string``,
  ``invalid value: integer `-1`, expected u64``, `invalid type: null, expected struct ExecParams`.
  Clients and the differential tests match on these texts.
- Map members are checked in the order the client sent them (the first bad one wins), then the
  missing required fields in declaration order, as serde does. Unknown members are ignored.
- "Absent" and "null" are the same for `X | None` fields; a field with `omit_if_none` metadata
  is left out of an unstructured result when it is None (the additive extension members).
- Path members (`AbsPath`, `CwdPath`) accept both dialects' forms, per member: a `file:` URI
  or a plain path; each one tells `dialect.note_path` which form it was, and a refused one gets
  the text of the request's dialect (see `proto/dialect.py`).
- A message class may name its Rust counterpart with `__rust_name__` and its field count with
  `__rust_len__` (only the error texts use them); `__rust_required_len__` is how many leading
  elements its array form needs when serde has defaults for the trailing fields.

Nothing here imports trio.
"""

from __future__ import annotations

import functools
import json
import posixpath
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs

from . import dialect, uri
from .errors import InvalidParams
from .types import INT_RANGES, AbsPath, CwdPath

RELATIVE_PATH_TEXT = "AbsolutePathBuf deserialized without a base path"


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get("wire", camel(field.name)))


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


def _structure_str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise invalid_type(value, "a string")
    return value


def _structure_bool(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(value, "a boolean")
    return value


def _int_hook(kind: object) -> Callable[[object, object], int]:
    label, low, high = INT_RANGES[kind]

    def structure(value: object, _: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(value, label)
        if value > 2**64 - 1 or value < -(2**63):
            raise invalid_type(value, label)
        if not low <= value <= high:
            raise InvalidParams(f"invalid value: integer `{value}`, expected {label}")
        return value

    return structure


def _structure_abs_path(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise invalid_type(value, "path string")
    if uri.is_uri(value):
        path = uri.from_uri(value)
        dialect.note_path(is_uri=True)
        return normalize_abs_path(path)
    if not posixpath.isabs(value):
        if dialect.current().is_v0169:
            raise uri.parse_scheme_error(value)
        raise InvalidParams(RELATIVE_PATH_TEXT)
    dialect.note_path(is_uri=False)
    return normalize_abs_path(value)


def _structure_cwd_path(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise invalid_type(value, "a string")
    if uri.is_uri(value):
        path = uri.from_uri(value)
        dialect.note_path(is_uri=True)
        return normalize_abs_path(path)
    if dialect.current().is_v0169 and not posixpath.isabs(value):
        raise uri.parse_scheme_error(value)
    dialect.note_path(is_uri=False)
    return value


def _is_optional(tp: object) -> bool:
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _is_str_map(tp: object) -> bool:
    return typing.get_origin(tp) is dict


def _is_list(tp: object) -> bool:
    return typing.get_origin(tp) is list


def make_converter() -> cattrs.Converter:
    """Build the converter. Message modules register their own special hooks (tagged unions)
    through `register_message_hooks`, called here, so there is exactly one converter."""
    conv = cattrs.Converter()
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    for kind in INT_RANGES:
        conv.register_structure_hook(kind, _int_hook(kind))
    conv.register_structure_hook(AbsPath, _structure_abs_path)
    conv.register_structure_hook(CwdPath, _structure_cwd_path)

    def structure_optional(value: object, tp: object) -> object:
        if value is None:
            return None
        (inner,) = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return conv.structure(value, inner)

    def structure_map(value: object, tp: object) -> dict[str, object]:
        if not isinstance(value, dict):
            raise invalid_type(value, "a map")
        _, value_type = typing.get_args(tp)
        return {key: conv.structure(item, value_type) for key, item in value.items()}

    def structure_list(value: object, tp: object) -> list[object]:
        if not isinstance(value, list):
            raise invalid_type(value, "a sequence")
        (item_type,) = typing.get_args(tp)
        return [conv.structure(item, item_type) for item in value]

    conv.register_structure_hook_func(_is_optional, structure_optional)
    conv.register_structure_hook_func(_is_str_map, structure_map)
    conv.register_structure_hook_func(_is_list, structure_list)
    conv.register_structure_hook_factory(attrs.has, functools.partial(_attrs_structure_hook, conv))
    conv.register_unstructure_hook_factory(
        attrs.has, functools.partial(_attrs_unstructure_hook, conv)
    )

    from .codec import Spliced

    conv.register_unstructure_hook(Spliced, lambda value: value)  # the codec splices it in

    from . import messages  # registers the tagged unions of the message modules

    messages.register_message_hooks(conv)
    return conv


def _attrs_structure_hook(conv: cattrs.Converter, cls: type) -> Callable[[object, object], Any]:
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    by_wire = {wire_name(f): f for f in fields}
    rust_name = getattr(cls, "__rust_name__", cls.__name__)
    rust_len = getattr(cls, "__rust_len__", len(fields))
    # a struct in array form may end early only where serde has defaults for the rest
    required_len = getattr(cls, "__rust_required_len__", rust_len)
    expected = f"struct {rust_name}"

    def structure(value: object, _: object) -> Any:
        if isinstance(value, list):
            if len(value) < required_len:
                noun = "element" if rust_len == 1 else "elements"
                raise InvalidParams(
                    f"invalid length {len(value)}, expected {expected} with {rust_len} {noun}"
                )
            value = {wire_name(f): item for f, item in zip(fields, value, strict=False)}
        if not isinstance(value, dict):
            raise invalid_type(value, expected)
        kwargs: dict[str, object] = {}
        for key, item in value.items():
            field = by_wire.get(key)
            if field is None or field.name in kwargs:
                continue
            kwargs[field.name] = conv.structure(item, field.type)
        for field in fields:
            if field.name not in kwargs and field.default is attrs.NOTHING:
                if _is_optional(field.type):
                    kwargs[field.name] = None
                else:
                    raise InvalidParams(f"missing field `{wire_name(field)}`")
        return cls(**kwargs)

    return structure


def _attrs_unstructure_hook(conv: cattrs.Converter, cls: type) -> Callable[[Any], dict[str, Any]]:
    attrs.resolve_types(cls)
    plan = [(f.name, wire_name(f), bool(f.metadata.get("omit_if_none"))) for f in attrs.fields(cls)]

    def unstructure(obj: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, wire, omit_if_none in plan:
            value = getattr(obj, name)
            if value is None and omit_if_none:
                continue
            out[wire] = conv.unstructure(value)
        return out

    return unstructure


CONVERTER = make_converter()


T = typing.TypeVar("T")


def structure_params(params: object, cls: type[T]) -> T:
    """Params of a request → its message class, or `InvalidParams` with the serde text."""
    try:
        return CONVERTER.structure(params, cls)
    except InvalidParams:
        raise
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:  # pragma: no cover
        raise InvalidParams(str(exc)) from exc


def unstructure(obj: object) -> Any:
    return CONVERTER.unstructure(obj)
