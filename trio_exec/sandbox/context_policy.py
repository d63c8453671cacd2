"""The 0.169 `sandbox` member (`SandboxContext`) applied to `fs/*` operations.

The 0.169 reference runs a sandboxed fs operation inside the OS sandbox, so a denial is an OS
error. trio-exec checks the context itself and answers the same failure class
(docs/protocol-dialects.md C10): a denied write is -32603 `Read-only file system (os error 30)`,
a denied read -32603 `Permission denied (os error 13)`.

Rules:
- `permissions.type` `disabled` or `external`, or a `file_system` that is not `restricted`:
  no restriction from trio-exec.
- `restricted`: each entry names roots and an access (`read`, `write`, `none`). Roots of the
  special kinds: `root` → `/`; `project_roots` → the context's `workspaceRoots` (else its
  `cwd`), joined with `subpath`; `slash_tmp` → `/tmp`; `tmpdir` → the server's `$TMPDIR`;
  `current_working_directory` → the context's `cwd`. An entry `{type: "path", path}` names one
  path. Unknown kinds name nothing.
- The most specific root containing the (symlink-resolved) path decides; equal roots: the
  later entry wins. A write needs `write`; a read needs `read` or `write`; no root: denied.
"""

from __future__ import annotations

import errno
import os
import posixpath
from typing import Any

from trio_exec.proto import uri
from trio_exec.proto.errors import InternalError
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.proto.serde import normalize_abs_path
from trio_exec.sandbox.policy import Access, ServerPaths, is_within, resolve


def _denied(code: int) -> InternalError:
    return InternalError(f"{os.strerror(code)} (os error {code})")


def _path_value(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    if uri.is_uri(value):
        return normalize_abs_path(uri.from_uri(value))
    return normalize_abs_path(value) if value.startswith("/") else None


def _entry_roots(entry: dict[str, Any], context: SandboxContext, server: ServerPaths) -> list[str]:
    path = entry.get("path")
    if not isinstance(path, dict):
        return []
    if path.get("type") == "path":
        found = _path_value(path.get("path", path.get("value")))
        return [] if found is None else [found]
    value = path.get("value")
    if path.get("type") != "special" or not isinstance(value, dict):
        return []
    kind = value.get("kind")
    bases: list[str]
    if kind == "root":
        bases = ["/"]
    elif kind == "project_roots":
        bases = list(context.workspace_roots) or ([context.cwd] if context.cwd else [])
    elif kind == "slash_tmp":
        bases = ["/tmp"]
    elif kind == "tmpdir":
        bases = [server.tmpdir] if server.tmpdir else []
    elif kind == "current_working_directory":
        bases = [context.cwd] if context.cwd else []
    else:
        bases = []
    subpath = value.get("subpath")
    if isinstance(subpath, str) and subpath:
        bases = [normalize_abs_path(posixpath.join(base, subpath)) for base in bases]
    return [resolve(base) for base in bases]


def rules(context: SandboxContext, server: ServerPaths) -> list[tuple[str, str]] | None:
    """(root, access) pairs in entry order, or None when nothing is restricted. Blocks."""
    if context.kind != "managed":
        return None
    file_system = context.permissions.get("file_system")
    if not isinstance(file_system, dict) or file_system.get("type") != "restricted":
        return None
    out: list[tuple[str, str]] = []
    for entry in file_system.get("entries") or []:
        if isinstance(entry, dict):
            access = str(entry.get("access", "none"))
            out.extend((root, access) for root in _entry_roots(entry, context, server))
    return out


def check(
    context: SandboxContext | None,
    path: str,
    access: Access,
    server: ServerPaths,
    *,
    follow_leaf: bool = True,
) -> str | None:
    """Raise the OS-style error when `context` forbids `access` to `path`. Returns the
    resolved path that was judged when the context restricts anything, else None (as
    `policy.check`). Blocks."""
    if context is None:
        return None
    table = rules(context, server)
    if table is None:
        return None
    target = resolve(path, follow_leaf=follow_leaf)
    best: tuple[int, str] | None = None
    for root, granted in table:
        if is_within(target, root):
            depth = 0 if root == "/" else root.count("/")
            if best is None or depth >= best[0]:
                best = (depth, granted)
    granted = best[1] if best else "none"
    if access is Access.WRITE and granted != "write":
        raise _denied(errno.EROFS)
    if access is Access.READ and granted not in ("read", "write"):
        raise _denied(errno.EACCES)
    return target
