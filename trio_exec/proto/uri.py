"""`file://` path URIs, the 0.169 dialect's form of every path member.

Rules (the 0.169 reference's observed parsing, docs/protocol-dialects.md §5.1):
- Only strings starting with `file:` are URIs here; the caller decides what else is.
- Leading and trailing C0 controls and spaces are dropped first (as a WHATWG parser does).
- Refusals, in this order, with the reference's texts: another scheme → -32602
  ``unsupported path URI scheme `http` ``; a query → -32602 `query parameters are not allowed
  in path URIs`; a fragment → -32602 `fragments are not allowed in path URIs`; a path that
  decodes to a NUL byte → -32602 `'<url>' is invalid on 'linux'`, `<url>` the URL as the
  reference serialises it (scheme and host lower-cased, `localhost` dropped, dot segments
  resolved, the path percent-encoded, existing escapes kept); a host other than empty or
  `localhost` → -32600 `'<uri>' is invalid on 'linux'`.
- The path is percent-decoded (bytes, so `%FF` survives as the byte 0xFF through
  surrogateescape; `%2F` becomes `/`), then lexically normalised like a plain path.
  `file:rel` (no slashes) is `file:///rel`, as a WHATWG URL parser reads it.
- `to_uri` is the inverse, percent-encoding what the `url` crate encodes in a path segment
  (controls, space, the characters `"` `#` `%` `<` `>` `?` `{` `}` and backtick, and every
  non-ASCII byte).

Nothing here imports trio.
"""

from __future__ import annotations

import os
import re
from urllib.parse import unquote_to_bytes

from trio_exec.proto.errors import InvalidParams, InvalidRequest

SCHEME = "file:"
NO_BASE = "invalid URI: relative URL without a base"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_C0_AND_SPACE = "".join(chr(code) for code in range(0x21))
#: Characters a WHATWG serialiser percent-encodes in a path besides controls and non-ASCII.
_PATH_ESCAPED = frozenset(' "#<>?`{}')
_KEEP = frozenset(
    b"!$&'()*+,-./0123456789:;=@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_abcdefghijklmnopqrstuvwxyz|~"
)


def is_uri(text: str) -> bool:
    return text[:5].lower() == SCHEME


def parse_scheme_error(text: str) -> InvalidParams:
    """The error for a path member that is not a `file:` URI, in the 0.169 dialect."""
    match = _SCHEME_RE.match(text)
    if match is None:
        return InvalidParams(NO_BASE)
    return InvalidParams(f"unsupported path URI scheme `{match.group(1).lower()}`")


def from_uri(text: str) -> str:
    """The absolute, not yet normalised path a `file:` URI names (see the module rules)."""
    if not is_uri(text):
        raise parse_scheme_error(text)
    rest = text.strip(_C0_AND_SPACE)[5:]
    # the WHATWG parser drops tabs and newlines anywhere
    rest = rest.replace("\t", "").replace("\n", "").replace("\r", "")
    rest, hash_mark, _ = rest.partition("#")
    rest, question, _ = rest.partition("?")
    if question:
        raise InvalidParams("query parameters are not allowed in path URIs")
    if hash_mark:
        raise InvalidParams("fragments are not allowed in path URIs")
    rest = rest.replace("\\", "/")
    host = ""
    if rest.startswith("//"):
        host, slash, path = rest[2:].partition("/")
        path = slash + path
    else:
        path = "/" + rest.lstrip("/")
    raw = unquote_to_bytes(path or "/")
    if b"\x00" in raw:
        raise InvalidParams(f"'{_serialise(host, path or '/')}' is invalid on 'linux'")
    if host.lower() not in ("", "localhost"):
        raise InvalidRequest(f"'{text}' is invalid on 'linux'")
    return os.fsdecode(raw)


def _escape(segment: str) -> str:
    return "".join(
        char if " " < char < "\x7f" and char not in _PATH_ESCAPED
        else "".join(f"%{b:02X}" for b in char.encode("utf-8", "surrogatepass"))
        for char in segment
    )


def _serialise(host: str, path: str) -> str:
    """The URL `file://<host><path>` as a WHATWG serialiser writes it (see the module rules)."""
    segments: list[str] = []
    parts = path.split("/")[1:]
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part in ("..", ".%2e", "%2e.", "%2e%2e") or part.lower() == "%2e%2e":
            if segments:
                segments.pop()
            if last:
                segments.append("")
        elif part == "." or part.lower() == "%2e":
            if last:
                segments.append("")
        else:
            segments.append(_escape(part))
    host = host.lower()
    return f"file://{'' if host == 'localhost' else host}/" + "/".join(segments)


def to_uri(path: str) -> str:
    """`file://` + the percent-encoded absolute `path`."""
    raw = os.fsencode(path)
    encoded = "".join(chr(b) if b in _KEEP else f"%{b:02X}" for b in raw)
    return "file://" + encoded
