"""The `apply_patch` text format, parsed: text in, a list of file operations out (no I/O).

The grammar (the one codex's `apply_patch` tool announces to the model)::

    *** Begin Patch
    *** Add File: PATH          followed by "+line" lines (the new file, one line each)
    *** Delete File: PATH
    *** Update File: PATH       optionally followed by "*** Move to: NEW_PATH", then chunks:
    @@ [context line]           a chunk: " " keeps a line, "-" removes it, "+" adds one;
                                an optional "*** End of File" ends a chunk that must sit at
                                the end of the file
    *** End Patch

Rules (codex's parser, learned from its source and checked against its binary; written anew):
- The text is trimmed first; lines are split on "\\n" with one trailing "\\r" dropped from
  each, so a patch sent with CRLF line ends parses like one with LF.
- The marker lines (`*** Begin Patch`, `*** End Patch`, the three file headers) may carry
  whitespace around them; a `@@` header followed only by whitespace has no context line.
- Lenient wrappers: a heredoc around the patch (`<<EOF`, `<<'EOF'`, `<<"EOF"` on the first
  line, the delimiter ending the last line), also written as the shell command the model
  might send (`apply_patch <<'PATCH'` … `PATCH`); the wrapper lines are dropped.
- An update's first chunk may omit its `@@` line; later chunks must start with one. Blank
  lines between chunks are skipped; inside a chunk an empty line is an empty context line.
  A chunk ends at the first line that is none of " ", "+", "-" (the next `@@`, or a `*`
  header), and so does an Add File's content at the first line not starting with "+".
  Surprising but codex's: a blank line right after an Add or Delete File is read as the
  next file header and refused.
- An Add File with no "+" lines adds an empty file; an Update File without chunks, a chunk
  without lines, or a patch without `*** End Patch` is refused.
- Errors name the patch line (1-based, counting the `*** Begin Patch` line as line 1).
"""

from __future__ import annotations

import re

import attrs

BEGIN = "*** Begin Patch"
END = "*** End Patch"
ADD = "*** Add File: "
DELETE = "*** Delete File: "
UPDATE = "*** Update File: "
MOVE = "*** Move to: "
END_OF_FILE = "*** End of File"
HUNK_HEADER = "@@"

_HEREDOC_START = re.compile(r"^(?:(?:apply_patch|applypatch)\s+)?<<\s*(?P<q>['\"]?)(?P<word>\w+)(?P=q)$")


class PatchSyntaxError(Exception):
    """The text is not a patch; `str(err)` says where and why."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(message if line is None else f"patch line {line}: {message}")


@attrs.frozen(kw_only=True)
class Chunk:
    """One `@@` section: `entries` are its lines as (kind, text), kind " " (keep), "-"
    (remove) or "+" (add); `old` (kept and removed) become `new` (kept and added)."""

    context: str | None
    entries: tuple[tuple[str, str], ...]
    at_end_of_file: bool
    line: int

    @property
    def old(self) -> tuple[str, ...]:
        return tuple(text for kind, text in self.entries if kind != "+")

    @property
    def new(self) -> tuple[str, ...]:
        return tuple(text for kind, text in self.entries if kind != "-")


@attrs.frozen(kw_only=True)
class AddFile:
    path: str
    content: str
    line: int


@attrs.frozen(kw_only=True)
class DeleteFile:
    path: str
    line: int


@attrs.frozen(kw_only=True)
class UpdateFile:
    path: str
    move_to: str | None
    chunks: tuple[Chunk, ...]
    line: int


FileOp = AddFile | DeleteFile | UpdateFile


def split_lines(text: str) -> list[str]:
    """Lines split on "\\n", each without one trailing "\\r"; no empty last line for a
    trailing newline."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _unwrap(lines: list[str]) -> list[str]:
    """The lines between the markers (heredoc wrapper dropped), or PatchSyntaxError."""
    if _has_markers(lines):
        return lines[1:-1]
    if len(lines) >= 4:
        start = _HEREDOC_START.match(lines[0].strip())
        if start and lines[-1].strip().endswith(start["word"]) and _has_markers(lines[1:-1]):
            return lines[2:-2]
    if not lines or lines[0].strip() != BEGIN:
        raise PatchSyntaxError(f"the first line must be `{BEGIN}`", 1)
    raise PatchSyntaxError(f"the last line must be `{END}`", len(lines))


