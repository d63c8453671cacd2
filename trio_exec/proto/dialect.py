"""Which protocol dialect a request speaks: codex 0.120 or codex 0.169, decided per request.

The rule (docs/protocol-dialects.md §9.2; contract §4: never by configuration):
- A request is 0.169 when its method exists only in the 0.169 dialect, when its params carry
  a 0.169-only member (`sandbox`, `envPolicy`, `writeId`, `metadata`, `enforceManagedNetwork`,
  `managedNetwork`), or when any of its path members is a `file:` URI. Otherwise it is 0.120
  (compatibility first: `initialize` and requests without a signal are 0.120).
- Path members are parsed per member: `file:` → a URI (0.169 rules and texts), `/…` → a plain
  0.120 path; anything else is refused with the text of the request's dialect as known when
  the member is parsed (the member scan above runs before structuring).
- Paths in a result take the form the request used: URIs if it sent a URI, plain if it sent a
  plain path, URIs for a 0.169 request that sent no path at all.
- A process keeps the dialect of its `process/start` (see `ManagedProcess.dialect`); reads,
  writes and notifications of that process follow it, not the dialect of the later request.

The dispatcher opens a `scope()` around structuring and the handler; code below it reads
`current()`. The path hooks of the converter call `note_path()`.
Nothing here imports trio.
"""

from __future__ import annotations

import contextlib
import contextvars
import enum
from collections.abc import Iterator

import attrs

from . import uri


class Dialect(enum.Enum):
    V0120 = "0.120"
    V0169 = "0.169"


#: Members only a 0.169 client sends (`pipeStdin` is left out: it is also a 0.120 extension).
SIGNAL_MEMBERS = frozenset(
    {"sandbox", "envPolicy", "writeId", "metadata", "enforceManagedNetwork", "managedNetwork"}
)


@attrs.define
class RequestForm:
    """What one request told us about its dialect. Mutable: path members refine it."""

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


def detect(raw_params: object, *, method_is_v0169: bool) -> RequestForm:
    """The dialect known before structuring: method and member names."""
    signal = method_is_v0169 or (
        isinstance(raw_params, dict) and not SIGNAL_MEMBERS.isdisjoint(raw_params)
    )
    return RequestForm(Dialect.V0169 if signal else Dialect.V0120)


_CURRENT: contextvars.ContextVar[RequestForm] = contextvars.ContextVar("trio_exec_request_form")


def current() -> RequestForm:
    """The form of the request being handled (a fresh 0.120 one outside any request)."""
    try:
        return _CURRENT.get()
    except LookupError:
        return RequestForm()


@contextlib.contextmanager
def scope(form: RequestForm) -> Iterator[RequestForm]:
    token = _CURRENT.set(form)
    try:
        yield form
    finally:
        _CURRENT.reset(token)


def note_path(*, is_uri: bool) -> None:
    """Record that a path member of the current request was a URI (0.169) or a plain path."""
    form = _CURRENT.get(None)
    if form is None:
        return
    if is_uri:
        form.uri_paths = True
        form.dialect = Dialect.V0169
    else:
        form.plain_paths = True
