"""What a `sandboxPolicy` allows: the access check every `fs/*` operation makes first.

Rules (the reference's, observed on the wire, with one fix):
- No policy, `danger-full-access` and `external-sandbox` allow everything.
- Writes (writeFile, createDirectory, remove, the copy destination) need a writable root:
  `read-only` has none; `workspace-write` has its `writable_roots`, `/tmp` (unless
  `exclude_slash_tmp`), the server's `$TMPDIR` (unless `exclude_tmpdir_env_var`) and always the
  server's cwd.
- Reads (readFile, getMetadata, readDirectory, the copy source) need read access: `full-access`
  reads everything; `restricted` reads its `readable_roots`, the server's cwd, and (under
  `workspace-write`) every writable root. `include_platform_defaults` adds nothing on Linux.
- A path is judged where it really lands: symlinks are resolved (the roots' too) before the
  prefix test, so a link out of a root is denied. `remove` and the copy source act on the link
  itself, so their last component is not followed. A component that does not exist (or cannot
  be examined) ends the resolution and the rest is taken lexically, so a missing file under a
  forbidden root is denied before its absence is reported.
- The fix: a dangling symlink is judged by its target too (the reference judges it by its own
  location, so a write through a dangling link escaped the writable roots).
- Roots are compared component-wise (`/w` does not contain `/w2`).

The check blocks (it examines the filesystem): call it from a worker thread.
"""

from __future__ import annotations

import enum
import os
import posixpath
import stat
from collections import deque

import attrs

from trio_exec.proto.errors import InvalidRequest
from trio_exec.proto.sandbox import (
    DangerFullAccess,
    ExternalSandbox,
    FullAccess,
    ReadOnly,
    ReadOnlyAccess,
    SandboxPolicy,
    WorkspaceWrite,
)
from trio_exec.proto.serde import normalize_abs_path

#: Linux's MAXSYMLINKS: more links than this in one resolution is a loop.
MAX_SYMLINKS = 40
SLASH_TMP = "/tmp"


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"


@attrs.frozen
class ServerPaths:
    """The server's own paths that the policies refer to (captured once, at start-up)."""

    cwd: str
    #: `$TMPDIR` as the server saw it, or None when unset, empty or relative.
    tmpdir: str | None

    @classmethod
    def from_process(cls) -> ServerPaths:
        tmpdir = os.environ.get("TMPDIR") or None
        return cls(cwd=os.getcwd(), tmpdir=tmpdir if tmpdir and tmpdir.startswith("/") else None)


def not_permitted(access: Access, path: str) -> InvalidRequest:
    return InvalidRequest(f"fs/{access.value} is not permitted for path {path}")


def resolve(path: str, *, follow_leaf: bool = True) -> str:
    """Where an absolute `path` really lands: every symlink that exists is followed (the last
    component only if `follow_leaf`); from the first component that does not exist or cannot be
    examined, the rest is lexical. Blocks."""
    pending = deque(part for part in path.split("/") if part)
    resolved = "/"
    links = 0
    while pending:
        name = pending.popleft()
        if name == ".":
            continue
        if name == "..":
            resolved = posixpath.dirname(resolved)
            continue
        candidate = posixpath.join(resolved, name)
        if not pending and not follow_leaf:
            return candidate
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return normalize_abs_path("/".join([candidate, *pending]))
        if not stat.S_ISLNK(mode):
            resolved = candidate
            continue
        links += 1
        try:
            target = os.readlink(candidate)
        except OSError:
            return normalize_abs_path("/".join([candidate, *pending]))
        if links > MAX_SYMLINKS:
            # A loop: judged where the looping link sits; the operation then reports ELOOP.
            return normalize_abs_path("/".join([candidate, *pending]))
        if target.startswith("/"):
            resolved = "/"
        pending.extendleft(reversed([part for part in target.split("/") if part]))
    return resolved


def is_within(path: str, root: str) -> bool:
    return path == root or root == "/" or path.startswith(root + "/")


def _writable_roots(policy: SandboxPolicy, server: ServerPaths) -> list[str]:
    if not isinstance(policy, WorkspaceWrite):
        return []
    roots = [*policy.writable_roots, server.cwd]
    if not policy.exclude_slash_tmp:
        roots.append(SLASH_TMP)
    if server.tmpdir is not None and not policy.exclude_tmpdir_env_var:
        roots.append(server.tmpdir)
    return roots


def _readable_roots(policy: SandboxPolicy, server: ServerPaths) -> list[str] | None:
    """None: everything is readable."""
    access: ReadOnlyAccess
    if isinstance(policy, ReadOnly):
        access = policy.access
        extra = [server.cwd]
    elif isinstance(policy, WorkspaceWrite):
        access = policy.read_only_access
        extra = _writable_roots(policy, server)
    else:
        return None
    if isinstance(access, FullAccess):
        return None
    return [*access.readable_roots, *extra]


def check(
    policy: SandboxPolicy | None,
    path: str,
    access: Access,
    server: ServerPaths,
    *,
    follow_leaf: bool = True,
) -> str | None:
    """Raise `InvalidRequest` (`fs/<access> is not permitted for path <path>`) unless `policy`
    allows `access` to the (absolute, normalised) `path`. Returns the resolved path that was
    judged when the policy restricts this access (the operation must act there without
    following symlinks: `target.py`), None when it allows everything. Blocks."""
    if policy is None or isinstance(policy, DangerFullAccess | ExternalSandbox):
        return None
    if access is Access.WRITE:
        roots = _writable_roots(policy, server)
    else:
        readable = _readable_roots(policy, server)
        if readable is None:
            return None
        roots = readable
    target = resolve(path, follow_leaf=follow_leaf)
    if not any(is_within(target, resolve(root)) for root in roots):
        raise not_permitted(access, path)
    return target
