"""Sandbox enforcement of every `fs/*` operation: each policy type, method and place, on real files.

The tree (fresh per case, under ``tmp_path``)::

    w/    a writable root         f  d/x  esc -> ../o  (a link out of the root)
    o/    outside every root      g  od/y
    cwd/  the server's cwd        c  cd/z
    tmpd/ the server's $TMPDIR    t  td/u

Every workspace-write policy here sets ``exclude_slash_tmp`` (``tmp_path`` lives under /tmp,
which would otherwise be writable); the implicit roots get their own tests below.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from trio_exec.fs import LocalFilesystem
from trio_exec.proto.errors import InternalError, InvalidRequest, NotFound, RpcError
from trio_exec.proto.sandbox import (
    DangerFullAccess,
    ExternalSandbox,
    ReadOnly,
    RestrictedAccess,
    SandboxPolicy,
    WorkspaceWrite,
)
from trio_exec.sandbox.access import for_policy
from trio_exec.sandbox.policy import resolve

ZONES = ("w", "o", "cwd", "tmpd", "esc")
ALL = frozenset(ZONES)


def build_tree(root: Path) -> None:
    for zone, file, sub, inner in (
        ("w", "f", "d", "x"),
        ("o", "g", "od", "y"),
        ("cwd", "c", "cd", "z"),
        ("tmpd", "t", "td", "u"),
    ):
        (root / zone / sub).mkdir(parents=True)
        (root / zone / file).write_bytes(b"data")
        (root / zone / sub / inner).write_bytes(b"inner")
    (root / "w" / "esc").symlink_to("../o")


#: zone → (an existing file, an existing directory, a path that does not exist yet)
def places(root: Path, zone: str) -> tuple[str, str, str]:
    base = {"w": "w", "o": "o", "cwd": "cwd", "tmpd": "tmpd", "esc": "w/esc"}[zone]
    file = {"w": "f", "o": "g", "cwd": "c", "tmpd": "t", "esc": "g"}[zone]
    sub = {"w": "d", "o": "od", "cwd": "cd", "tmpd": "td", "esc": "od"}[zone]
    return str(root / base / file), str(root / base / sub), str(root / base / "new")


def policies(root: Path) -> dict[str, tuple[SandboxPolicy | None, frozenset[str], frozenset[str]]]:
    """name → (policy, readable zones, writable zones)."""
    w = str(root / "w")
    writable = frozenset({"w", "cwd", "tmpd"})
    return {
        "none": (None, ALL, ALL),
        "danger-full-access": (DangerFullAccess(), ALL, ALL),
        "external-sandbox": (ExternalSandbox(), ALL, ALL),
        "read-only": (ReadOnly(), ALL, frozenset()),
        "read-only-restricted": (
            ReadOnly(access=RestrictedAccess(readable_roots=(w,))),
            frozenset({"w", "cwd"}),
            frozenset(),
        ),
        "workspace-write": (
            WorkspaceWrite(writable_roots=(w,), exclude_slash_tmp=True),
            ALL,
            writable,
        ),
        "workspace-write-restricted": (
            WorkspaceWrite(
                writable_roots=(w,),
                read_only_access=RestrictedAccess(readable_roots=()),
                exclude_slash_tmp=True,
            ),
            writable,
            writable,
        ),
    }


POLICY_NAMES = [
    "none",
    "danger-full-access",
    "external-sandbox",
    "read-only",
    "read-only-restricted",
    "workspace-write",
    "workspace-write-restricted",
]

Op = Callable[[LocalFilesystem, SandboxPolicy | None, Path, str], Awaitable[object]]


async def op_read_file(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.read_file(places(root, zone)[0], policy=for_policy(p))


async def op_get_metadata(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.get_metadata(places(root, zone)[0], policy=for_policy(p))


async def op_read_directory(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.read_directory(places(root, zone)[1], policy=for_policy(p))


async def op_write_file(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.write_file(places(root, zone)[2], b"new", policy=for_policy(p))


async def op_create_directory(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.create_directory(places(root, zone)[2], policy=for_policy(p))


async def op_remove(fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str) -> object:
    return await fs.remove(places(root, zone)[1], policy=for_policy(p))


async def op_copy_from(
    fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str
) -> object:
    return await fs.copy(
        places(root, zone)[0], str(root / "w" / "copied"), recursive=False, policy=for_policy(p)
    )


async def op_copy_to(fs: LocalFilesystem, p: SandboxPolicy | None, root: Path, zone: str) -> object:
    return await fs.copy(
        str(root / "w" / "f"), places(root, zone)[2], recursive=False, policy=for_policy(p)
    )


#: method → (operation, [(access kind, zone or None for the fixed w/ side, place index)])
OPS: dict[str, tuple[Op, list[tuple[str, str | None, int]]]] = {
    "readFile": (op_read_file, [("read", None, 0)]),
    "getMetadata": (op_get_metadata, [("read", None, 0)]),
    "readDirectory": (op_read_directory, [("read", None, 1)]),
    "writeFile": (op_write_file, [("write", None, 2)]),
    "createDirectory": (op_create_directory, [("write", None, 2)]),
    "remove": (op_remove, [("write", None, 1)]),
    "copy-source": (op_copy_from, [("read", None, 0), ("write", "w", -1)]),
    "copy-destination": (op_copy_to, [("read", "w", -2), ("write", None, 2)]),
}


def expected_denial(
    root: Path, zone: str, method: str, readable: frozenset[str], writable: frozenset[str]
) -> str | None:
    """The denial message the call must raise, or None when it must succeed."""
    for access, fixed_zone, index in OPS[method][1]:
        where = fixed_zone or zone
        allowed = readable if access == "read" else writable
        if where in allowed:
            continue
        if index == -1:
            path = str(root / "w" / "copied")
        elif index == -2:
            path = str(root / "w" / "f")
        else:
            path = places(root, where)[index]
        return f"fs/{access} is not permitted for path {path}"
    return None


def effect_visible(root: Path, zone: str, method: str) -> bool:
    _, directory, new = places(root, zone)
    if method == "writeFile":
        return Path(new).is_file()
    if method == "createDirectory":
        return Path(new).is_dir()
    if method == "remove":
        return not os.path.lexists(directory)
    if method == "copy-source":
        return (root / "w" / "copied").is_file()
    if method == "copy-destination":
        return Path(new).is_file()
    return True


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("method", list(OPS))
@pytest.mark.parametrize("policy_name", POLICY_NAMES)
async def test_policy_table(tmp_path: Path, policy_name: str, method: str, zone: str) -> None:
    root = tmp_path
    build_tree(root)
    policy, readable, writable = policies(root)[policy_name]
    fs = LocalFilesystem(cwd=str(root / "cwd"), tmpdir=str(root / "tmpd"))
    denial = expected_denial(root, zone, method, readable, writable)
    operation = OPS[method][0]
    with trio.fail_after(5):
        if denial is None:
            await operation(fs, policy, root, zone)
            assert effect_visible(root, zone, method)
        else:
            with pytest.raises(InvalidRequest) as info:
                await operation(fs, policy, root, zone)
            assert info.value.message == denial
            assert info.value.code == -32600
            if method not in ("readFile", "getMetadata", "readDirectory"):
                assert not effect_visible(root, zone, method)


# --- the rules one by one --------------------------------------------------------------------


def ww(*roots: Path, **flags: bool) -> WorkspaceWrite:
    return WorkspaceWrite(writable_roots=tuple(str(r) for r in roots), **flags)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    build_tree(tmp_path)
    return tmp_path


@pytest.fixture
def fs(tree: Path) -> LocalFilesystem:
    return LocalFilesystem(cwd=str(tree / "cwd"), tmpdir=str(tree / "tmpd"))


async def test_denial_is_checked_before_existence(tree: Path, fs: LocalFilesystem) -> None:
    missing = str(tree / "o" / "no" / "such" / "file")
    with trio.fail_after(5):
        with pytest.raises(InvalidRequest, match=r"^fs/write is not permitted for path "):
            await fs.write_file(
                missing, b"", policy=for_policy(ww(tree / "w", exclude_slash_tmp=True))
            )
        with pytest.raises(InvalidRequest, match=r"^fs/write is not permitted for path "):
            await fs.remove(missing, policy=for_policy(ReadOnly()))
        restricted = ReadOnly(access=RestrictedAccess(readable_roots=(str(tree / "w"),)))
        with pytest.raises(InvalidRequest, match=r"^fs/read is not permitted for path "):
            await fs.get_metadata(missing, policy=for_policy(restricted))
        # inside an allowed root, the same absence is -32004
        with pytest.raises(NotFound):
            await fs.write_file(
                str(tree / "w" / "no" / "file"), b"", policy=for_policy(ww(tree / "w"))
            )


async def test_remove_acts_on_the_link_itself(tree: Path, fs: LocalFilesystem) -> None:
    policy = ww(tree / "w", exclude_slash_tmp=True)
    with trio.fail_after(5):
        with pytest.raises(InvalidRequest):
            await fs.remove(str(tree / "w" / "esc" / "g"), policy=for_policy(policy))
        await fs.remove(str(tree / "w" / "esc"), policy=for_policy(policy))
    assert not (tree / "w" / "esc").is_symlink()
    assert (tree / "o" / "g").read_bytes() == b"data"


async def test_create_directory_on_a_link_out_is_denied(tree: Path, fs: LocalFilesystem) -> None:
    with trio.fail_after(5), pytest.raises(InvalidRequest):
        await fs.create_directory(
            str(tree / "w" / "esc"), policy=for_policy(ww(tree / "w", exclude_slash_tmp=True))
        )


async def test_copy_source_link_is_judged_as_a_link(tree: Path, fs: LocalFilesystem) -> None:
    """A link in a readable root may be copied (as a link) even if it points outside."""
    policy = WorkspaceWrite(
        writable_roots=(str(tree / "w"),),
        read_only_access=RestrictedAccess(),
        exclude_slash_tmp=True,
    )
    with trio.fail_after(5):
        await fs.copy(
            str(tree / "w" / "esc"), str(tree / "w" / "esc2"), recursive=False,
            policy=for_policy(policy)
        )
        with pytest.raises(InvalidRequest, match="fs/read is not permitted"):
            await fs.read_directory(str(tree / "w" / "esc2"), policy=for_policy(policy))
    assert os.readlink(tree / "w" / "esc2") == "../o"


async def test_dangling_link_out_of_a_root_is_denied(tree: Path, fs: LocalFilesystem) -> None:
    """The fix: the reference judged a dangling link by its own location and wrote outside."""
    (tree / "w" / "dang").symlink_to(tree / "o" / "created-through-link")
    with trio.fail_after(5), pytest.raises(InvalidRequest, match="fs/write is not permitted"):
        await fs.write_file(
            str(tree / "w" / "dang"), b"x",
            policy=for_policy(ww(tree / "w", exclude_slash_tmp=True))
        )
    assert not (tree / "o" / "created-through-link").exists()


async def test_dangling_link_inside_a_root_is_written(tree: Path, fs: LocalFilesystem) -> None:
    (tree / "w" / "dang").symlink_to("target")
    with trio.fail_after(5):
        await fs.write_file(str(tree / "w" / "dang"), b"x", policy=for_policy(ww(tree / "w")))
    assert (tree / "w" / "target").read_bytes() == b"x"


async def test_symlink_loop_reaches_the_os(tree: Path, fs: LocalFilesystem) -> None:
    (tree / "w" / "loop").symlink_to("loop")
    with trio.fail_after(5):
        for path in ("loop", "loop/x"):
            with pytest.raises(InternalError) as info:
                await fs.write_file(str(tree / "w" / path), b"", policy=for_policy(ww(tree / "w")))
            assert info.value.message.endswith(" (os error 40)")
        await fs.remove(
            str(tree / "w" / "loop"), recursive=False, policy=for_policy(ww(tree / "w"))
        )
    assert not (tree / "w" / "loop").is_symlink()


async def test_roots_are_resolved_and_compared_by_component(
    tree: Path, fs: LocalFilesystem
) -> None:
    (tree / "wl").symlink_to("w")
    (tree / "w2").mkdir()
    with trio.fail_after(5):
        await fs.write_file(
            str(tree / "w" / "via-root-link"), b"", policy=for_policy(ww(tree / "wl"))
        )
        await fs.write_file(
            str(tree / "wl" / "via-path-link"), b"", policy=for_policy(ww(tree / "w"))
        )
        with pytest.raises(InvalidRequest):
            await fs.write_file(
                str(tree / "w2" / "x"), b"",
                policy=for_policy(ww(tree / "w", exclude_slash_tmp=True))
            )
        # a root that does not exist yet still covers its future contents
        with pytest.raises(NotFound):
            await fs.write_file(
                str(tree / "later" / "x"), b"", policy=for_policy(ww(tree / "later"))
            )


async def test_relative_link_targets_are_followed(tree: Path, fs: LocalFilesystem) -> None:
    (tree / "w" / "up").symlink_to("../o")
    (tree / "w" / "same").symlink_to("d/../d")
    policy = ww(tree / "w", exclude_slash_tmp=True)
    with trio.fail_after(5):
        await fs.write_file(str(tree / "w" / "same" / "ok"), b"", policy=for_policy(policy))
        with pytest.raises(InvalidRequest):
            await fs.write_file(str(tree / "w" / "up" / "no"), b"", policy=for_policy(policy))
    assert resolve(str(tree / "w" / "same" / "ok")) == str(tree / "w" / "d" / "ok")


async def test_server_cwd_is_always_writable_but_not_under_read_only(
    tree: Path, fs: LocalFilesystem
) -> None:
    target = str(tree / "cwd" / "made")
    with trio.fail_after(5):
        await fs.write_file(target, b"", policy=for_policy(WorkspaceWrite(exclude_slash_tmp=True)))
        with pytest.raises(InvalidRequest):
            await fs.write_file(target, b"", policy=for_policy(ReadOnly()))


async def test_tmpdir_root_and_its_exclusion(tree: Path, fs: LocalFilesystem) -> None:
    target = str(tree / "tmpd" / "made")
    with trio.fail_after(5):
        await fs.write_file(target, b"", policy=for_policy(WorkspaceWrite(exclude_slash_tmp=True)))
        with pytest.raises(InvalidRequest):
            await fs.write_file(
                target,
                b"",
                policy=for_policy(
                    WorkspaceWrite(exclude_slash_tmp=True, exclude_tmpdir_env_var=True)
                ),
            )
        no_tmpdir = LocalFilesystem(cwd=str(tree / "cwd"), tmpdir=None)
        with pytest.raises(InvalidRequest):
            await no_tmpdir.write_file(
                target, b"", policy=for_policy(WorkspaceWrite(exclude_slash_tmp=True))
            )


async def test_slash_tmp_root_and_its_exclusion(tree: Path) -> None:
    fs = LocalFilesystem(cwd=str(tree / "cwd"), tmpdir=None)
    with tempfile.TemporaryDirectory(dir="/tmp") as scratch:
        target = os.path.join(scratch, "made")
        with trio.fail_after(5):
            await fs.write_file(target, b"", policy=for_policy(WorkspaceWrite()))
            with pytest.raises(
                InvalidRequest, match=f"^fs/write is not permitted for path {target}$"
            ):
                await fs.write_file(
                    target, b"", policy=for_policy(WorkspaceWrite(exclude_slash_tmp=True))
                )
            # /tmp is not readable under a restricted read-only policy
            restricted = ReadOnly(access=RestrictedAccess(include_platform_defaults=True))
            with pytest.raises(InvalidRequest, match=r"^fs/read is not permitted"):
                await fs.read_file(target, policy=for_policy(restricted))
            # but is under workspace-write, where it is writable
            await fs.read_file(
                target, policy=for_policy(WorkspaceWrite(read_only_access=RestrictedAccess()))
            )


async def test_platform_defaults_add_nothing_on_linux(tree: Path, fs: LocalFilesystem) -> None:
    policy = ReadOnly(access=RestrictedAccess(include_platform_defaults=True))
    with trio.fail_after(5):
        for path in ("/etc/hostname", "/usr", "/"):
            with pytest.raises(InvalidRequest, match=f"^fs/read is not permitted for path {path}$"):
                await fs.get_metadata(path, policy=for_policy(policy))


async def test_error_precedence_inside_copy(tree: Path, fs: LocalFilesystem) -> None:
    """Source read check, then destination write check, then copy's own rules."""
    restricted = ReadOnly(access=RestrictedAccess(readable_roots=(str(tree / "w"),)))
    with trio.fail_after(5):
        with pytest.raises(InvalidRequest, match=r"^fs/read .*/o/nothing$"):
            await fs.copy(
                str(tree / "o" / "nothing"),
                str(tree / "o" / "z"),
                recursive=True,
                policy=for_policy(restricted),
            )
        with pytest.raises(InvalidRequest, match=r"^fs/write .*/o/z$"):
            await fs.copy(
                str(tree / "w" / "d"), str(tree / "o" / "z"), recursive=False,
                policy=for_policy(ReadOnly())
            )
        with pytest.raises(InvalidRequest, match=r"^fs/write .*/w/d/sub$"):
            await fs.copy(
                str(tree / "w" / "d"),
                str(tree / "w" / "d" / "sub"),
                recursive=True,
                policy=for_policy(ReadOnly()),
            )


def test_rpc_error_classes_carry_the_codes() -> None:
    assert (InvalidRequest.code, NotFound.code, InternalError.code) == (-32600, -32004, -32603)
    assert issubclass(InvalidRequest, RpcError)
