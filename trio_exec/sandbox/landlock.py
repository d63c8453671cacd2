"""The kernel side of confining a child: Landlock, a seccomp network filter, read-only binds.

Everything that can fail or allocate is done in the PARENT (`prepare`): the Landlock ruleset is
built there (`landlock_create_ruleset`, one `landlock_add_rule` per allowed path, each opened
with `O_PATH`), the seccomp program is packed there, the paths to bind are encoded there. The
child gets the ruleset fd (`pass_fds`) and a `ChildHook` whose `__call__` (the `preexec_fn`)
only makes system calls through ctypes function objects bound beforehand, in this order:

1. (read-only carve-outs) `unshare(CLONE_NEWNS)` (plus `CLONE_NEWUSER` and an identity uid/gid
   map when the daemon is not root), the whole tree made private, then each carve-out bound
   onto itself and remounted read-only (a nested writable root is bound again, writable);
2. `prctl(PR_SET_NO_NEW_PRIVS, 1)`;
3. (network restricted) `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, prog)`;
4. `landlock_restrict_self(ruleset_fd, 0)`, then the ruleset fd is closed.

A failing step raises in the child, so the exec never happens and the spawn fails: a child is
never started with less confinement than was prepared.

The seccomp filter (x86_64 and aarch64): `socket()` only for `AF_UNIX` and not `SOCK_DGRAM`
(a datagram socket could `sendmsg` to any socket path without `connect`); `connect`, `bind`,
`listen`, `accept`, `accept4` and `sendto` with an address fail with EPERM for every family,
so the child can reach no socket, local or remote, except through a `socketpair` of its own;
`io_uring_*` fail with EPERM (an io_uring could open sockets behind the filter's back); a
syscall of another ABI (i386 `int 0x80`, x32) kills the process.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import stat
import struct
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import cache

import attrs

# --- Landlock (include/uapi/linux/landlock.h) --------------------------------------------

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1 << 0
LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

#: Rights that may be granted on a file (not a directory).
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
FS_READ_RIGHTS = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR


def fs_rights(abi: int) -> int:
    """Every filesystem right the kernel's ABI knows."""
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


# --- seccomp ------------------------------------------------------------------------------

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS = 0x80000000
SECCOMP_RET_ERRNO = 0x00050000
SECCOMP_RET_ALLOW = 0x7FFF0000
BPF_LD_W_ABS = 0x20
BPF_JEQ_K = 0x15
BPF_JGE_K = 0x35
BPF_AND_K = 0x54
BPF_RET_K = 0x06
AF_UNIX = 1
SOCK_DGRAM = 2
SOCK_TYPE_MASK = 0xF
X32_SYSCALL_BIT = 0x40000000


@attrs.frozen
class SyscallTable:
    audit_arch: int
    socket: int
    connect: int
    bind: int
    listen: int
    accept: int
    accept4: int
    sendto: int
    io_uring: tuple[int, int, int]
    has_x32: bool


