"""Wire errors: one exception class per JSON-RPC error code.

Rule: every error that reaches a client is an `RpcError` whose `code` and `message` are the
wire contract (`shared/reference/trio-exec-contract.md`); clients match on both, so the texts
live here or are built by the functions here, never inlined elsewhere. The same classes are
raised by the client library when a reply carries the code, so both sides speak one vocabulary.
Nothing here imports trio.
"""

from __future__ import annotations

import errno as errno_codes
import os

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004


class RpcError(Exception):
    """An error with a JSON-RPC code; `message` is sent to the peer verbatim."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def to_wire(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class ParseError(RpcError):
    code = PARSE_ERROR


class InvalidRequest(RpcError):
    code = INVALID_REQUEST


class MethodNotFound(RpcError):
    code = METHOD_NOT_FOUND


class InvalidParams(RpcError):
    code = INVALID_PARAMS


class InternalError(RpcError):
    code = INTERNAL_ERROR


class NotFound(RpcError):
    code = NOT_FOUND


_BY_CODE: dict[int, type[RpcError]] = {
    cls.code: cls
    for cls in (ParseError, InvalidRequest, MethodNotFound, InvalidParams, InternalError, NotFound)
}


def error_from_wire(code: int, message: str) -> RpcError:
    """The exception a client raises for an error reply (unknown codes stay `RpcError`)."""
    cls = _BY_CODE.get(code)
    if cls is None:
        err = RpcError(message)
        err.code = code
        return err
    return cls(message)


# --- texts of the contract -------------------------------------------------------------------


def method_not_found(method: str) -> MethodNotFound:
    return MethodNotFound(f"exec-server stub does not implement `{method}` yet")


def unknown_session(session_id: str) -> InvalidRequest:
    return InvalidRequest(f"unknown session id {session_id}")


def session_resumed_elsewhere() -> InvalidRequest:
    return InvalidRequest("session has been resumed by another connection")


def unknown_process(process_id: str) -> InvalidRequest:
    return InvalidRequest(f"unknown process id {process_id}")


def process_exists(process_id: str) -> InvalidRequest:
    return InvalidRequest(f"process {process_id} already exists")


INITIALIZE_TWICE = "initialize may only be sent once per connection"


def not_initialized(service: str) -> InvalidRequest:
    """`service` is "exec" or "filesystem"."""
    return InvalidRequest(f"client must call initialize before using {service} methods")


def not_acknowledged(service: str) -> InvalidRequest:
    return InvalidRequest(f"client must send initialized before using {service} methods")


def os_error_text(err: OSError) -> str:
    """An OS error in the Rust `io::Error` style: `No such file or directory (os error 2)`."""
    code = err.errno
    if code is None:
        return str(err)
    return f"{os.strerror(code)} (os error {code})"


def from_os_error(err: OSError) -> RpcError:
    """The filesystem mapping: not found → -32004, any other OS error → -32603."""
    text = os_error_text(err)
    if err.errno == errno_codes.ENOENT:
        return NotFound(text)
    return InternalError(text)
