"""Plan a parsed patch against the current files: what to write, what to delete (no I/O).

Rules:
- The planner sees the files as a snapshot (`FileState` per absolute path: missing, a
  directory, or a file's bytes) and applies the operations in patch order to a virtual copy,
  so a later operation sees an earlier one's result (add then update the same file works).
  Any failure raises `PatchConflict` naming the file, the chunk and the reason; nothing is
  planned then, so the caller writes nothing.
- The plan is the difference between the snapshot and the final virtual state: one write
  per file whose final content differs from what is there, one delete per file that ends
  missing. The summary lists every operation as codex prints it: `A` adds, then `M` updates
  (a moved file under its new path), then `D` deletes, each under the path as written in
  the patch, one line per operation (a file updated twice is listed twice).
- Locating a chunk (codex's rules): its `@@` context line is searched from the end of the
  previous chunk, and the chunk's old lines from after it. Each search tries, in order, an
  exact match, a match ignoring trailing whitespace, one ignoring surrounding whitespace,
  and one that also reads typographic dashes, quotes and spaces as their ASCII forms. A chunk
  marked `*** End of File` must match at the very end of the file (no earlier match is
  tried). When old lines ending with an empty line are not found, they are tried once more
  without it. A chunk that removes nothing appends its lines at the end of the file,
  whatever its context line says (surprising, but codex does exactly this).
- A kept (" ") line stays as the file has it, even when it matched only loosely (its
  spaces, its line end); removed lines go, added lines are the patch's.
- Line ends: every line keeps its own ending ("\\n" or "\\r\\n"); new lines take the file's
  first line ending (LF when it has none); an updated file always ends with a line end.
  Added files are written exactly as the "+" lines give them (LF).
- Deliberate differences from codex: moving a file onto its own path is a plain update
  (codex writes the file and then deletes it); deleting a file does not require it to be
  UTF-8 text (codex reads it as text first); an Add File onto a directory, a Delete File
  of a directory, and a path that must be both a file and a parent directory are refused
  up front instead of failing half-way.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping, Sequence

import attrs

from trio_exec.tools.patch_parse import AddFile, Chunk, DeleteFile, FileOp, UpdateFile

SUMMARY_HEADER = "Success. Updated the following files:"


@attrs.frozen
class Missing:
    pass


@attrs.frozen
class Directory:
    pass


@attrs.frozen
class FileBytes:
    data: bytes


FileState = Missing | Directory | FileBytes
MISSING = Missing()
DIRECTORY = Directory()


class PatchConflict(Exception):
    """The patch does not apply to the current files; `str(err)` says where and why."""


@attrs.frozen(kw_only=True)
class Plan:
    """`writes` in first-touched order; `deletes` likewise; `summary` is the tool's output."""

    writes: dict[str, bytes]
    deletes: list[str]
    summary: str


def resolve(cwd: str, path: str) -> str:
    """`path` as an absolute, lexically normalised POSIX path (relative to `cwd`)."""
    return posixpath.normpath(posixpath.join(cwd, path))


def paths_of(ops: Sequence[FileOp], cwd: str) -> list[str]:
    """Every absolute path the operations read or write, in first-mention order."""
    seen: dict[str, None] = {}
    for op in ops:
        seen[resolve(cwd, op.path)] = None
        if isinstance(op, UpdateFile) and op.move_to is not None:
            seen[resolve(cwd, op.move_to)] = None
    return list(seen)


def plan_patch(ops: Sequence[FileOp], cwd: str, files: Mapping[str, FileState]) -> Plan:
    """The writes and deletes that turn `files` into the patched state; PatchConflict if any
    operation does not apply. `files` must hold every path of `paths_of(ops, cwd)`."""
    if not ops:
        raise PatchConflict("the patch has no file operations; nothing was changed")
    state: dict[str, FileState] = {}
    added: list[str] = []
    modified: list[str] = []
    deleted: list[str] = []

    def current(path: str) -> FileState:
        return state[path] if path in state else files[path]

    for op in ops:
        path = resolve(cwd, op.path)
        where = f"{_header(op)} (patch line {op.line})"
        if isinstance(op, AddFile):
            if isinstance(current(path), Directory):
                raise PatchConflict(f"{where}: {path} exists and is a directory")
            state[path] = FileBytes(op.content.encode())
            added.append(op.path)
        elif isinstance(op, DeleteFile):
            if not isinstance(current(path), FileBytes):
                raise PatchConflict(f"{where}: {_not_a_file(path, current(path))}")
            state[path] = MISSING
            deleted.append(op.path)
        else:
            existing = current(path)
            if not isinstance(existing, FileBytes):
                raise PatchConflict(f"{where}: {_not_a_file(path, existing)}")
            try:
                text = existing.data.decode("utf-8")
            except UnicodeDecodeError:
                raise PatchConflict(f"{where}: {path} is not UTF-8 text") from None
            new = FileBytes(apply_chunks(text, op.chunks, path, where).encode())
            target = path if op.move_to is None else resolve(cwd, op.move_to)
            if target != path:
                if isinstance(current(target), Directory):
                    raise PatchConflict(f"{where}: cannot move to {target}: it is a directory")
                state[path] = MISSING
            state[target] = new
            modified.append(op.path if op.move_to is None else op.move_to)

    _refuse_file_as_parent(state)
    writes = {p: s.data for p, s in state.items()
              if isinstance(s, FileBytes) and files[p] != s}
    deletes = [p for p, s in state.items() if isinstance(s, Missing) and files[p] != s]
    lines = [SUMMARY_HEADER, *(f"A {p}" for p in added), *(f"M {p}" for p in modified),
             *(f"D {p}" for p in deleted)]
    return Plan(writes=writes, deletes=deletes, summary="\n".join(lines) + "\n")


