"""Method names and the one method table: name → (params class, result type, gating service).

Rule: a method exists on the wire iff it is in `METHODS`; everything else answers -32601.
The result type is what the method answers on success (a message class, or a plain map for the
`environment*` methods, whose results are built by `trio_exec/rpc/host_methods.py`).
The gating service names the text of the handshake errors ("exec" or "filesystem"); None means
the method is allowed before the handshake completes (only `initialize`).
"""

from __future__ import annotations

from typing import Any

import attrs

from trio_exec.proto import messages as m

INITIALIZE = "initialize"
INITIALIZED = "initialized"

PROCESS_START = "process/start"
PROCESS_READ = "process/read"
PROCESS_WRITE = "process/write"
PROCESS_TERMINATE = "process/terminate"
PROCESS_SIGNAL = "process/signal"
PROCESS_RESIZE = "process/resize"
PROCESS_LIST = "process/list"

PROCESS_OUTPUT = "process/output"
PROCESS_EXITED = "process/exited"
PROCESS_CLOSED = "process/closed"

FS_READ_FILE = "fs/readFile"
FS_WRITE_FILE = "fs/writeFile"
FS_CREATE_DIRECTORY = "fs/createDirectory"
FS_GET_METADATA = "fs/getMetadata"
FS_READ_DIRECTORY = "fs/readDirectory"
FS_REMOVE = "fs/remove"
FS_COPY = "fs/copy"
FS_CANONICALIZE = "fs/canonicalize"
FS_WALK = "fs/walk"
FS_OPEN = "fs/open"
FS_READ_BLOCK = "fs/readBlock"
FS_WRITE_BLOCK = "fs/writeBlock"
FS_CLOSE = "fs/close"
FS_WATCH_MISSING = "fs/watchMissing"
FS_MISSING_CHANGED = "fs/missingChanged"

ENVIRONMENT_INFO = "environment/info"
ENVIRONMENT_STATUS = "environment/status"
ENVIRONMENT_CONFIG_READ = "environmentConfig/read"

EXEC = "exec"
FILESYSTEM = "filesystem"
ENVIRONMENT = "environment info"


#: The result type of the methods that answer a plain JSON map.
PLAIN_MAP = dict[str, Any]


@attrs.frozen
class MethodSpec:
    name: str
    params: type
    result: Any
    service: str | None
    #: Part of the reference's 0.120 method set (the others are trio-exec extensions).
    reference: bool = True
    #: Exists only in the 0.169 dialect: calling it is a dialect signal (`proto/dialect.py`).
    v0169_only: bool = False


METHODS: dict[str, MethodSpec] = {
    spec.name: spec
    for spec in (
        MethodSpec(INITIALIZE, m.InitializeParams, m.InitializeResult, None),
        MethodSpec(PROCESS_START, m.ProcessStartParams, m.ProcessStartResult, EXEC),
        MethodSpec(PROCESS_READ, m.ProcessReadParams, m.ProcessReadResult, EXEC),
        MethodSpec(PROCESS_WRITE, m.ProcessWriteParams, m.ProcessWriteResult, EXEC),
        MethodSpec(PROCESS_TERMINATE, m.ProcessTerminateParams, m.ProcessRunningResult, EXEC),
        MethodSpec(
            PROCESS_SIGNAL, m.ProcessSignalParams, m.ProcessRunningResult,
            EXEC, reference=False,
        ),
        MethodSpec(PROCESS_RESIZE, m.ProcessResizeParams, m.EmptyResult, EXEC, reference=False),
        MethodSpec(PROCESS_LIST, m.ProcessListParams, m.ProcessListResult, EXEC, reference=False),
        MethodSpec(FS_READ_FILE, m.FsReadFileParams, m.FsReadFileResult, FILESYSTEM),
        MethodSpec(FS_WRITE_FILE, m.FsWriteFileParams, m.EmptyResult, FILESYSTEM),
        MethodSpec(FS_CREATE_DIRECTORY, m.FsCreateDirectoryParams, m.EmptyResult, FILESYSTEM),
        MethodSpec(FS_GET_METADATA, m.FsGetMetadataParams, m.FsGetMetadataResult, FILESYSTEM),
        MethodSpec(FS_READ_DIRECTORY, m.FsReadDirectoryParams, m.FsReadDirectoryResult, FILESYSTEM),
        MethodSpec(FS_REMOVE, m.FsRemoveParams, m.EmptyResult, FILESYSTEM),
        MethodSpec(FS_COPY, m.FsCopyParams, m.EmptyResult, FILESYSTEM),
        MethodSpec(ENVIRONMENT_INFO, m.IgnoredParams, PLAIN_MAP, ENVIRONMENT, v0169_only=True),
        MethodSpec(ENVIRONMENT_STATUS, m.IgnoredParams, PLAIN_MAP, ENVIRONMENT, v0169_only=True),
        MethodSpec(
            ENVIRONMENT_CONFIG_READ, m.EnvironmentConfigReadParams, PLAIN_MAP,
            ENVIRONMENT, v0169_only=True,
        ),
        MethodSpec(
            FS_WATCH_MISSING, m.FsWatchMissingParams, m.FsWatchMissingResult,
            FILESYSTEM, v0169_only=True,
        ),
        MethodSpec(
            FS_CANONICALIZE, m.FsCanonicalizeParams, m.FsPathResult,
            FILESYSTEM, v0169_only=True,
        ),
        MethodSpec(FS_WALK, m.FsWalkParams, m.FsWalkResult, FILESYSTEM, v0169_only=True),
        MethodSpec(FS_OPEN, m.FsOpenParams, m.FsHandleResult, FILESYSTEM, v0169_only=True),
        MethodSpec(
            FS_READ_BLOCK, m.FsReadBlockParams, m.FsReadBlockResult,
            FILESYSTEM, v0169_only=True,
        ),
        MethodSpec(
            FS_WRITE_BLOCK, m.FsWriteBlockParams, m.EmptyResult,
            FILESYSTEM, v0169_only=True,
        ),
        MethodSpec(FS_CLOSE, m.FsCloseParams, m.EmptyResult, FILESYSTEM, v0169_only=True),
    )
}
