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
"""

from __future__ import annotations

import collections
import os
import stat

import attrs

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


def _join(directory: str, name: bytes) -> str:
    return os.path.join(directory, os.fsdecode(name))


def walk(root: str, limits: WalkLimits) -> WalkOutcome:
    """Walk `root` (OS errors about the root itself propagate)."""
    outcome = WalkOutcome()
    info = os.stat(root)
    if not stat.S_ISDIR(info.st_mode):
        return outcome
    if not limits.follow_directory_symlinks and stat.S_ISLNK(os.lstat(root).st_mode):
        return outcome
    visited = {(info.st_dev, info.st_ino)}
    queue: collections.deque[tuple[str, int]] = collections.deque([(root, 0)])
    directories_read = 0
    examined = 0
    while queue:
        directory, depth = queue.popleft()
        if directories_read >= limits.max_directories:
            outcome.truncated = True
            return outcome
        directories_read += 1
        try:
            with os.scandir(os.fsencode(directory)) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            if directory == root:
                raise
            outcome.errors.append((directory, os_error_text(exc)))
            continue
        for name in names:
            path = _join(directory, name)
            try:
                own = os.lstat(path)
            except OSError as exc:
                outcome.errors.append((path, os_error_text(exc)))
                continue
            mode = own.st_mode
            target: os.stat_result | None = None
            if stat.S_ISLNK(mode):
                try:
                    target = os.stat(path)
                except OSError:
                    continue  # dangling: skipped, not counted
            if examined >= limits.max_entries:
                outcome.truncated = True
                return outcome
            examined += 1
            if target is not None:
                if not (limits.follow_directory_symlinks and stat.S_ISDIR(target.st_mode)):
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
            if limits.prune_hidden_directories and name.startswith(b"."):
                continue
            key_info = target if target is not None else own
            key = (key_info.st_dev, key_info.st_ino)
            if key in visited:
                continue
            visited.add(key)
            queue.append((path, depth + 1))
    return outcome