def _header(op: FileOp) -> str:
    kind = {AddFile: "Add File", DeleteFile: "Delete File", UpdateFile: "Update File"}
    return f"{kind[type(op)]}: {op.path}"


def _not_a_file(path: str, state: FileState) -> str:
    if isinstance(state, Directory):
        return f"{path} is a directory, not a file"
    return f"{path} does not exist"


def _refuse_file_as_parent(state: Mapping[str, FileState]) -> None:
    files = {p for p, s in state.items() if isinstance(s, FileBytes)}
    for path in files:
        parent = posixpath.dirname(path)
        while parent not in ("/", ""):
            if parent in files:
                raise PatchConflict(f"{parent} would have to be both a file and the "
                                    f"directory holding {path}")
            parent = posixpath.dirname(parent)


# --------------------------------------------------------------------------- line matching

_ASCII = str.maketrans({
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212", "-"),
    **dict.fromkeys("\u2018\u2019\u201a\u201b", "'"),
    **dict.fromkeys("\u201c\u201d\u201e\u201f", '"'),
    **dict.fromkeys("\u00a0\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f"
                    "\u205f\u3000", " "),
})

#: The four ways of comparing a file line with a patch line, strictest first.
_PASSES = (
    lambda s: s,
    str.rstrip,
    str.strip,
    lambda s: s.strip().translate(_ASCII),
)


def seek(lines: Sequence[str], pattern: Sequence[str], start: int, at_end: bool) -> int | None:
    """Where `pattern` occurs in `lines` at or after `start` (only at the very end when
    `at_end`), trying each pass over all positions before the next pass; None if nowhere."""
    if not pattern:
        return start
    if len(pattern) > len(lines):
        return None
    last = len(lines) - len(pattern)
    first = last if at_end else start
    for norm in _PASSES:
        wanted = [norm(p) for p in pattern]
        for i in range(first, last + 1):
            if all(norm(lines[i + k]) == w for k, w in enumerate(wanted)):
                return i
    return None


def split_text(text: str) -> tuple[list[str], list[str | None]]:
    """The lines of `text` and each one's ending ("\\n", "\\r\\n", or None for an
    unterminated last line)."""
    texts: list[str] = []
    ends: list[str | None] = []
    pieces = text.split("\n")
    tail = pieces.pop()  # "" when the text ends with a line end
    for piece in pieces:
        crlf = piece.endswith("\r")
        texts.append(piece[:-1] if crlf else piece)
        ends.append("\r\n" if crlf else "\n")
    if tail:
        texts.append(tail)
        ends.append(None)
    return texts, ends


def apply_chunks(text: str, chunks: Sequence[Chunk], path: str, where: str) -> str:
    """`text` with every chunk applied; PatchConflict naming the chunk that does not fit."""
    lines, ends = split_text(text)
    preferred = next((e for e in ends if e is not None), "\n")
    replacements: list[tuple[int, Entries]] = []
    cursor = 0
    for number, chunk in enumerate(chunks, 1):
        if chunk.context is not None:
            found = seek(lines, [chunk.context], cursor, False)
            if found is None:
                raise PatchConflict(f"{where}, chunk {number} (patch line {chunk.line}): "
                                    f"context line `{chunk.context}` not found in {path}")
            cursor = found + 1
        entries = chunk.entries
        if not chunk.old:
            replacements.append((len(lines), entries))
            continue
        at = seek(lines, chunk.old, cursor, chunk.at_end_of_file)
        if at is None and chunk.old[-1] == "":
            entries = _without_final_empty_line(entries)
            at = seek(lines, _old(entries), cursor, chunk.at_end_of_file)
        if at is None:
            place = " at the end of the file" if chunk.at_end_of_file else ""
            expected = "\n".join(chunk.old)
            raise PatchConflict(f"{where}, chunk {number} (patch line {chunk.line}): "
                                f"these lines were not found{place} in {path}:\n{expected}")
        replacements.append((at, entries))
        cursor = at + len(_old(entries))
    replacements.sort(key=lambda r: r[0])
    out: list[str] = []
    done = 0

    def keep(start: int, stop: int) -> None:
        out.extend(t + (e or preferred) for t, e in zip(lines[start:stop], ends[start:stop],
                                                        strict=True))

    for at, entries in replacements:
        keep(done, at)
        done = max(done, at)
        for kind, text in entries:
            if kind == "+":
                out.append(text + preferred)
                continue
            if kind == " ":  # a kept line stays as the file has it (spaces, line end)
                keep(done, done + 1)
            done += 1
    keep(done, len(lines))
    return "".join(out)


Entries = tuple[tuple[str, str], ...]


def _old(entries: Entries) -> list[str]:
    return [text for kind, text in entries if kind != "+"]


def _without_final_empty_line(entries: Entries) -> Entries:
    """The entries without the last old line (an empty one: the file's final line end, as
    patch writers often include it) and, when the new lines end with an empty one, without
    that too."""
    last_old = max(i for i, (kind, _) in enumerate(entries) if kind != "+")
    drop = {last_old}
    if entries[last_old][0] == "-":
        news = [i for i, (kind, _) in enumerate(entries) if kind != "-"]
        if news and entries[news[-1]][1] == "":
            drop.add(news[-1])
    return tuple(e for i, e in enumerate(entries) if i not in drop)
