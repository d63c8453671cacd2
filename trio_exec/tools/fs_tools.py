"""`read_file` and `list_dir`: reading the environment's files, in codex's shapes.

Rules:
- A relative path is relative to the tool set's working directory, joined as a POSIX path (it
  may name a directory on a remote machine: nothing is resolved locally).
- `read_file {file_path, offset=1, limit=2000}` returns the lines as `L<n>: <text>`; an offset
  past the end is refused ("offset exceeds file length").
- `list_dir {dir_path, offset=1, limit=25, depth=2}` returns `Absolute path: <dir>` and then
  the entries breadth-first to `depth` levels, sorted by their relative path, indented two
  spaces per level, directories marked `/` and entries that are neither file nor directory
  (dangling links, sockets) `?`; `offset`/`limit` pick a 1-indexed window of that list and a
  cut list ends with `More than <n> entries found`.
- There is no write tool here: `apply_patch` is the one way to change files.
"""

from __future__ import annotations

import posixpath
from collections import deque
from collections.abc import Mapping
from typing import Any

import attrs

from trio_exec.environment.base import Environment
from trio_exec.tools.spec import FILESYSTEM, ToolError, require

DEFAULT_LINE_LIMIT = 2000
DEFAULT_ENTRY_LIMIT = 25
DEFAULT_DEPTH = 2


def _positive(args: Mapping[str, Any], name: str, default: int, what: str) -> int:
    value: int = args.get(name, default)
    if value < 1:
        raise ToolError(what)
    return value


@attrs.define(eq=False)
class FileTools:
    env: Environment
    cwd: str

    def path(self, given: str) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, given))

    async def read_file(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        offset = _positive(args, "offset", 1, "offset must be a 1-indexed line number")
        limit = _positive(args, "limit", DEFAULT_LINE_LIMIT, "limit must be greater than zero")
        data = await self.env.filesystem.read_file(self.path(args["file_path"]))
        lines = data.decode("utf-8", "replace").splitlines()
        if offset > max(len(lines), 1):
            raise ToolError("offset exceeds file length")
        window = lines[offset - 1 : offset - 1 + limit]
        return "\n".join(f"L{offset + i}: {line}" for i, line in enumerate(window))

    async def list_dir(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        offset = _positive(args, "offset", 1, "offset must be a 1-indexed entry number")
        limit = _positive(args, "limit", DEFAULT_ENTRY_LIMIT, "limit must be greater than zero")
        depth = _positive(args, "depth", DEFAULT_DEPTH, "depth must be greater than zero")
        root = self.path(args["dir_path"])
        entries = await self._walk(root, depth)
        lines = [f"Absolute path: {root}"]
        if entries:
            if offset > len(entries):
                raise ToolError("offset exceeds directory entry count")
            window = entries[offset - 1 : offset - 1 + limit]
            lines += [line for _, line in window]
            if offset - 1 + len(window) < len(entries):
                lines.append(f"More than {len(window)} entries found")
        return "\n".join(lines)

    async def _walk(self, root: str, depth: int) -> list[tuple[str, str]]:
        """(relative path, display line) of every entry down to `depth`, sorted by path."""
        found: list[tuple[str, str]] = []
        queue: deque[tuple[str, str, int]] = deque([(root, "", depth)])
        while queue:
            directory, prefix, remaining = queue.popleft()
            level = prefix.count("/") + 1 if prefix else 0
            for entry in await self.env.filesystem.read_directory(directory):
                relative = f"{prefix}/{entry.file_name}" if prefix else entry.file_name
                mark = "/" if entry.is_directory else "" if entry.is_file else "?"
                found.append((relative, "  " * level + entry.file_name + mark))
                if entry.is_directory and remaining > 1:
                    queue.append((posixpath.join(directory, entry.file_name), relative,
                                  remaining - 1))
        found.sort(key=lambda item: item[0])
        return found