def _has_markers(lines: list[str]) -> bool:
    return len(lines) >= 2 and lines[0].strip() == BEGIN and lines[-1].strip() == END


def parse_patch(text: str) -> list[FileOp]:
    """The file operations of `text`, in order; PatchSyntaxError when it is not a patch."""
    body = _unwrap(split_lines(text.strip()))
    ops: list[FileOp] = []
    index = 0
    while index < len(body):
        op, used = _parse_file_op(body, index)
        ops.append(op)
        index += used
    return ops


def _parse_file_op(body: list[str], index: int) -> tuple[FileOp, int]:
    """One file operation starting at `body[index]`, and how many lines it used."""
    line_no = index + 2  # body[0] is patch line 2
    header = body[index].strip()
    if header.startswith(ADD):
        content = []
        end = index + 1
        while end < len(body) and body[end].startswith("+"):
            content.append(body[end][1:] + "\n")
            end += 1
        return AddFile(path=header[len(ADD):], content="".join(content), line=line_no), end - index
    if header.startswith(DELETE):
        return DeleteFile(path=header[len(DELETE):], line=line_no), 1
    if header.startswith(UPDATE):
        return _parse_update(body, index, header[len(UPDATE):])
    raise PatchSyntaxError(
        f"`{header}` is not a file header; expected `{ADD}PATH`, `{DELETE}PATH` or "
        f"`{UPDATE}PATH`",
        line_no,
    )


def _parse_update(body: list[str], index: int, path: str) -> tuple[UpdateFile, int]:
    line_no = index + 2
    end = index + 1
    move_to = None
    if end < len(body) and body[end].strip().startswith(MOVE):
        move_to = body[end].strip()[len(MOVE):]
        end += 1
    chunks: list[Chunk] = []
    while end < len(body):
        line = body[end]
        if not line.strip():
            end += 1
            continue
        if line.startswith("*"):
            break
        chunk, end = _parse_chunk(body, end, first=not chunks)
        chunks.append(chunk)
    if not chunks:
        raise PatchSyntaxError(f"`{UPDATE}{path}` has no changes", line_no)
    return UpdateFile(path=path, move_to=move_to, chunks=tuple(chunks), line=line_no), end - index


def _parse_chunk(body: list[str], index: int, *, first: bool) -> tuple[Chunk, int]:
    """One chunk starting at `body[index]`; returns it and the index after it."""
    line_no = index + 2
    head = body[index]
    context: str | None = None
    if head.rstrip() == HUNK_HEADER:
        index += 1
    elif head.startswith(HUNK_HEADER + " "):
        context = head[len(HUNK_HEADER) + 1:]
        index += 1
    elif not first:
        raise PatchSyntaxError(f"expected a `@@` line to start the next chunk, got `{head}`",
                               line_no)
    entries: list[tuple[str, str]] = []
    at_end = False
    while index < len(body):
        line = body[index]
        if line.rstrip() == END_OF_FILE:
            if entries:
                at_end = True
                index += 1
            break
        kind, text = line[:1] or " ", line[1:]  # an empty line is an empty context line
        if kind not in " -+":
            if entries:
                break
            raise PatchSyntaxError(
                f"unexpected line `{line}` in a chunk: each line starts with ' ' (keep), "
                "'-' (remove) or '+' (add)",
                index + 2,
            )
        entries.append((kind, text))
        index += 1
    if not entries:
        raise PatchSyntaxError("the chunk has no lines", line_no)
    chunk = Chunk(context=context, entries=tuple(entries), at_end_of_file=at_end, line=line_no)
    return chunk, index
