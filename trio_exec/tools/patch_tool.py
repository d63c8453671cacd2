"""`apply_patch {input}`: apply a patch through the environment's filesystem, all or nothing.

Rules:
- Paths are relative to the tool set's working directory (absolute paths are used as they
  are), joined and normalised as POSIX paths; every read and write goes through
  `env.filesystem`, so a remote environment is patched on its own machine.
- Verify, then write. First every path the patch names is read (its type, and a file's
  bytes), and so is the nearest existing ancestor of every file to be written; the pure
  planner (`patch_plan`) then checks every chunk of every file against that snapshot. A
  patch that fails there changes nothing, and the reply names the file, the chunk and the
  reason (context not found, file missing, a directory in the way, a malformed patch).
- Writing: deletions first, then the writes (missing parent directories are created one by
  one). Each step records how to undo it (the original bytes are in the snapshot).
- The remaining risk is an I/O failure (or a cancellation) between the first write and the
  last, e.g. a full disk, a permission refused, a file changed by someone else meanwhile.
  Then the steps already done are undone in reverse order (shielded, bounded by
  `UNDO_TIMEOUT`): rewritten files get their original bytes back, added files and created
  directories are removed, deleted files are written back. The reply says what failed and
  whether the undo restored everything; only when the undo itself fails (the same broken
  disk, or the connection to a remote environment gone) are files left changed, and the
  reply lists them. Nothing guards against another writer between verifying and writing.
- Success returns codex's summary (`Success. Updated the following files:` and one
  `A`/`M`/`D` line per operation).

Cancellation: a cancel during the writes undoes what was written (shielded), then
propagates; a cancel before them leaves everything as it was.
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import trio

from trio_exec.client.errors import ClientError
from trio_exec.environment.base import Environment, FileSystem
from trio_exec.proto.errors import NotFound, RpcError
from trio_exec.tools.patch_parse import PatchSyntaxError, parse_patch
from trio_exec.tools.patch_plan import (
    DIRECTORY,
    MISSING,
    FileBytes,
    FileState,
    PatchConflict,
    Plan,
    paths_of,
    plan_patch,
)
from trio_exec.tools.spec import FILESYSTEM, ToolError, require

#: How long undoing a half-written patch may take before the rest is reported as left over.
UNDO_TIMEOUT = 30.0

APPLY_PATCH_DESCRIPTION = (
    "Edit files with a patch; all of it applies or nothing does. `input` is the whole patch: "
    "'*** Begin Patch', then for each file '*** Add File: PATH' with every line prefixed by "
    "'+', or '*** Delete File: PATH', or '*** Update File: PATH' (optionally followed by "
    "'*** Move to: NEW_PATH') with chunks that start with '@@' (optionally '@@ ' and a line "
    "near the change, such as a function header) and hold ' ' lines to keep (about three "
    "around each change), '-' lines to remove and '+' lines to add, a chunk that ends the "
    "file closing with '*** End of File'; then '*** End Patch'. Relative paths are relative "
    "to the working directory."
)

REJECTED = "apply_patch rejected the patch; nothing was changed"

Undo = Callable[[], Awaitable[None]]


@attrs.define(eq=False)
class PatchTool:
    env: Environment
    cwd: str

    async def apply_patch(self, args: Mapping[str, Any]) -> str:
        require(self.env, FILESYSTEM)
        fs = self.env.filesystem
        try:
            ops = parse_patch(args["input"])
            files = {path: await _read_state(fs, path) for path in paths_of(ops, self.cwd)}
            plan = plan_patch(ops, self.cwd, files)
            new_dirs = await _directories_to_create(fs, plan)
        except (PatchSyntaxError, PatchConflict) as exc:
            raise ToolError(f"{REJECTED}: {exc}") from None
        await _write(fs, plan, files, new_dirs)
        return plan.summary


#: The wire's text of ENOTDIR: a path under a file is as absent as a missing one (the
#: ancestor check then names the file in the way).
_NOT_A_DIRECTORY = "(os error 20)"


async def _read_state(fs: FileSystem, path: str) -> FileState:
    try:
        meta = await fs.get_metadata(path)
    except NotFound:
        return MISSING
    except (RpcError, ClientError) as exc:
        if _NOT_A_DIRECTORY in str(exc):
            return MISSING
        raise PatchConflict(f"cannot read {path}: {exc}") from None
    if meta.is_directory:
        return DIRECTORY
    if not meta.is_file:
        raise PatchConflict(f"{path} is not a regular file")
    try:
        return FileBytes(await fs.read_file(path))
    except (RpcError, ClientError) as exc:
        raise PatchConflict(f"cannot read {path}: {exc}") from None


async def _directories_to_create(fs: FileSystem, plan: Plan) -> list[str]:
    """The missing parent directories of the planned writes, outermost first; PatchConflict
    when an existing ancestor is not a directory (one the patch deletes counts as missing)."""
    deleted = set(plan.deletes)
    known: set[str] = set()  # directories that exist or will be created
    missing: list[str] = []
    for path in plan.writes:
        chain: list[str] = []
        parent = posixpath.dirname(path)
        while parent not in known and parent != "/":
            kind = "missing" if parent in deleted else await _kind(fs, parent)
            if kind == "directory":
                known.add(parent)
                break
            if kind == "other":
                raise PatchConflict(f"cannot write {path}: {parent} exists and is not a "
                                    "directory")
            chain.append(parent)
            parent = posixpath.dirname(parent)
        for directory in reversed(chain):
            known.add(directory)
            missing.append(directory)
    return missing


async def _kind(fs: FileSystem, path: str) -> str:
    """"missing", "directory" or "other"."""
    try:
        meta = await fs.get_metadata(path)
    except NotFound:
        return "missing"
    except (RpcError, ClientError) as exc:
        if _NOT_A_DIRECTORY in str(exc):
            return "missing"
        raise PatchConflict(f"cannot read {path}: {exc}") from None
    return "directory" if meta.is_directory else "other"


async def _write(fs: FileSystem, plan: Plan, files: Mapping[str, FileState],
                 new_dirs: list[str]) -> None:
    """Carry out `plan`, undoing the finished steps if one fails or the call is cancelled."""
    undo: list[tuple[str, Undo]] = []
    created: set[str] = set()
    try:
        for path in plan.deletes:
            original = files[path]
            assert isinstance(original, FileBytes)
            await fs.remove(path, recursive=False, force=False)
            undo.append((path, _rewrite(fs, path, original.data)))
        for path, data in plan.writes.items():
            for directory in new_dirs:
                if directory not in created and path.startswith(directory + "/"):
                    await fs.create_directory(directory, recursive=False)
                    created.add(directory)
                    undo.append((directory, _remove(fs, directory)))
            original = files[path]
            await fs.write_file(path, data)
            undo.append((path, _rewrite(fs, path, original.data) if isinstance(
                original, FileBytes) else _remove(fs, path)))
    except (RpcError, ClientError, trio.Cancelled) as exc:
        left = await _undo(undo)
        if isinstance(exc, trio.Cancelled):
            raise
        if left:
            raise ToolError(
                f"apply_patch failed while writing: {exc}. Undoing the earlier changes also "
                f"failed, so these paths are left changed: {', '.join(left)}"
            ) from None
        raise ToolError(
            f"apply_patch failed while writing: {exc}. The changes already made were undone; "
            "no file was changed."
        ) from None


def _rewrite(fs: FileSystem, path: str, data: bytes) -> Undo:
    async def undo() -> None:
        await fs.write_file(path, data)
    return undo


def _remove(fs: FileSystem, path: str) -> Undo:
    async def undo() -> None:
        await fs.remove(path, recursive=False, force=True)
    return undo


async def _undo(steps: list[tuple[str, Undo]]) -> list[str]:
    """Run the undo steps newest first; the paths that could not be restored."""
    left: list[str] = []
    pending = list(steps)
    with trio.CancelScope(shield=True), trio.move_on_after(UNDO_TIMEOUT):
        while pending:
            path, step = pending[-1]
            try:
                await step()
            except (RpcError, ClientError):
                left.append(path)
            pending.pop()
    left.extend(path for path, _ in pending)  # not reached before the timeout
    return sorted(set(left))
