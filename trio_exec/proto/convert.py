"""The cattrs converters between wire JSON values and the attrs message classes (one per
dialect, made by one factory).

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
  (structured as a `UriPath`) or a plain path (a plain `str`); a refused one gets the text of
  the request's dialect (see `proto/dialect.py`). There are two converters, one per dialect,
  made by one factory and differing only there: `structure_params` takes the dialect known
  before structuring. In the 0.120 converter, the members of an object that follow a member
  holding a URI are structured by the 0.169 converter (the dialect as known when they are
  parsed). Structuring has no side effect: the request's form is read from the result.
- A message class may name its Rust counterpart with `__rust_name__` and its field count with
  `__rust_len__` (only the error texts use them); `__rust_required_len__` is how many leading
  elements its array form needs when serde has defaults for the trailing fields.

The converters are built above the message modules (`messages.py` registers their hooks);
nothing in them imports this module. Nothing here imports trio.
"""

from __future__ import annotations

import functools
import posixpath
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs
import cattrs

from trio_exec.proto import dialect, messages, uri
from trio_exec.proto.dialect import Dialect
from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.serde import RELATIVE_PATH_TEXT, invalid_type, normalize_abs_path
from trio_exec.proto.types import INT_RANGES, AbsPath, CwdPath, Spliced, UriPath, Wire


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get("wire", camel(field.name)))


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


def _structure_abs_path(v0169: bool, value: object, _: object) -> str:
    if not isinstance(value, str):
        raise invalid_type(value, "path string")
    if uri.is_uri(value):
        path = uri.from_uri(value)
        return UriPath(normalize_abs_path(path))
    if not posixpath.isabs(value):
        if v0169:
            raise uri.parse_scheme_error(value)
        raise InvalidParams(RELATIVE_PATH_TEXT)
    return normalize_abs_path(value)


def _structure_cwd_path(v0169: bool, value: object, _: object) -> str:
    if not isinstance(value, str):
        raise invalid_type(value, "a string")
    if uri.is_uri(value):
        path = uri.from_uri(value)
        return UriPath(normalize_abs_path(path))
    if v0169 and not posixpath.isabs(value):
        raise uri.parse_scheme_error(value)
    return value


def _is_optional(tp: object) -> bool:
    origin = typing.get_origin(tp)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def _is_str_map(tp: object) -> bool:
    return typing.get_origin(tp) is dict


def _is_list(tp: object) -> bool:
    return typing.get_origin(tp) is list


def make_converter(
    spoken: Dialect, after_uri: cattrs.Converter | None = None
) -> cattrs.Converter:
    """Build the converter of the dialect `spoken`. Message modules register their own special
    hooks (tagged unions) through `register_message_hooks`, called here, so both converters
    are made the same way. `after_uri` (the 0.169 converter, for the 0.120 one) structures the
    members of an object that follow a member holding a URI."""
    conv = cattrs.Converter()
    v0169 = spoken is Dialect.V0169
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(bool, _structure_bool)
    for kind in INT_RANGES:
        conv.register_structure_hook(kind, _int_hook(kind))
    conv.register_structure_hook(AbsPath, functools.partial(_structure_abs_path, v0169))
    conv.register_structure_hook(CwdPath, functools.partial(_structure_cwd_path, v0169))

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
    conv.register_structure_hook_factory(
        attrs.has, functools.partial(_attrs_structure_hook, conv, after_uri)
    )
    conv.register_unstructure_hook_factory(
        attrs.has, functools.partial(_attrs_unstructure_hook, conv)
    )
    conv.register_unstructure_hook(Spliced, lambda value: value)  # the codec splices it in
    conv.register_unstructure_hook(Wire, lambda wire: wire.value)  # built as the wire's form
    messages.register_message_hooks(conv)
    return conv


def _attrs_structure_hook(
    conv: cattrs.Converter, after_uri: cattrs.Converter | None, cls: type
) -> Callable[[object, object], Any]:
    attrs.resolve_types(cls)
    fields = attrs.fields(cls)
    #: The path-bearing members: after one holding a URI, `after_uri` structures the rest.
    finders: dict[str, dialect.PathFinder] = {}
    if after_uri is not None:
        finders = {f.name: finder for f in fields if (finder := dialect.path_finder(f.type))}
    then = after_uri or conv
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
        member_conv = conv
        for key, item in value.items():
            field = by_wire.get(key)
            if field is None or field.name in kwargs:
                continue
            member = kwargs[field.name] = member_conv.structure(item, field.type)
            finder = finders.get(field.name)
            if finder is not None and dialect.has_uri_path(member, finder):
                member_conv = then
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


_CONVERTER_0169 = make_converter(Dialect.V0169)
#: The 0.120 dialect's converter: the one for results, notifications and lone values.
CONVERTER = make_converter(Dialect.V0120, after_uri=_CONVERTER_0169)
CONVERTERS = {Dialect.V0120: CONVERTER, Dialect.V0169: _CONVERTER_0169}


T = typing.TypeVar("T")


def structure_params(params: object, cls: type[T], spoken: Dialect = Dialect.V0120) -> T:
    """Params of a request → its message class, or `InvalidParams` with the serde text of
    the dialect `spoken` (the one known before structuring, `dialect.detect`)."""
    try:
        return CONVERTERS[spoken].structure(params, cls)
    except InvalidParams:
        raise
    except (cattrs.BaseValidationError, TypeError, ValueError) as exc:  # pragma: no cover
        raise InvalidParams(str(exc)) from exc


def unstructure(obj: object) -> Any:
    return CONVERTER.unstructure(obj)