SYSCALLS = {
    "x86_64": SyscallTable(0xC000003E, 41, 42, 49, 50, 43, 288, 44, (425, 426, 427), True),
    "aarch64": SyscallTable(0xC00000B7, 198, 203, 200, 201, 202, 242, 206, (425, 426, 427), False),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def network_filter(table: SyscallTable) -> bytes:
    """The BPF program described in the module docstring (little-endian `seccomp_data`)."""
    deny = SECCOMP_RET_ERRNO | errno.EPERM
    out = [
        _insn(BPF_LD_W_ABS, 0, 0, 4),  # arch
        _insn(BPF_JEQ_K, 1, 0, table.audit_arch),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        _insn(BPF_LD_W_ABS, 0, 0, 0),  # nr
    ]
    if table.has_x32:
        out += [_insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), _insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS)]
    for nr in (table.connect, table.bind, table.listen, table.accept, table.accept4, *table.io_uring):
        out += [_insn(BPF_JEQ_K, 0, 1, nr), _insn(BPF_RET_K, 0, 0, deny)]
    # sendto(fd, buf, len, flags, dest_addr, addrlen): an address (arg 4, both halves) → EPERM.
    out += [
        _insn(BPF_JEQ_K, 0, 6, table.sendto),
        _insn(BPF_LD_W_ABS, 0, 0, 16 + 4 * 8),
        _insn(BPF_JEQ_K, 0, 3, 0),
        _insn(BPF_LD_W_ABS, 0, 0, 16 + 4 * 8 + 4),
        _insn(BPF_JEQ_K, 0, 1, 0),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        _insn(BPF_RET_K, 0, 0, deny),
    ]
    # socket(domain, type, protocol): AF_UNIX and not SOCK_DGRAM, else EPERM.
    out += [
        _insn(BPF_JEQ_K, 0, 7, table.socket),
        _insn(BPF_LD_W_ABS, 0, 0, 16),  # args[0], low half
        _insn(BPF_JEQ_K, 1, 0, AF_UNIX),
        _insn(BPF_RET_K, 0, 0, deny),
        _insn(BPF_LD_W_ABS, 0, 0, 24),  # args[1], low half
        _insn(BPF_AND_K, 0, 0, SOCK_TYPE_MASK),
        _insn(BPF_JEQ_K, 0, 1, SOCK_DGRAM),
        _insn(BPF_RET_K, 0, 0, deny),
        _insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    return b"".join(out)


def syscall_table() -> SyscallTable | None:
    """The seccomp constants of this machine; None where the filter is not written."""
    return SYSCALLS.get(platform.machine()) if sys.byteorder == "little" else None


# --- ctypes plumbing ---------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_prctl = _libc.prctl
_prctl.restype = ctypes.c_int
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_unshare = _libc.unshare
_unshare.restype = ctypes.c_int
_unshare.argtypes = [ctypes.c_int]
_mount = _libc.mount
_mount.restype = ctypes.c_int
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class SockFilterProg(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _check(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


@cache
def _probe() -> tuple[int, int]:
    result = _syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), None, ctypes.c_size_t(0),
                      ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return (int(result), 0) if result > 0 else (0, ctypes.get_errno())


def abi_version() -> int:
    """The Landlock ABI of the running kernel; 0 when Landlock is missing or disabled."""
    return _probe()[0]


def unavailable_reason() -> str | None:
    """Why this host cannot confine a child with Landlock (None: it can)."""
    abi, code = _probe()
    if abi:
        return None
    why = {errno.ENOSYS: "not built into this kernel",
           errno.EOPNOTSUPP: "built in but disabled at boot"}.get(code, os.strerror(code))
    return f"Landlock is unavailable: {why} (needs Linux >= 5.13 with landlock in lsm=)"


# --- the plan the parent prepares ----------------------------------------------------------


@attrs.frozen
class Rule:
    """Grant `access` (a mask) beneath `path` (or on it, for a file)."""

    path: str
    access: int


@attrs.frozen
class Bind:
    """Bind `path` onto itself; read-only or writable."""

    path: str
    readonly: bool


class ChildHook:
    """The `preexec_fn`: applies what `prepare` built. Owns `ruleset_fd` until the spawn is
    over: `close()` in the parent afterwards (the child closes its own copy)."""

    def __init__(self, *, ruleset_fd: int, seccomp: bytes | None, binds: Sequence[Bind],
                 user_ns: bool, cwd: str, before: Callable[[], None] | None = None) -> None:
        self.ruleset_fd = ruleset_fd
        self._before = before
        self._user_ns = user_ns
        self._binds = [(os.fsencode(b.path), b.readonly, self._locked_flags(b.path)) for b in binds]
        self._cwd = os.fsencode(cwd)
        self._uid_map = f"{os.geteuid()} {os.geteuid()} 1\n".encode()
        self._gid_map = f"{os.getegid()} {os.getegid()} 1\n".encode()
        self._prog_buffer = None
        self._prog_address = 0
        if seccomp is not None:
            self._prog_buffer = ctypes.create_string_buffer(seccomp, len(seccomp))
            self._prog = SockFilterProg(len(seccomp) // 8, ctypes.addressof(self._prog_buffer))
            self._prog_address = ctypes.addressof(self._prog)
        self._restrict = (ctypes.c_long(SYS_LANDLOCK_RESTRICT_SELF), ctypes.c_int(ruleset_fd),
                          ctypes.c_uint32(0))

    def close(self) -> None:
        if self.ruleset_fd >= 0:
            os.close(self.ruleset_fd)
            self.ruleset_fd = -1

    # runs in the child, between fork and exec
    def __call__(self) -> None:
        if self._before is not None:
            self._before()
        if self._binds:
            self.enter_mount_namespace()
            for path, readonly, locked in self._binds:
                _check(_mount(path, path, None, MS_BIND | MS_REC, None))
                if readonly:
                    _check(_mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked, None))
            os.chdir(self._cwd)  # a cwd beneath a carve-out must see the read-only mount
        _check(_prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        if self._prog_address:
            _check(_prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, self._prog_address, 0, 0))
        if self.ruleset_fd >= 0:
            _check(_syscall(*self._restrict))
            os.close(self.ruleset_fd)

    def enter_mount_namespace(self) -> None:
        """A private mount namespace (inside a new user namespace mapping only our own ids,
        when not root), propagation cut from the parent's."""
        if self._user_ns:
            _check(_unshare(CLONE_NEWUSER | CLONE_NEWNS))
            for name, data in ((b"/proc/self/setgroups", b"deny"), (b"/proc/self/uid_map", self._uid_map),
                               (b"/proc/self/gid_map", self._gid_map)):
                fd = os.open(name, os.O_WRONLY)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        else:
            _check(_unshare(CLONE_NEWNS))
        _check(_mount(None, b"/", None, MS_REC | MS_PRIVATE, None))

    def _locked_flags(self, path: str) -> int:
        """In a user namespace a remount must keep nosuid/nodev/noexec as they are."""
        if not self._user_ns:
            return 0
        flags = os.statvfs(path).f_flag
        out = 0
        for st_flag, ms_flag in ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC)):
            if flags & st_flag:
                out |= ms_flag
        return out


def create_ruleset(*, handled_fs: int, handled_net: int, scoped: int, rules: Iterable[Rule]) -> int:
    """A ruleset fd with `rules` added (paths that do not exist are skipped). Raises OSError."""
    attr = RulesetAttr(handled_fs, handled_net, scoped)
    fd = _check(_syscall(ctypes.c_long(SYS_LANDLOCK_CREATE_RULESET), ctypes.byref(attr),
                         ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)))
    try:
        for rule in rules:
            add_rule(fd, rule)
    except BaseException:
        os.close(fd)
        raise
    return fd


def add_rule(ruleset_fd: int, rule: Rule) -> None:
    try:
        path_fd = os.open(rule.path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        access = rule.access
        if not stat.S_ISDIR(os.fstat(path_fd).st_mode):
            access &= FS_FILE_RIGHTS
        if not access:
            return
        attr = PathBeneathAttr(access, path_fd)
        _check(_syscall(ctypes.c_long(SYS_LANDLOCK_ADD_RULE), ctypes.c_int(ruleset_fd),
                        ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH), ctypes.byref(attr), ctypes.c_uint32(0)))
    finally:
        os.close(path_fd)
