"""Expected wire values shared by the conformance tests (texts are the wire contract)."""

from __future__ import annotations

import re
from typing import Any

from support.servers import ServerHandle

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")

#: The six members of a process/read result, in the order the reference emits them.
READ_KEYS = ["chunks", "nextSeq", "exited", "exitCode", "closed", "failure"]

EXEC_METHODS = ["process/start", "process/read", "process/write", "process/terminate"]
FS_METHODS = [
    "fs/readFile", "fs/writeFile", "fs/createDirectory", "fs/getMetadata",
    "fs/readDirectory", "fs/remove", "fs/copy",
]

#: Every routed method with the name of its params struct and its serde field count.
PARAM_STRUCTS = {
    "initialize": ("InitializeParams", 2),
    "process/start": ("ExecParams", 6),
    "process/read": ("ReadParams", 4),
    "process/write": ("WriteParams", 2),
    "process/terminate": ("TerminateParams", 1),
    "fs/readFile": ("FsReadFileParams", 2),
    "fs/writeFile": ("FsWriteFileParams", 3),
    "fs/createDirectory": ("FsCreateDirectoryParams", 3),
    "fs/getMetadata": ("FsGetMetadataParams", 2),
    "fs/readDirectory": ("FsReadDirectoryParams", 2),
    "fs/remove": ("FsRemoveParams", 4),
    "fs/copy": ("FsCopyParams", 4),
}


def error(code: int, message: str, id: Any) -> dict[str, Any]:
    """An error reply exactly as the server must send it."""
    return {"error": {"code": code, "message": message}, "id": id}


def not_implemented(method: str, id: Any) -> dict[str, Any]:
    return error(-32601, f"exec-server stub does not implement `{method}` yet", id)


def invalid_request(message: str, id: Any) -> dict[str, Any]:
    return error(-32600, message, id)


def invalid_params(message: str, id: Any) -> dict[str, Any]:
    return error(-32602, message, id)


def internal(message: str, id: Any) -> dict[str, Any]:
    return error(-32603, message, id)


def reference_parse_error(client_port: int, serde_text: str) -> dict[str, Any]:
    """The reference's reply to a frame it cannot classify (id -1, code -32600)."""
    return error(
        -32600,
        "failed to parse websocket JSON-RPC message from exec-server websocket "
        f"127.0.0.1:{client_port}: {serde_text}",
        -1,
    )


def signal_exit(server: ServerHandle, *, tty: bool, signal: str) -> dict[str, Any]:
    """The members of ``process/exited`` (minus processId/seq) for a signal death.

    Reference: -1 for pipes, 1 for ttys, the signal lost. trio-exec: -1 in both modes plus
    the additive ``signal`` member (contract §2, #11).
    """
    if server.is_reference:
        return {"exitCode": 1 if tty else -1}
    return {"exitCode": -1, "signal": signal}


def exit_members(params: dict[str, Any]) -> dict[str, Any]:
    """The exit-describing members of a ``process/exited`` params object (without trio-exec's
    additive ``resourceUsage``, a measurement no reference sends: tests/test_containment.py
    checks it)."""
    return {k: v for k, v in params.items() if k not in ("processId", "seq", "resourceUsage")}


def normal_exit(params: dict[str, Any]) -> dict[str, Any]:
    """Exit members of a normal exit, tolerating trio-exec's additive ``signal: null``."""
    members = exit_members(params)
    if members.get("signal", "absent") is None:
        del members["signal"]
    return members
