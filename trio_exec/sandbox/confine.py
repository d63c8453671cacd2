"""The 0.169 `sandbox` member of `process/start`, turned into a confinement of the child.

The reference runs such a child under bubblewrap + seccomp and answers `sandboxType:
"linuxSeccomp"`. trio-exec confines it with Landlock (filesystem, TCP, abstract unix sockets,
signals), a seccomp filter (every other socket), and, for read-only carve-outs inside a
writable root, read-only bind mounts in a private mount namespace (`landlock.py` does the
kernel side). Same answer: `sandboxType: "linuxSeccomp"`, the name codex gives its Linux
sandbox (its own Landlock-based one included).

Mapping (`plan`), from the context's `permissions` (`managed` only; `disabled` and `external`
ask nothing of the server):
- `file_system.type == "restricted"`: every path not granted is denied. Each entry's roots
  (resolved as `sandbox/context_policy.py` does) get a Landlock rule: `read` → execute, read file,
  read directory; `write` → every filesystem right of the kernel's ABI. Devices a shell needs
  are always granted: `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`, `/dev/urandom`
  read+write, `/dev/tty` and the child's own PTY read+write+ioctl.
- Landlock only adds rights beneath a rule, so an entry granting less than an enclosing one
  needs more: a `read` entry beneath a `write` root (the `.git`, `.agents`, `.codex`, `.aws`
  carve-outs of workspace-write) is bound read-only onto itself (writes fail with EROFS, the
  reference's error; renaming or deleting it fails with EBUSY), and a `write` entry beneath such
  a carve-out is bound writable again. A carve-out that does not exist is skipped (nothing to
  protect; creating it is allowed, as `missing_path_behavior: "skip"` says). A `none` entry
  beneath a granted root cannot be expressed: the start is refused (`Unenforceable`).
- `network` other than `"enabled"`: TCP bind/connect denied by Landlock (ABI >= 4), abstract
  unix sockets scoped (ABI >= 6), and the seccomp filter of `landlock.py` (no socket but a
  `socketpair` reaches anything).
- Always, when confining (ABI >= 6): signals to processes outside the child's domain are denied
  (the reference's child lives in its own PID namespace).

What Landlock does NOT cover, and so is not enforced: reading is never denied below `/` when
`/` is readable (the policy's own choice); the child's denial is EACCES `Permission denied`
for a path outside the writable roots (the reference says EROFS there; both are what codex
recognises as a denial), EROFS inside a carve-out; files already open before the exec (none
but stdio) keep their access.

Nothing here spawns; `prepare` (blocking) opens paths and builds the ruleset.
"""

from __future__ import annotations

import os
import posixpath
import subprocess
from collections.abc import Callable
from functools import cache

import attrs

from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.sandbox import context_policy
from trio_exec.sandbox import landlock as ll
from trio_exec.sandbox.landlock import Bind, ChildHook, Rule
from trio_exec.sandbox.policy import ServerPaths, is_within

DEVICES_RW = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
DEVICES_TTY = ("/dev/tty",)
SANDBOX_TYPE = "linuxSeccomp"


class Unenforceable(Exception):
    """`str(err)` says why the sandbox asked for cannot be built on this host."""


@attrs.frozen
class Plan:
    """What confining one child takes. `grants` are (path, access) with access `read` or
    `write`; `binds` are ordered parents first."""

    filesystem: bool
    network: bool
    grants: tuple[tuple[str, str], ...] = ()
    binds: tuple[Bind, ...] = ()


def plan(context: SandboxContext, server: ServerPaths) -> Plan | None:
    """The confinement `context` asks for; None when it asks for none. Raises `Unenforceable`.
    Blocks (resolves paths)."""
    if context.kind != "managed":
        return None
    network = context.permissions.get("network") != "enabled"
    table = context_policy.rules(context, server)
    if table is None:
        return Plan(filesystem=False, network=True) if network else None
    access_of: dict[str, str] = {}
    for root, access in table:
        access_of.pop(root, None)
        access_of[root] = access  # equal roots: the later entry wins
    grants: list[tuple[str, str]] = []
    readonly: list[str] = []
    writable_again: list[str] = []
    for root, access in access_of.items():
        above = [(r, a) for r, a in access_of.items() if r != root and is_within(root, r)]
        if access == "none":
            granted = [r for r, a in above if a in ("read", "write")]
            if granted:
                raise Unenforceable(
                    f"cannot deny access to {root} beneath the granted root {granted[0]}")
            continue
        if access not in ("read", "write"):
            continue
        grants.append((root, access))
        if access == "read" and any(a == "write" for _, a in above) and os.path.lexists(root):
            readonly.append(root)
    for root, access in grants:
        if access == "write" and any(is_within(root, r) and r != root for r in readonly):
            writable_again.append(root)
    binds = [Bind(p, True) for p in readonly] + [Bind(p, False) for p in writable_again]
    binds.sort(key=lambda b: (_depth(b.path), not b.readonly))
    return Plan(filesystem=True, network=network, grants=tuple(grants), binds=tuple(binds))


