"""`read_file`, `write_file`, `list_dir`, `edit_file`: the file tools.

Rule: a relative path is relative to the tool set's working directory, joined as a POSIX path
(it may name a directory on a remote machine: nothing is resolved locally). `edit_file`
replaces exactly one occurrence of `old_string`; zero or several matches are refused.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

import attrs

from ..environment.base import Environment
from .spec import FILESYSTEM, ToolError, require

DEFAULT_LINE_LIMIT = 2000


@attrs.define(eq=False)
class FileTools:
    env: Environment
    cwd: str

    def _path(self, args: Mapping[str, Any]) -> str:
        return posixpath.normpath(posixpath.join(self.cwd, args["path"]))

    async def read_file(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        text = (await self.env.filesystem.read_file(self._path(args))).decode("utf-8", "replace")
        offset = args.get("offset", 1)
        limit = args.get("limit", DEFAULT_LINE_LIMIT)
        if offset < 1 or limit < 1:
            raise ToolError("read_file: offset and limit must be at least 1")
        lines = text.splitlines()[offset - 1 : offset - 1 + limit]
        return "\n".join(f"L{offset + i}: {line}" for i, line in enumerate(lines))

    async def write_file(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        path = self._path(args)
        data = args["content"].encode()
        await self.env.filesystem.write_file(path, data)
        return f"wrote {len(data)} bytes to {path}"

    async def list_dir(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        entries = await self.env.filesystem.read_directory(self._path(args))
        names = sorted(e.file_name + ("/" if e.is_directory else "") for e in entries)
        return "\n".join(names)

    async def edit_file(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        path = self._path(args)
        old, new = args["old_string"], args["new_string"]
        if not old:
            raise ToolError("edit_file: old_string must not be empty")
        try:
            text = (await self.env.filesystem.read_file(path)).decode("utf-8")
        except UnicodeDecodeError:
            raise ToolError(f"edit_file: {path} is not UTF-8 text; it cannot be edited") from None
        count = text.count(old)
        if count != 1:
            where = "not found" if count == 0 else f"found {count} times"
            raise ToolError(f"edit_file: old_string {where} in {path}; it must match exactly once")
        await self.env.filesystem.write_file(path, text.replace(old, new, 1).encode())
        return f"edited {path}"
