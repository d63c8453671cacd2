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
from collections.abc import Mapping

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32004


class RpcError(Exception):
    """An error with a JSON-RPC code; `message` is sent to the peer verbatim."""

    code: int = INTERNAL_ERROR

    def __init__(self, message: str, *, data: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: JSON-RPC's optional `data` member, sent only when set.
        self.data = data

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def to_wire(self) -> dict[str, object]:
        if self.data is None:
            return {"code": self.code, "message": self.message}
        return {"code": self.code, "data": self.data, "message": self.message}


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


def unknown_signal(name: str) -> InvalidParams:
    return InvalidParams(f"unknown signal `{name}`")


def no_terminal(process_id: str) -> InvalidRequest:
    return InvalidRequest(f"process {process_id} has no terminal")


def cannot_confine(reason: str) -> InternalError:
    """A 0.169 `sandbox` that this host cannot enforce: the process is not started."""
    return InternalError(f"trio-exec cannot run this process in the sandbox it asks for: {reason}")


INITIALIZE_TWICE = "initialize may only be sent once per connection"


def not_initialized(service: str) -> InvalidRequest:
    """`service` is "exec" or "filesystem"."""
    return InvalidRequest(f"client must call initialize before using {service} methods")


def not_acknowledged(service: str) -> InvalidRequest:
    return InvalidRequest(f"client must send initialized before using {service} methods")


#: The reference is a static musl binary: its OS error texts are musl's `strerror`, which
#: differs from glibc's for several codes clients see (`Symbolic link loop`, `I/O error`).
_MUSL_TEXTS = {
    errno_codes.EPERM: "Operation not permitted",
    errno_codes.ENOENT: "No such file or directory",
    errno_codes.ESRCH: "No such process",
    errno_codes.EINTR: "Interrupted system call",
    errno_codes.EIO: "I/O error",
    errno_codes.ENXIO: "No such device or address",
    errno_codes.E2BIG: "Argument list too long",
    errno_codes.ENOEXEC: "Exec format error",
    errno_codes.EBADF: "Bad file descriptor",
    errno_codes.ECHILD: "No child process",
    errno_codes.EAGAIN: "Resource temporarily unavailable",
    errno_codes.ENOMEM: "Out of memory",
    errno_codes.EACCES: "Permission denied",
    errno_codes.EFAULT: "Bad address",
    errno_codes.EBUSY: "Resource busy",
    errno_codes.EEXIST: "File exists",
    errno_codes.EXDEV: "Cross-device link",
    errno_codes.ENODEV: "No such device",
    errno_codes.ENOTDIR: "Not a directory",
    errno_codes.EISDIR: "Is a directory",
    errno_codes.EINVAL: "Invalid argument",
    errno_codes.ENFILE: "Too many open files in system",
    errno_codes.EMFILE: "No file descriptors available",
    errno_codes.ENOTTY: "Not a tty",
    errno_codes.ETXTBSY: "Text file busy",
    errno_codes.EFBIG: "File too large",
    errno_codes.ENOSPC: "No space left on device",
    errno_codes.ESPIPE: "Invalid seek",
    errno_codes.EROFS: "Read-only file system",
    errno_codes.EMLINK: "Too many links",
    errno_codes.EPIPE: "Broken pipe",
    errno_codes.ENAMETOOLONG: "Filename too long",
    errno_codes.ELOOP: "Symbolic link loop",
    errno_codes.ENOTEMPTY: "Directory not empty",
    errno_codes.EADDRINUSE: "Address in use",
    errno_codes.EADDRNOTAVAIL: "Address not available",
    errno_codes.EDQUOT: "Quota exceeded",
    errno_codes.ENOSYS: "Function not implemented",
    errno_codes.EOPNOTSUPP: "Not supported",
}


def os_error_text(err: OSError) -> str:
    """An OS error in the reference's style: `No such file or directory (os error 2)`."""
    code = err.errno
    if code is None:
        return str(err)
    return f"{_MUSL_TEXTS.get(code) or os.strerror(code)} (os error {code})"


def from_os_error(err: OSError) -> RpcError:
    """The filesystem mapping: not found → -32004, any other OS error → -32603."""
    text = os_error_text(err)
    if err.errno == errno_codes.ENOENT:
        return NotFound(text)
    return InternalError(text)


def limit_reached(limit: str, value: int, scope: str) -> InternalError:
    """A refusal by one of the daemon's limits (`process limit reached: 256 per session`).

    -32603, as the reference answers a spawn the OS refused for want of resources: the request
    is valid and may succeed later; -32600 would tell the client its request was wrong."""
    return InternalError(f"{limit} limit reached: {value} {scope}")