def _depth(path: str) -> int:
    return 0 if path == "/" else path.count("/")


def access_mask(access: str, abi: int) -> int:
    return ll.fs_rights(abi) if access == "write" else ll.FS_READ_RIGHTS


def landlock_rules(confinement: Plan, abi: int, tty_path: str | None = None) -> list[Rule]:
    """The ruleset's path rules: the grants, then the devices."""
    if not confinement.filesystem:
        return []
    rules = [Rule(path, access_mask(access, abi)) for path, access in confinement.grants]
    device = ll.FS_READ_FILE | ll.FS_WRITE_FILE
    rules += [Rule(path, device) for path in DEVICES_RW]
    tty = device | (ll.FS_IOCTL_DEV if abi >= 5 else 0)
    rules += [Rule(path, tty) for path in (*DEVICES_TTY, *([tty_path] if tty_path else []))]
    return rules


@attrs.frozen
class Handled:
    fs: int
    net: int
    scoped: int


def handled(confinement: Plan, abi: int) -> Handled:
    return Handled(
        fs=ll.fs_rights(abi) if confinement.filesystem else 0,
        net=ll.NET_BIND_TCP | ll.NET_CONNECT_TCP if confinement.network and abi >= 4 else 0,
        scoped=(ll.SCOPE_SIGNAL | (ll.SCOPE_ABSTRACT_UNIX_SOCKET if confinement.network else 0))
        if abi >= 6 else 0,
    )


def unavailable_reason(confinement: Plan) -> str | None:
    """Why `confinement` cannot be built here (None: it can). Blocks (probes once)."""
    reason = ll.unavailable_reason()
    if reason is not None:
        return reason
    if confinement.network and ll.syscall_table() is None:
        return f"no seccomp network filter for this machine ({os.uname().machine})"
    if confinement.binds:
        return mount_namespace_reason()
    return None


def prepare(confinement: Plan, *, cwd: str, tty_path: str | None = None,
            before: Callable[[], None] | None = None) -> ChildHook:
    """The child's `preexec_fn`, with its ruleset built. Raises `Unenforceable`, or OSError
    when a rule cannot be added. The caller passes `hook.ruleset_fd` to the child (unless -1)
    and calls `hook.close()` once the spawn is over. Blocks."""
    reason = unavailable_reason(confinement)
    if reason is not None:
        raise Unenforceable(reason)
    abi = ll.abi_version()
    mask = handled(confinement, abi)
    fd = -1
    if mask.fs or mask.net or mask.scoped:
        fd = ll.create_ruleset(handled_fs=mask.fs, handled_net=mask.net, scoped=mask.scoped,
                               rules=landlock_rules(confinement, abi, tty_path))
    table = ll.syscall_table()
    seccomp = ll.network_filter(table) if confinement.network and table is not None else None
    return ChildHook(ruleset_fd=fd, seccomp=seccomp, binds=confinement.binds,
                     user_ns=os.geteuid() != 0, cwd=posixpath.normpath(cwd), before=before)


@cache
def mount_namespace_reason() -> str | None:
    """Whether a child can get a private mount namespace (as root, or through a user
    namespace): tried once, on `/bin/true`."""
    hook = ChildHook(ruleset_fd=-1, seccomp=None, binds=(), user_ns=os.geteuid() != 0, cwd="/")
    try:
        subprocess.run(["/bin/true"], preexec_fn=hook.enter_mount_namespace, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        kind = "a user namespace" if os.geteuid() else "a mount namespace"
        return (f"read-only carve-outs inside writable roots need {kind} for the child, "
                f"which this host refuses ({exc})")
    return None
