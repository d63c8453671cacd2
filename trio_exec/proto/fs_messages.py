"""`fs/*` messages: params and results, with the reference's field names, order and defaults.

Rule: the `sandboxPolicy` member is decoded while the params are structured (by the hook
registered here), so a bad policy is -32602 with serde's text before any handshake check, and
the fs service only ever sees a `SandboxPolicy` object or None.

The 0.169 dialect's members are additive here: `sandbox` (a `SandboxContext`, honoured only on
0.169-dialect requests, as `sandboxPolicy` only on 0.120 ones), and the `isSymlink`/`size`
members of `fs/getMetadata`, left out (None) of 0.120 answers.
"""

from __future__ import annotations

from typing import Any, ClassVar, NewType

import attrs
import cattrs

from trio_exec.proto import sandbox, sandbox_context
from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.proto.serde import invalid_type
from trio_exec.proto.types import U64, AbsPath, Spliced, Usize, omit_if_none


@attrs.frozen(kw_only=True)
class FsReadFileParams:
    __rust_name__: ClassVar[str] = "FsReadFileParams"
    __rust_len__: ClassVar[int] = 2
    path: AbsPath
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsReadFileResult:
    data_base64: str


@attrs.frozen(kw_only=True)
class FsReadFileSplicedResult:
    """The daemon's form of `FsReadFileResult` for a large file: the base64 text as bytes,
    spliced into the reply by the codec (never copied into a JSON document)."""

    data_base64: Spliced


@attrs.frozen(kw_only=True)
class FsWriteFileParams:
    __rust_name__: ClassVar[str] = "FsWriteFileParams"
    __rust_len__: ClassVar[int] = 3
    path: AbsPath
    data_base64: str
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsCreateDirectoryParams:
    __rust_name__: ClassVar[str] = "FsCreateDirectoryParams"
    __rust_len__: ClassVar[int] = 3
    path: AbsPath
    recursive: bool | None = None
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsGetMetadataParams:
    __rust_name__: ClassVar[str] = "FsGetMetadataParams"
    __rust_len__: ClassVar[int] = 2
    path: AbsPath
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsGetMetadataResult:
    is_directory: bool
    is_file: bool
    #: 0.169: whether the path itself is a symlink (the other members follow it).
    is_symlink: bool | None = attrs.field(default=None, metadata=omit_if_none())
    #: 0.169: the size in bytes of what the path resolves to.
    size: int | None = attrs.field(default=None, metadata=omit_if_none())
    created_at_ms: int
    modified_at_ms: int


@attrs.frozen(kw_only=True)
class FsReadDirectoryParams:
    __rust_name__: ClassVar[str] = "FsReadDirectoryParams"
    __rust_len__: ClassVar[int] = 2
    path: AbsPath
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsDirectoryEntry:
    file_name: str
    is_directory: bool
    is_file: bool


@attrs.frozen(kw_only=True)
class FsReadDirectoryResult:
    entries: list[FsDirectoryEntry]


@attrs.frozen(kw_only=True)
class FsRemoveParams:
    __rust_name__: ClassVar[str] = "FsRemoveParams"
    __rust_len__: ClassVar[int] = 4
    path: AbsPath
    recursive: bool | None = None
    force: bool | None = None
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsCopyParams:
    __rust_name__: ClassVar[str] = "FsCopyParams"
    __rust_len__: ClassVar[int] = 4
    source_path: AbsPath
    destination_path: AbsPath
    recursive: bool
    sandbox_policy: SandboxPolicy | None = None
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsCanonicalizeParams:
    __rust_name__: ClassVar[str] = "FsCanonicalizeParams"
    path: AbsPath
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsPathResult:
    path: str


