"""`process/*` messages: params and results, with the reference's field names and order.

Members marked `omit_if_none` are trio-exec's additive extensions; a client of the reference
never sees them unless it uses the extension.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from .types import I32, U16, U64, CwdPath, Usize, omit_if_none


@attrs.frozen(kw_only=True)
class TerminalSize:
    rows: U16
    cols: U16


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


@attrs.frozen(kw_only=True)
class ProcessStartResult:
    process_id: str


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
