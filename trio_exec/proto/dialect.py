"""Which protocol dialect a request speaks: codex 0.120 or codex 0.169, decided per request.

The rule (docs/protocol-dialects.md §9.2; contract §4: never by configuration):
- A request is 0.169 when its method exists only in the 0.169 dialect, when its params carry
  a 0.169-only member (`sandbox`, `envPolicy`, `writeId`, `metadata`, `enforceManagedNetwork`,
  `managedNetwork`), or when any of its path members is a `file:` URI. Otherwise it is 0.120
  (compatibility first: `initialize` and requests without a signal are 0.120).
- Path members are parsed per member: `file:` → a URI (0.169 rules and texts), `/…` → a plain
  0.120 path; anything else is refused with the text of the request's dialect as known when
  the member is parsed: the dialect of the method and the member names (`detect`, before
  structuring), or 0.169 once an earlier member of the same object was a URI.
- Paths in a result take the form the request used: URIs if it sent a URI, plain if it sent a
  plain path, URIs for a 0.169 request that sent no path at all.
- A process keeps the dialect of its `process/start` (see `ManagedProcess.dialect`); reads,
  writes and notifications of that process follow it, not the dialect of the later request.

How the form is computed, with no state: `detect` reads the method and the raw params' member
names; the params are structured by the converter of that dialect (`convert.structure_params`),
whose path hooks return a `UriPath` for a URI member and a plain `str` for a plain one (the
0.120 converter hands the members after a URI member to the 0.169 one); `form` then reads the
structured params' path members (`path_members`: each message class's path-bearing fields,
found once from its annotations, through nested message classes, optional members and lists)
and gives the request's `RequestForm`. The dispatcher puts it on the `CallContext` (`ctx.form`),
where the handlers read it.
Nothing here imports trio.
"""

from __future__ import annotations

import enum
import functools
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from trio_exec.proto import uri
from trio_exec.proto.types import AbsPath, CwdPath, UriPath


class Dialect(enum.Enum):
    V0120 = "0.120"
    V0169 = "0.169"


#: Members only a 0.169 client sends (`pipeStdin` is left out: it is also a 0.120 extension).
SIGNAL_MEMBERS = frozenset(
    {"sandbox", "envPolicy", "writeId", "metadata", "enforceManagedNetwork", "managedNetwork"}
)

#: The member types that hold a path in either form.
PATH_TYPES = (AbsPath, CwdPath)


@attrs.frozen
class RequestForm:
    """What one request told us about its dialect: its method and members, its path members."""

    dialect: Dialect = Dialect.V0120
    uri_paths: bool = False
    plain_paths: bool = False

    @property
    def is_v0169(self) -> bool:
        return self.dialect is Dialect.V0169

    def path_out(self, path: str) -> str:
        """`path` in the form this request's client uses."""
        if self.uri_paths or (self.is_v0169 and not self.plain_paths):
            return uri.to_uri(path)
        return path


#: The form of a 0.120 request without path members (and of a call made outside a request).
PLAIN = RequestForm()


def detect(raw_params: object, *, method_is_v0169: bool) -> Dialect:
    """The dialect known before structuring: method and member names."""
    signal = method_is_v0169 or (
        isinstance(raw_params, dict) and not SIGNAL_MEMBERS.isdisjoint(raw_params)
    )
    return Dialect.V0169 if signal else Dialect.V0120


def form(detected: Dialect, params: object) -> RequestForm:
    """The request's form: `detected` (from `detect`) refined by its structured path members."""
    uri_paths = plain_paths = False
    for path in path_members(params):
        if isinstance(path, UriPath):
            uri_paths = True
        else:
            plain_paths = True
    if uri_paths:
        detected = Dialect.V0169
    if detected is Dialect.V0120 and not plain_paths:
        return PLAIN
    return RequestForm(detected, uri_paths, plain_paths)


# --- where the path members are --------------------------------------------------------------

#: Appends the path members found in a value to a list.
PathFinder = Callable[[object, list[str]], None]


def path_members(value: object) -> list[str]:
    """The path members of a structured message object, in field order."""
    found: list[str] = []
    cls: Any = type(value)
    finder = path_finder(cls)
    if finder is not None:
        finder(value, found)
    return found


def has_uri_path(value: object, finder: PathFinder) -> bool:
    """Whether `value`, whose path members `finder` finds, holds a URI-form path."""
    found: list[str] = []
    finder(value, found)
    return any(isinstance(path, UriPath) for path in found)


@functools.cache
def path_finder(tp: Any) -> PathFinder | None:
    """How to find the path members in a value of type `tp`; None when it cannot hold one."""
    if tp in PATH_TYPES:
        return _append_path
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        finders = [f for arg in args if arg is not type(None) and (f := path_finder(arg))]
        if not finders:
            return None
        if len(finders) > 1:
            raise TypeError(f"{tp}: a union of several path-bearing types is not supported")
        return functools.partial(_unless_none, finders[0])
    if origin is list:
        item_finder = path_finder(args[0])
        return None if item_finder is None else functools.partial(_each_item, item_finder)
    if isinstance(tp, type) and attrs.has(tp):
        attrs.resolve_types(tp)
        fields = tuple(
            (field.name, finder)
            for field in attrs.fields(tp)
            if (finder := path_finder(field.type)) is not None
        )
        return functools.partial(_each_field, fields) if fields else None
    return None


def _append_path(value: object, found: list[str]) -> None:
    assert isinstance(value, str)
    found.append(value)


def _unless_none(finder: PathFinder, value: object, found: list[str]) -> None:
    if value is not None:
        finder(value, found)


def _each_item(finder: PathFinder, value: object, found: list[str]) -> None:
    assert isinstance(value, list)
    for item in value:
        finder(item, found)


def _each_field(
    fields: tuple[tuple[str, PathFinder], ...], value: object, found: list[str]
) -> None:
    for name, finder in fields:
        finder(getattr(value, name), found)