@attrs.frozen(kw_only=True)
class FsWalkOptions:
    """`fs/walk` limits and switches: every member required except `pruneHiddenDirectories`
    (absent: false), as in the 0.169 and 0.171 references (probe p12)."""

    __rust_name__: ClassVar[str] = "WalkOptions"
    __rust_len__: ClassVar[int] = 5
    __rust_required_len__: ClassVar[int] = 4
    max_depth: Usize
    max_directories: Usize
    max_entries: Usize
    follow_directory_symlinks: bool
    prune_hidden_directories: bool = False


@attrs.frozen(kw_only=True)
class FsWalkParams:
    __rust_name__: ClassVar[str] = "WireFsWalkParams"
    __rust_len__: ClassVar[int] = 3
    path: AbsPath
    options: FsWalkOptions
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsWalkEntry:
    path: str
    #: "file" or "directory" (nothing else is listed).
    kind: str


@attrs.frozen(kw_only=True)
class FsWalkError:
    path: str
    message: str


@attrs.frozen(kw_only=True)
class FsWalkResult:
    entries: list[FsWalkEntry]
    errors: list[FsWalkError]
    truncated: bool


#: `fs/open` mode: "read" or "replace" (a serde unit enum: also `{"read": null}`).
OpenMode = NewType("OpenMode", str)
OPEN_MODES = ("read", "replace")


def _structure_open_mode(value: object, _: object) -> str:
    if isinstance(value, dict) and len(value) == 1:
        ((name, content),) = value.items()
        if name in OPEN_MODES and content is not None:
            raise invalid_type(content, "unit")
        value = name
    if not isinstance(value, str):
        raise invalid_type(value, "string or map")
    if value not in OPEN_MODES:
        raise InvalidParams(f"unknown variant `{value}`, expected `read` or `replace`")
    return value


@attrs.frozen(kw_only=True)
class FsOpenParams:
    __rust_name__: ClassVar[str] = "WireFsOpenParams"
    __rust_len__: ClassVar[int] = 4
    handle_id: str
    path: AbsPath
    mode: OpenMode = OpenMode("read")
    sandbox: SandboxContext | None = attrs.field(default=None, metadata=omit_if_none())


@attrs.frozen(kw_only=True)
class FsHandleResult:
    handle_id: str


@attrs.frozen(kw_only=True)
class FsReadBlockParams:
    __rust_name__: ClassVar[str] = "FsReadBlockParams"
    __rust_len__: ClassVar[int] = 3
    handle_id: str
    offset: U64
    len: Usize


@attrs.frozen(kw_only=True)
class FsReadBlockResult:
    chunk: str
    eof: bool


@attrs.frozen(kw_only=True)
class FsWriteBlockParams:
    __rust_name__: ClassVar[str] = "FsWriteBlockParams"
    __rust_len__: ClassVar[int] = 3
    handle_id: str
    offset: U64
    chunk: str


@attrs.frozen(kw_only=True)
class FsCloseParams:
    __rust_name__: ClassVar[str] = "FsCloseParams"
    __rust_len__: ClassVar[int] = 1
    handle_id: str


@attrs.frozen(kw_only=True)
class FsWatchMissingParams:
    __rust_name__: ClassVar[str] = "FsWatchMissingParams"
    watch_id: U64
    missing: list[AbsPath]
    present: AbsPath | None = None


@attrs.frozen(kw_only=True)
class FsWatchMissingResult:
    watching: bool


@attrs.frozen(kw_only=True)
class FsMissingChangedNotification:
    """0.169 `fs/missingChanged`: the watch `watchId` fired."""

    watch_id: int


def _is_policy(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, SandboxPolicy)


def register_hooks(conv: cattrs.Converter) -> None:
    """The sandbox policy, both ways: decoded with serde's texts, encoded in its map form."""
    conv.register_structure_hook(SandboxPolicy, lambda value, _: sandbox.decode(value))
    conv.register_structure_hook(OpenMode, _structure_open_mode)
    conv.register_unstructure_hook_func(_is_policy, sandbox.encode)
    sandbox_context.register_hooks(conv)
