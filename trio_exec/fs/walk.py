"""`fs/walk` (0.169): a bounded breadth-first listing of a directory tree, as a blocking function.

Rules (the codex 0.169.0 exec-server, probed black-box; docs/protocol-dialects.md §2):
- Limits: `maxDirectories` and `maxEntries` must be at least 1, else -32600 ``filesystem walk
  limits must be greater than zero``; above depth 64, 10000 directories or 50000 entries,
  -32600 ``filesystem walk limits exceed maximums: depth=64, directories=10000,
  entries=50000``. Both are judged before the path is looked at.
- The root is followed: a missing or dangling root fails (-32004 for ENOENT). A root that is a
  symlink without `followDirectorySymlinks`, or that is not a directory, walks to nothing.
- Breadth first; each directory's entries in byte order of their names. The root is depth 0;
  a directory at depth d is read when d <= `maxDepth` (so `maxDepth: 0` lists the root only).
- Listed: regular files (`file`) and directories (`directory`). A symlink to a directory is
  listed (as `directory`) only with `followDirectorySymlinks`; symlinks to anything else,
  FIFOs, sockets and devices are never listed.
- `maxEntries` counts every examined entry, listed or not, except dangling symlinks (which are
  skipped silently). When one more entry would exceed it, the walk stops with `truncated`.
- `maxDirectories` counts directory reads, the root's included; a directory left unread
  because of it sets `truncated`.
- A directory is read at most once (by device and inode, first come first served), so
  symlink loops end; `pruneHiddenDirectories` lists directories named `.…` but does not read
  them.
- An entry that cannot be examined (`lstat` fails), or a directory below the root that cannot
  be read, becomes an `errors` item `{path, message}` with the OS error's text.
- Race-free: each directory is read through a descriptor, its entries examined relative to it
  (`fstatat`); a directory queued for reading is opened again by path and must still be the
  directory that was examined (device and inode), else it is an `errors` item
  ``directory was replaced during the walk`` and is not read. A confined root (`target.py`)
  is opened without following symlinks.
"""

from __future__ import annotations

import collections
import os
import stat

import attrs

from trio_exec.fs.target import Target, as_target, open_target
from trio_exec.proto.errors import InvalidRequest, os_error_text

MAX_DEPTH = 64
MAX_DIRECTORIES = 10_000
MAX_ENTRIES = 50_000

LIMITS_NOT_POSITIVE = "filesystem walk limits must be greater than zero"
LIMITS_TOO_LARGE = (
    f"filesystem walk limits exceed maximums: depth={MAX_DEPTH}, "
    f"directories={MAX_DIRECTORIES}, entries={MAX_ENTRIES}"
)

FILE = "file"
DIRECTORY = "directory"
REPLACED = "directory was replaced during the walk"
_READ_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC


@attrs.frozen
class WalkLimits:
    max_depth: int
    max_directories: int
    max_entries: int
    follow_directory_symlinks: bool
    prune_hidden_directories: bool

    def check(self) -> None:
        """The reference's limit refusals (-32600), before any filesystem access."""
        if self.max_directories == 0 or self.max_entries == 0:
            raise InvalidRequest(LIMITS_NOT_POSITIVE)
        if (
            self.max_depth > MAX_DEPTH
            or self.max_directories > MAX_DIRECTORIES
            or self.max_entries > MAX_ENTRIES
        ):
            raise InvalidRequest(LIMITS_TOO_LARGE)


@attrs.define
class WalkOutcome:
    #: (native path, kind)
    entries: list[tuple[str, str]] = attrs.field(factory=list)
    #: (native path, message)
    errors: list[tuple[str, str]] = attrs.field(factory=list)
    truncated: bool = False


def _join(directory: str, name: str) -> str:
    return os.path.join(directory, name)


def _key(info: os.stat_result) -> tuple[int, int]:
    return info.st_dev, info.st_ino


def _names(fd: int) -> list[str]:
    """The entries of the directory open as `fd`, in byte order."""
    with os.scandir(fd) as listing:
        return sorted((entry.name for entry in listing), key=os.fsencode)


def walk(root: str | Target, limits: WalkLimits) -> WalkOutcome:
    """Walk `root` (OS errors about the root itself propagate)."""
    target = as_target(root)
    outcome = WalkOutcome()
    fd = open_target(target, os.O_PATH)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISDIR(info.st_mode):
        return outcome
    if not limits.follow_directory_symlinks and stat.S_ISLNK(os.lstat(target.given).st_mode):
        return outcome
    visited = {_key(info)}
    queue: collections.deque[tuple[str, int, tuple[int, int]]] = collections.deque(
        [(target.given, 0, _key(info))]
    )
    directories_read = 0
    examined = 0
    while queue:
        directory, depth, key = queue.popleft()
        if directories_read >= limits.max_directories:
            outcome.truncated = True
            return outcome
        directories_read += 1
        try:
            if depth == 0:
                fd = open_target(target, _READ_DIRECTORY)
            else:
                fd = os.open(directory, _READ_DIRECTORY)
        except OSError as exc:
            if depth == 0:
                raise
            outcome.errors.append((directory, os_error_text(exc)))
            continue
        try:
            if _key(os.fstat(fd)) != key:
                outcome.errors.append((directory, REPLACED))
                continue
            try:
                names = _names(fd)
            except OSError as exc:
                if depth == 0:
                    raise
                outcome.errors.append((directory, os_error_text(exc)))
                continue
            for name in names:
                path = _join(directory, name)
                try:
                    own = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except OSError as exc:
                    outcome.errors.append((path, os_error_text(exc)))
                    continue
                mode = own.st_mode
                target_info: os.stat_result | None = None
                if stat.S_ISLNK(mode):
                    try:
                        target_info = os.stat(name, dir_fd=fd)
                    except OSError:
                        continue  # dangling: skipped, not counted
                if examined >= limits.max_entries:
                    outcome.truncated = True
                    return outcome
                examined += 1
                if target_info is not None:
                    if not (
                        limits.follow_directory_symlinks and stat.S_ISDIR(target_info.st_mode)
                    ):
                        continue
                    kind = DIRECTORY
                elif stat.S_ISDIR(mode):
                    kind = DIRECTORY
                elif stat.S_ISREG(mode):
                    kind = FILE
                else:
                    continue
                outcome.entries.append((path, kind))
                if kind != DIRECTORY or depth + 1 > limits.max_depth:
                    continue
                if limits.prune_hidden_directories and name.startswith("."):
                    continue
                child_key = _key(target_info if target_info is not None else own)
                if child_key in visited:
                    continue
                visited.add(child_key)
                queue.append((path, depth + 1, child_key))
        finally:
            os.close(fd)
    return outcome
