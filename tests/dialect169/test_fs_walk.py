"""`fs/walk` (0.169 only), differentially: the same requests to trio-exec and to the codex
0.169.0 exec-server must get the same replies (trio_exec/fs/walk.py states the rules)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
from support.servers import ServerHandle
from support.wsclient import WireClient, session

from .test_dialect import call, uri


def options(
    depth: int = 10, directories: int = 100, entries: int = 100, *,
    follow: bool = False, prune: bool = False,
) -> dict[str, Any]:
    return {
        "maxDepth": depth, "maxDirectories": directories, "maxEntries": entries,
        "followDirectorySymlinks": follow, "pruneHiddenDirectories": prune,
    }


def make_tree(root: Path) -> Path:
    """A tree with hidden names, file/dir/dangling/loop symlinks, a FIFO and a socket."""
    tree = root / "tree"
    for sub in ("a/b/c/d", "e/.h2", ".hid/x"):
        (tree / sub).mkdir(parents=True)
    (tree / "f.txt").write_text("hi\n")
    (tree / ".hf").write_text("z")
    (tree / "a/g").write_text("x")
    (tree / "a/b/h").write_text("y")
    (tree / "lnk").symlink_to("f.txt")
    (tree / "dlnk").symlink_to("a")
    (tree / "dangle").symlink_to("nowhere")
    (tree / "a/loop").symlink_to("..")
    (tree / "a/elink").symlink_to("../e")
    outside = root / "outside"
    (outside / "in1").mkdir(parents=True)
    (outside / "in1/qq").write_text("q")
    (tree / "e/olink").symlink_to(outside)
    os.mkfifo(tree / "e/fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tree / "e/sock"))
    sock.close()
    return tree


async def walk(client: WireClient, path: Path | str, opts: dict[str, Any] | list[Any]) -> Any:
    target = uri(path) if isinstance(path, Path) else path
    return await call(client, "fs/walk", {"path": target, "options": opts, "sandbox": None})


def listing(reply: dict[str, Any], tree: Path) -> list[str]:
    result = reply["result"]
    assert result["errors"] == []
    base = uri(tree) + "/"
    out = []
    for entry in result["entries"]:
        assert list(entry) == ["path", "kind"]
        assert entry["path"].startswith(base)
        out.append(entry["path"][len(base):] + ("/" if entry["kind"] == "directory" else ""))
    return out


FULL = [".hf", ".hid/", "a/", "e/", "f.txt", ".hid/x/", "a/b/", "a/g", "e/.h2/", "a/b/c/",
        "a/b/h", "a/b/c/d/"]


async def test_walk_breadth_first_sorted(server169: ServerHandle, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        reply = await walk(client, tree, options())
        assert list(reply["result"]) == ["entries", "errors", "truncated"]
        assert listing(reply, tree) == FULL
        assert reply["result"]["truncated"] is False


async def test_walk_depth(server169: ServerHandle, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        zero = await walk(client, tree, options(depth=0))
        assert listing(zero, tree) == FULL[:5]
        assert zero["result"]["truncated"] is False
        one = await walk(client, tree, options(depth=1))
        assert listing(one, tree) == FULL[:9]
        biggest = await walk(client, tree, options(depth=64, directories=10000, entries=50000))
        assert listing(biggest, tree) == FULL


async def test_walk_follow_symlinks(server169: ServerHandle, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        reply = await walk(client, tree, options(follow=True))
        assert listing(reply, tree) == [
            ".hf", ".hid/", "a/", "dlnk/", "e/", "f.txt", ".hid/x/", "a/b/", "a/elink/", "a/g",
            "a/loop/", "e/.h2/", "e/olink/", "a/b/c/", "a/b/h", "e/olink/in1/", "a/b/c/d/",
            "e/olink/in1/qq",
        ]
        # a symlinked root: nothing unless followed; entries keep the link's path
        assert listing(await walk(client, tree / "dlnk", options()), tree) == []
        followed = await walk(client, tree / "dlnk", options(depth=0, follow=True))
        assert listing(followed, tree) == ["dlnk/b/", "dlnk/elink/", "dlnk/g", "dlnk/loop/"]


async def test_walk_prune_hidden(server169: ServerHandle, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        reply = await walk(client, tree, options(prune=True))
        assert listing(reply, tree) == [e for e in FULL if e != ".hid/x/"]


async def test_walk_prune_hidden_is_optional(server169: ServerHandle, tmp_path: Path) -> None:
    """Absent means false, in the map and in the array form (which may then end after
    ``followDirectorySymlinks``); null is still refused (probe p12)."""
    tree = make_tree(tmp_path)
    opts = options()
    del opts["pruneHiddenDirectories"]
    async with session(server169.url) as client:
        assert listing(await walk(client, tree, opts), tree) == FULL
        assert listing(await walk(client, tree, list(opts.values())), tree) == FULL
        reply = await walk(client, tree, {**opts, "pruneHiddenDirectories": None})
        assert reply["error"] == {
            "code": -32602, "message": "invalid type: null, expected a boolean"}


@pytest.mark.parametrize(("entries", "count"), [
    (1, 1), (3, 3), (4, 3), (5, 4), (6, 5), (7, 5), (8, 6), (10, 7), (11, 8), (13, 9),
])
async def test_walk_entry_limit(
    server169: ServerHandle, tmp_path: Path, entries: int, count: int
) -> None:
    """Every examined entry counts (unlisted symlinks, FIFOs, sockets too), dangling ones not."""
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        reply = await walk(client, tree, options(entries=entries))
        assert listing(reply, tree) == FULL[:count]
        assert reply["result"]["truncated"] is True


async def test_walk_entry_limit_exact(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    for name in ("a/f1", "a/b/f2", "z", "c/f3"):
        (tmp_path / name).touch()
    async with session(server169.url) as client:
        exact = await walk(client, tmp_path, options(entries=7))
        assert listing(exact, tmp_path) == ["a/", "c/", "z", "a/b/", "a/f1", "c/f3", "a/b/f2"]
        assert exact["result"]["truncated"] is False
        short = await walk(client, tmp_path, options(entries=6))
        assert short["result"]["truncated"] is True


@pytest.mark.parametrize(("directories", "count", "truncated"), [
    (1, 5, True), (2, 6, True), (8, 12, True), (9, 12, False),
])
async def test_walk_directory_limit(
    server169: ServerHandle, tmp_path: Path, directories: int, count: int, truncated: bool
) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        reply = await walk(client, tree, options(directories=directories))
        assert listing(reply, tree) == FULL[:count]
        assert reply["result"]["truncated"] is truncated


async def test_walk_roots(server169: ServerHandle, tmp_path: Path) -> None:
    tree = make_tree(tmp_path)
    async with session(server169.url) as client:
        assert (await walk(client, tree / "f.txt", options()))["result"] == {
            "entries": [], "errors": [], "truncated": False}
        for missing in (tree / "nope", tree / "dangle"):
            reply = await walk(client, missing, options())
            assert reply["error"] == {
                "code": -32004, "message": "No such file or directory (os error 2)"}


@pytest.mark.parametrize(("opts", "code", "message"), [
    (None, -32602, "missing field `options`"),
    ({}, -32602, "missing field `maxDepth`"),
    ({"maxDepth": 1}, -32602, "missing field `maxDirectories`"),
    ({"maxDepth": 1, "maxDirectories": 1, "maxEntries": 1},
     -32602, "missing field `followDirectorySymlinks`"),
    ({**options(), "followDirectorySymlinks": "x"},
     -32602, 'invalid type: string "x", expected a boolean'),
    (options(entries=0), -32600, "filesystem walk limits must be greater than zero"),
    (options(directories=0, entries=100000),
     -32600, "filesystem walk limits must be greater than zero"),
    (options(depth=65, directories=1, entries=1), -32600,
     "filesystem walk limits exceed maximums: depth=64, directories=10000, entries=50000"),
    (options(directories=10001), -32600,
     "filesystem walk limits exceed maximums: depth=64, directories=10000, entries=50000"),
])
async def test_walk_refusals(
    server169: ServerHandle, tmp_path: Path, opts: Any, code: int, message: str
) -> None:
    params: dict[str, Any] = {"path": uri(tmp_path / "nope")}
    if opts is not None:
        params["options"] = opts
    async with session(server169.url) as client:
        reply = await call(client, "fs/walk", params)
        assert reply["error"] == {"code": code, "message": message}


@pytest.mark.parametrize(("params", "message"), [
    (None, "invalid type: null, expected struct WireFsWalkParams"),
    ([], "invalid length 0, expected struct WireFsWalkParams with 3 elements"),
    ({"path": "file:///tmp", "options": []},
     "invalid length 0, expected struct WalkOptions with 5 elements"),
    ({"path": "file:///tmp", "options": None}, "invalid type: null, expected struct WalkOptions"),
])
async def test_walk_params_shapes(server169: ServerHandle, params: Any, message: str) -> None:
    async with session(server169.url) as client:
        reply = await call(client, "fs/walk", params)
        assert reply["error"] == {"code": -32602, "message": message}


async def test_walk_plain_path(server169: ServerHandle, tmp_path: Path) -> None:
    """The reference takes URIs only; trio-exec (deliberately) also takes a plain absolute
    path, as for every path member, and answers in the form it was asked in."""
    (tmp_path / "f").touch()
    async with session(server169.url) as client:
        reply = await walk(client, str(tmp_path), options())
        if server169.is_reference:
            assert reply["error"] == {
                "code": -32602, "message": "invalid URI: relative URL without a base"}
        else:
            assert reply["result"]["entries"] == [{"path": str(tmp_path / "f"), "kind": "file"}]


async def test_walk_unreadable_entry_is_an_error_item(
    server169: ServerHandle, tmp_path: Path
) -> None:
    """/proc/self/fd lists the descriptor of its own listing, gone once the listing closes."""
    async with session(server169.url) as client:
        reply = await walk(client, "file:///proc/self/fd", options(depth=0))
        result = reply["result"]
        assert result["entries"] == [] and result["truncated"] is False
        assert len(result["errors"]) == 1
        error = result["errors"][0]
        assert list(error) == ["path", "message"]
        assert error["path"].startswith("file:///proc/self/fd/")
        assert error["message"] == "No such file or directory (os error 2)"
