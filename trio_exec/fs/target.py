"""Where a checked `fs/*` operation acts, and how it gets there without a symlink race.

Rules:
- The sandbox check resolves a path (every symlink followed) and judges where it lands. Acting
  on the original path afterwards would follow its symlinks a second time, and a client that
  swaps one in between (a link inside a writable root, re-pointed outside) would have the
  operation land outside the roots. So a check that restricts anything yields a *confined*
  `Target`: the resolved path, which the operation walks **without following any symlink**.
  The place reached is then exactly the place judged. A symlink found on the way (one that
  appeared since the check, or a loop the check stopped at) ends the walk with ELOOP; the
  caller then judges the path again, which refuses an escape with the policy's own text.
- The walk is one `openat2(RESOLVE_NO_SYMLINKS)` (Linux 5.6+), or, where `openat2` answers
  ENOSYS, a walk from `/` one component at a time, each opened with
  `O_NOFOLLOW` relative to the directory before it: the same result in more system calls.
- Operations that are not opens (mkdir, unlink, rmdir, symlink, readlink, stat) run relative
  to the parent directory reached that way (`*_at` calls on `Place.dir_fd`, the last component
  `Place.name`, never followed unless the operation follows it by design).
- An unrestricted check (no policy, full access) yields an unconfined target: the original
  path, resolved by the kernel at the operation, as the reference does.

Everything here blocks: call it from a worker thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import posixpath
import stat
from collections.abc import Iterator

import attrs

_SYS_OPENAT2 = 437  # the same number on every Linux architecture
_RESOLVE_NO_SYMLINKS = 0x04
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC


class _OpenHow(ctypes.Structure):
    _fields_ = [
        ("flags", ctypes.c_uint64),
        ("mode", ctypes.c_uint64),
        ("resolve", ctypes.c_uint64),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


@attrs.define
class _Openat2:
    """Whether `openat2` is usable here: decided by its first call (ENOSYS: an old kernel,
    or a seccomp filter that hides it). Tests switch it off to exercise the fallback walk."""

    usable: bool = True


OPENAT2 = _Openat2()


@attrs.frozen
class Target:
    """A path an operation acts on. `confined`: `path` is the checked, resolved path and must
    be walked without following symlinks. `given` is the path as the request named it (for
    error texts and for what concerns the name itself, such as `isSymlink`)."""

    path: str
    confined: bool = False
    given: str = attrs.field(default=attrs.Factory(lambda self: self.path, takes_self=True))


@attrs.frozen
class Place:
    """The last component of a target and the directory holding it: `dir_fd` is None for an
    unconfined target (then `name` is the whole path, as `*_at` calls take it)."""

    dir_fd: int | None
    name: str


def as_target(path: str | Target) -> Target:
    return path if isinstance(path, Target) else Target(path)


def _openat2(path: str, flags: int, mode: int) -> int | None:
    """The descriptor, or None when `openat2` is not available."""
    how = _OpenHow(flags, mode if flags & os.O_CREAT else 0, _RESOLVE_NO_SYMLINKS)
    raw = os.fsencode(path)
    fd = _syscall(
        ctypes.c_long(_SYS_OPENAT2),
        ctypes.c_int(-100),  # AT_FDCWD; the path is absolute
        ctypes.c_char_p(raw),
        ctypes.byref(how),
        ctypes.c_size_t(ctypes.sizeof(how)),
    )
    if fd >= 0:
        return int(fd)
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        OPENAT2.usable = False
        return None
    raise OSError(code, os.strerror(code), path)


def _walk_open(path: str, flags: int, mode: int) -> int:
    """`path` opened one component at a time from `/`, never following a symlink."""
    parts = [part for part in path.split("/") if part]
    if not parts:
        return os.open("/", flags, mode)
    directory = os.open("/", _DIR_FLAGS)
    try:
        for part in parts[:-1]:
            step = step_into(directory, part)
            os.close(directory)
            directory = step
        return os.open(parts[-1], flags | os.O_NOFOLLOW, mode, dir_fd=directory)
    finally:
        os.close(directory)


def step_into(directory: int, name: str, *, follow: bool = False) -> int:
    """The directory `name` inside `directory`, as an `O_PATH` descriptor; a symlink there is
    ELOOP unless `follow`, anything else that is not a directory ENOTDIR."""
    flags = os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    step = os.open(name, flags, dir_fd=directory)
    kind = os.fstat(step).st_mode
    if not stat.S_ISDIR(kind):
        os.close(step)
        code = errno.ELOOP if stat.S_ISLNK(kind) else errno.ENOTDIR
        raise OSError(code, os.strerror(code), name)
    return step


def open_confined(path: str, flags: int, mode: int = 0o666) -> int:
    """Open absolute `path` without following any symlink on the way (see the module rules)."""
    flags |= os.O_CLOEXEC
    if OPENAT2.usable:
        fd = _openat2(path, flags, mode)
        if fd is not None:
            return fd
    return _walk_open(path, flags, mode)


def open_target(target: Target, flags: int, mode: int = 0o666) -> int:
    """Open `target` (its last component followed unless `flags` has `O_NOFOLLOW`)."""
    if target.confined:
        return open_confined(target.path, flags, mode)
    return os.open(target.path, flags | os.O_CLOEXEC, mode)


@contextlib.contextmanager
def place_of(target: Target) -> Iterator[Place]:
    """The `Place` of `target`, its directory descriptor open for the block."""
    parent, name = posixpath.split(target.path)
    if not target.confined or not name:
        yield Place(None, target.path)
        return
    fd = open_confined(parent, _DIR_FLAGS)
    try:
        yield Place(fd, name)
    finally:
        os.close(fd)

