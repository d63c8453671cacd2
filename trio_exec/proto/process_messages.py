"""`process/*` messages: params and results, with the reference's field names and order.

Members marked `omit_if_none` are trio-exec's additive extensions, or members of the 0.169
dialect (`sandboxType`, `sandboxDenied`) that only 0.169-dialect processes get; a client of the
0.120 reference never sees them unless it uses the extension.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, NewType

import attrs
import cattrs

from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.proto.serde import invalid_type
from trio_exec.proto.types import I32, U16, U64, CwdPath, Usize, omit_if_none


@attrs.frozen(kw_only=True)
class TerminalSize:
    rows: U16
    cols: U16


#: `core`, `all` or `none`.
Inherit = NewType("Inherit", str)


@attrs.frozen(kw_only=True)
class EnvPolicy:
    """0.169: how the child's environment is built from the server's (`process/envpolicy.py`)."""

    __rust_name__: ClassVar[str] = "ExecEnvPolicy"
    inherit: Inherit
    ignore_default_excludes: bool
    exclude: list[str]
    set: dict[str, str]
    include_only: list[str]


@attrs.frozen(kw_only=True)
class ExecMetadata:
    """0.169: informational (`threadId` must be a UUID)."""

    __rust_name__: ClassVar[str] = "ExecMetadata"
    thread_id: str | None = None
    tool_call_id: str | None = None


@attrs.frozen(kw_only=True)
class ProcessStartParams:
    __rust_name__: ClassVar[str] = "ExecParams"
    __rust_len__: ClassVar[int] = 6

    process_id: str
    argv: list[str]
    cwd: CwdPath
    env: dict[str, str]
    tty: bool
    arg0: str | None = None
    #: Extension (the meaning later codex gave it): give a pipe child a stdin pipe.
    pipe_stdin: bool | None = None
    #: Extension: the PTY size of a tty child (default 24 x 80).
    size: TerminalSize | None = None
    #: 0.169 members.
    metadata: ExecMetadata | None = attrs.field(default=None, metadata=omit_if_none())
    env_policy: EnvPolicy | None = attrs.field(default=None, metadata=omit_if_none())
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())
    enforce_managed_network: bool | None = attrs.field(default=None, metadata=omit_if_none())
    managed_network: dict[str, Any] | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ProcessStartResult:
    process_id: str
    #: 0.169: which OS sandbox the child runs in (`"none"`).
    sandbox_type: str | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ProcessReadParams:
    __rust_name__: ClassVar[str] = "ReadParams"
    __rust_len__: ClassVar[int] = 4

    process_id: str
    after_seq: U64 | None = None
    max_bytes: Usize | None = None
    wait_ms: U64 | None = None


@attrs.frozen(kw_only=True)
class OutputChunk:
    seq: int
    stream: str
    chunk: str


@attrs.frozen(kw_only=True)
class RetentionGap:
    """Output with seq in (after_seq, first_retained_seq) was dropped by the retention cap."""

    after_seq: int
    first_retained_seq: int


@attrs.frozen(kw_only=True)
class ProcessReadResult:
    chunks: list[OutputChunk]
    next_seq: int
    exited: bool
    exit_code: int | None
    closed: bool
    failure: str | None
    #: 0.169 processes: whether a sandbox denial ended the child.
    sandbox_denied: bool | None = attrs.field(default=None, metadata=omit_if_none())
    #: Extension: the signal that ended the process (`"SIGKILL"`), when one did.
    signal: str | None = attrs.field(default=None, metadata=omit_if_none())
    #: Extension: present when output the caller asked for is no longer retained.
    retention_gap: RetentionGap | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ProcessWriteParams:
    __rust_name__: ClassVar[str] = "WriteParams"
    __rust_len__: ClassVar[int] = 2

    process_id: str
    chunk: str
    #: Extension: close the child's stdin after writing `chunk`.
    close_stdin: bool | None = None
    #: 0.169: a repeated id is acknowledged but not written again.
    write_id: str | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ProcessWriteResult:
    status: str


@attrs.frozen(kw_only=True)
class ProcessTerminateParams:
    __rust_name__: ClassVar[str] = "TerminateParams"
    __rust_len__: ClassVar[int] = 1

    process_id: str


@attrs.frozen(kw_only=True)
class ProcessRunningResult:
    running: bool


@attrs.frozen(kw_only=True)
class ProcessSignalParams:
    """Extension `process/signal`."""

    process_id: str
    signal: str


@attrs.frozen(kw_only=True)
class ProcessResizeParams:
    """Extension `process/resize`."""

    process_id: str
    rows: U16
    cols: U16


@attrs.frozen(kw_only=True)
class ProcessListParams:
    """Extension `process/list` (no members)."""


@attrs.frozen(kw_only=True)
class ProcessInfo:
    process_id: str
    argv: list[str]
    pid: int | None
    tty: bool
    state: str
    exit_code: I32 | None
    signal: str | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ProcessListResult:
    processes: list[ProcessInfo]


@attrs.frozen(kw_only=True)
class EmptyResult:
    """`{}`."""


_LITERAL_INHERIT = ("core", "all", "none")


def _structure_inherit(value: object, _: object) -> str:
    if not isinstance(value, str) or value not in _LITERAL_INHERIT:
        if isinstance(value, str):
            expected = ", ".join(f"`{v}`" for v in _LITERAL_INHERIT)
            raise InvalidParams(f"unknown variant `{value}`, expected one of {expected}")
        raise invalid_type(value, "string or map")
    return value


def check_thread_id(value: str) -> None:
    """`threadId` must parse as a UUID (serde's `uuid` texts for the common failure)."""
    text = value[9:] if value.startswith("urn:uuid:") else value
    for index, char in enumerate(text):
        if char not in "0123456789abcdefABCDEF-{}":
            raise InvalidParams(
                "invalid character: expected an optional prefix of `urn:uuid:` followed by "
                f"[0-9a-fA-F-], found `{char}` at {index + 1}"
            )
    try:
        uuid.UUID(text)
    except ValueError:
        raise InvalidParams(f"invalid length: expected 32 hex digits, found {len(text)}") from None


def register_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(Inherit, _structure_inherit)


# --- notifications (the daemon encodes them from these classes: `rpc/notifications.py`) ---


@attrs.frozen(kw_only=True)
class ProcessOutputNotification:
    process_id: str
    seq: int
    stream: str
    chunk: str


@attrs.frozen(kw_only=True)
class ProcessExitedNotification:
    process_id: str
    seq: int
    exit_code: int
    #: 0.169 processes: whether a sandbox denial ended the child.
    sandbox_denied: bool | None = attrs.field(default=None, metadata=omit_if_none())
    #: Extension: the signal that ended the process, when one did.
    signal: str | None = attrs.field(default=None, metadata=omit_if_none())
    #: Extension: what the child used (docs/extensions.md), when it could be read.
    resource_usage: ResourceUsageInfo | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class ResourceUsageInfo:
    user_cpu_usec: int
    system_cpu_usec: int
    max_rss_bytes: int


@attrs.frozen(kw_only=True)
class ProcessClosedNotification:
    process_id: str
    seq: int
