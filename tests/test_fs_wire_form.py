"""Results built directly in their wire form equal the converter's output for the same result.

`fs/readDirectory` builds its entries as wire dicts during the scan (`rpc/fs_methods.py`); the
converter stays the definition of the wire form, so every entry shape it can be given is checked
against it here: arbitrary names and flags (hypothesis), and real directories read both ways.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import orjson
from hypothesis import given
from hypothesis import strategies as st

from trio_exec.fs import LocalFilesystem
from trio_exec.proto.codec import encode_result
from trio_exec.proto.convert import unstructure
from trio_exec.proto.dialect import Dialect, RequestForm
from trio_exec.proto.fs_messages import (
    FsDirectoryEntry,
    FsReadDirectoryParams,
    FsReadDirectoryResult,
)
from trio_exec.proto.types import AbsPath, Wire
from trio_exec.rpc.fs_methods import read_directory, wire_directory_entry

entries = st.lists(st.tuples(st.text(), st.booleans(), st.booleans()), max_size=20)


@given(entries)
def test_directory_entries_equal_the_converters(items: list[tuple[str, bool, bool]]) -> None:
    typed = FsReadDirectoryResult(
        entries=[FsDirectoryEntry(file_name=n, is_directory=d, is_file=f) for n, d, f in items]
    )
    wire = unstructure(Wire({"entries": [wire_directory_entry(*item) for item in items]}))
    assert wire == unstructure(typed)
    # the same bytes on the wire, member order included
    assert encode_result(7, wire) == encode_result(7, unstructure(typed))


async def test_read_directory_reply_equals_the_converters(tmp_path: Path) -> None:
    fs = LocalFilesystem(cwd=str(tmp_path), tmpdir=None)
    d = tmp_path / "d"
    d.mkdir()
    (d / "file").write_bytes(b"x")
    (d / "sub").mkdir()
    (d / "ünï").touch()
    os.symlink("file", d / "to-file")
    os.symlink("sub", d / "to-sub")
    os.symlink("missing", d / "dangling")
    os.close(os.open(os.fsencode(d) + b"/bad-\xff-name", os.O_CREAT | os.O_WRONLY, 0o600))
    params = FsReadDirectoryParams(path=AbsPath(str(d)))

    reply = orjson.loads(encode_result(1, unstructure(await read_directory(fs, params))))
    typed = FsReadDirectoryResult(entries=await fs.read_directory(str(d)))
    assert reply["result"] == unstructure(typed)
    assert {e["fileName"] for e in reply["result"]["entries"]} == {
        "file", "sub", "ünï", "to-file", "to-sub", "dangling", "bad-\ufffd-name"}


async def test_entry_kinds_in_both_dialects(tmp_path: Path) -> None:
    """Each kind of entry the scan meets: types from `d_type` for plain entries, a symlink's
    from its target; a target that cannot be examined (dangling, loop) has both flags false in
    a 0.120 reply and is left out of a 0.169 one."""
    fs = LocalFilesystem(cwd=str(tmp_path), tmpdir=None)
    d = tmp_path / "d"
    d.mkdir()
    (d / "file").write_bytes(b"x")
    (d / "sub").mkdir()
    os.mkfifo(d / "fifo")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(d / "sock"))
    listener.close()
    os.symlink("file", d / "to-file")
    os.symlink("sub", d / "to-sub")
    os.symlink("fifo", d / "to-fifo")
    os.symlink("missing", d / "dangling")
    os.symlink("loop", d / "loop")
    params = FsReadDirectoryParams(path=AbsPath(str(d)))
    expected = {
        "file": (False, True), "sub": (True, False), "fifo": (False, False),
        "sock": (False, False), "to-file": (False, True), "to-sub": (True, False),
        "to-fifo": (False, False), "dangling": (False, False), "loop": (False, False),
    }

    def kinds(result: Wire) -> dict[str, tuple[bool, bool]]:
        value = unstructure(result)
        assert isinstance(value, dict)
        return {e["fileName"]: (e["isDirectory"], e["isFile"]) for e in value["entries"]}

    assert kinds(await read_directory(fs, params)) == expected
    v0169 = RequestForm(Dialect.V0169)
    del expected["dangling"], expected["loop"]
    assert kinds(await read_directory(fs, params, v0169)) == expected
