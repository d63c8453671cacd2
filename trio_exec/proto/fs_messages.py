"""`fs/*` messages: params and results, with the reference's field names, order and defaults.

Rule: the `sandboxPolicy` member is decoded while the params are structured (by the hook
registered here), so a bad policy is -32602 with serde's text before any handshake check, and
the fs service only ever sees a `SandboxPolicy` object or None.

The 0.169 dialect's members are additive here: `sandbox` (a `SandboxContext`, honoured only on
0.169-dialect requests, as `sandboxPolicy` only on 0.120 ones), and the `isSymlink`/`size`
members of `fs/getMetadata`, left out (None) of 0.120 answers.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import cattrs

from . import sandbox, sandbox_context
from .sandbox import SandboxPolicy
from .sandbox_context import SandboxContext
from .types import U64, AbsPath, Usize, omit_if_none


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
    """`fs/walk` limits and switches: every member required (no serde defaults)."""

    __rust_name__: ClassVar[str] = "WalkOptions"
    __rust_len__: ClassVar[int] = 5
    max_depth: Usize
    max_directories: Usize
    max_entries: Usize
    follow_directory_symlinks: bool
    prune_hidden_directories: bool


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


@attrs.frozen(kw_only=True)
class FsWatchMissingParams:
    __rust_name__: ClassVar[str] = "FsWatchMissingParams"
    watch_id: U64
    missing: list[AbsPath]
    present: AbsPath | None = None


@attrs.frozen(kw_only=True)
class FsWatchMissingResult:
    watching: bool


def _is_policy(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, SandboxPolicy)


def register_hooks(conv: cattrs.Converter) -> None:
    """The sandbox policy, both ways: decoded with serde's texts, encoded in its map form."""
    conv.register_structure_hook(SandboxPolicy, lambda value, _: sandbox.decode(value))
    conv.register_unstructure_hook_func(_is_policy, sandbox.encode)
    sandbox_context.register_hooks(conv)
