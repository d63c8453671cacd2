"""A 0.169 `process/start` with a `sandbox` context, differentially: trio-exec (Landlock +
seccomp + read-only binds, `sandbox/confine.py`) against the codex 0.169.0 exec-server
(bubblewrap + seccomp). The contexts are the ones the real client sends (read-only, its default
mode, and workspace-write with the `.git` carve-out; docs/protocol-dialects.md §5.3).

Same on both: `sandboxType: "linuxSeccomp"`; writes inside the writable roots succeed; writes
elsewhere fail and the exit is reported `sandboxDenied: true`; the `.git` carve-out fails with
`Read-only file system`; a denial followed by `exit 0` is `sandboxDenied: false`; TCP to a
local listener fails at `socket()` with EPERM (both filter it with seccomp) and nothing
connects; reads outside the roots work.
Known difference (asserted): outside the writable roots the reference's child sees EROFS (its
root is a read-only bind) and trio-exec's sees EACCES (`Permission denied`, Landlock).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.outside import outside_directory
from support.servers import ServerHandle
from support.wsclient import WireClient, session

from .test_dialect import call, start169, uri


def special(kind: str, access: str, subpath: str | None = None) -> dict[str, Any]:
    value: dict[str, Any] = {"kind": kind}
    if subpath is not None:
        value["subpath"] = subpath
    entry: dict[str, Any] = {"path": {"type": "special", "value": value}, "access": access}
    if subpath is not None:
        entry["missing_path_behavior"] = "skip"
    return entry


def sandbox(work: Path, *, write: bool) -> dict[str, Any]:
    entries = [special("root", "read")]
    if write:
        entries += [special("project_roots", "write"), special("slash_tmp", "write"),
                    special("project_roots", "read", ".git")]
    return {"permissions": {"type": "managed", "network": "restricted",
                            "file_system": {"type": "restricted", "entries": entries}},
            "cwd": uri(work), "workspaceRoots": [uri(work)], "windowsSandboxLevel": "disabled",
            "windowsSandboxProxySettingsMode": "reconcile", "useLegacyLandlock": False}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = (tmp_path / "work").resolve()
    (root / ".git").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    return root


@pytest.fixture
def outside() -> Iterator[Path]:
    with outside_directory("sandbox169") as path:
        yield path


async def sandboxed(client: WireClient, pid: str, command: str, work: Path, *,
                    write: bool = True) -> tuple[dict[str, Any], str]:
    """Start `command` in the sandbox; (process/exited params, output text)."""
    reply = await start169(client, pid, ["/bin/bash", "-c", command], uri(work),
                           env={"LC_ALL": "C"}, sandbox=sandbox(work, write=write))
    assert reply.get("result") == {"processId": pid, "sandboxType": "linuxSeccomp"}, reply
    await client.wait_process_closed(pid)
    exited = next(n for n in client.events(pid) if n["method"] == "process/exited")
    return exited["params"], client.output(pid).decode()


async def test_workspace_write(server169: ServerHandle, work: Path, outside: Path) -> None:
    async with session(server169.url) as client:
        exited, out = await sandboxed(client, "in", "echo ok > in.txt && cat in.txt", work)
        assert (exited["exitCode"], exited["sandboxDenied"], out) == (0, False, "ok\n")

        exited, out = await sandboxed(client, "out", f"echo no > {outside}/x", work)
        assert (exited["exitCode"], exited["sandboxDenied"]) == (1, True)
        expected = "Read-only file system" if server169.is_reference else "Permission denied"
        assert expected in out
        assert not (outside / "x").exists()

        exited, out = await sandboxed(client, "git", "echo no >> .git/config", work)
        assert (exited["exitCode"], exited["sandboxDenied"]) == (1, True)
        assert "Read-only file system" in out
        assert (work / ".git" / "config").read_text() == "[core]\n"

        exited, out = await sandboxed(client, "zero", f"echo no > {outside}/y; exit 0", work)
        assert (exited["exitCode"], exited["sandboxDenied"]) == (0, False)

        read = await call(client, "process/read", {"processId": "out", "afterSeq": 99})
        assert read["result"]["sandboxDenied"] is True


async def test_read_only(server169: ServerHandle, work: Path, outside: Path) -> None:
    async with session(server169.url) as client:
        exited, out = await sandboxed(client, "r", f"cat {outside}/readable", work, write=False)
        assert (exited["exitCode"], out) == (0, "from outside\n")
        exited, out = await sandboxed(client, "w", "echo no > in.txt", work, write=False)
        assert (exited["exitCode"], exited["sandboxDenied"]) == (1, True)
        assert not (work / "in.txt").exists()


async def test_network_restricted(server169: ServerHandle, work: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        async with session(server169.url) as client:
            exited, out = await sandboxed(
                client, "net", f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected", work)
        assert (exited["exitCode"], exited["sandboxDenied"]) == (1, True)
        assert out.startswith("/bin/bash: socket: Operation not permitted\n"), out  # both
        with pytest.raises(BlockingIOError):
            listener.accept()


def without(context: dict[str, Any], *path: str) -> dict[str, Any]:
    """A deep copy of ``context`` without the member at ``path``."""
    out: dict[str, Any] = {k: (without(v) if isinstance(v, dict) else v)
                           for k, v in context.items()}
    if path:
        head, *rest = path
        if rest:
            out[head] = without(out[head], *rest)
        else:
            del out[head]
    return out


def disabled(**extra: Any) -> dict[str, Any]:
    return {"permissions": {"type": "disabled"}, **extra}


#: (how the context is built, the -32602 text or None for accepted): probe p12, the same on
#: 0.169 and 0.171.
MEMBER_CASES: list[tuple[str, Any, str | None]] = [
    ("complete", lambda w: sandbox(w, write=True), None),
    ("no file_system", lambda w: without(sandbox(w, write=True), "permissions", "file_system"),
     "missing field `file_system`"),
    ("no network", lambda w: without(sandbox(w, write=True), "permissions", "network"),
     "missing field `network`"),
    ("no file_system nor network", lambda w: without(without(
        sandbox(w, write=True), "permissions", "network"), "permissions", "file_system"),
     "missing field `file_system`"),
    ("no windowsSandboxLevel", lambda w: without(sandbox(w, write=True), "windowsSandboxLevel"),
     "missing field `windowsSandboxLevel`"),
    ("no windowsSandboxLevel nor file_system", lambda w: without(without(
        sandbox(w, write=True), "windowsSandboxLevel"), "permissions", "file_system"),
     "missing field `file_system`"),
    ("no entries", lambda w: without(sandbox(w, write=True), "permissions", "file_system",
                                     "entries"), "missing field `entries`"),
    ("optional members left out", lambda w: without(without(without(
        sandbox(w, write=True), "windowsSandboxProxySettingsMode"), "useLegacyLandlock"),
        "workspaceRoots"), None),
    ("unrestricted without entries", lambda w: {**sandbox(w, write=True), "permissions": {
        "type": "managed", "file_system": {"type": "unrestricted"}, "network": "restricted"}},
     None),
    ("network bogus", lambda w: {**sandbox(w, write=True), "permissions": {
        **sandbox(w, write=True)["permissions"], "network": "bogus"}},
     "unknown variant `bogus`, expected `restricted` or `enabled`"),
    ("file_system type bogus", lambda w: {**sandbox(w, write=True), "permissions": {
        **sandbox(w, write=True)["permissions"], "file_system": {"type": "bogus"}}},
     "unknown variant `bogus`, expected `restricted` or `unrestricted`"),
    ("windowsSandboxLevel bogus", lambda w: {**sandbox(w, write=True),
                                             "windowsSandboxLevel": "bogus"},
     "unknown variant `bogus`, expected one of `disabled`, `restricted-token`, `elevated`, "
     "`mxc`"),
    ("windowsSandboxLevel null", lambda w: {**sandbox(w, write=True),
                                            "windowsSandboxLevel": None},
     "invalid type: null, expected string or map"),
    ("disabled", lambda w: disabled(windowsSandboxLevel="disabled"), None),
    ("disabled without windowsSandboxLevel", lambda w: disabled(),
     "missing field `windowsSandboxLevel`"),
    ("external without network", lambda w: {"permissions": {"type": "external"},
                                            "windowsSandboxLevel": "disabled"},
     "missing field `network`"),
    ("external", lambda w: {"permissions": {"type": "external", "network": "restricted"},
                            "windowsSandboxLevel": "disabled"}, None),
]


@pytest.mark.parametrize(("case", "build", "message"), MEMBER_CASES,
                         ids=[case for case, _, _ in MEMBER_CASES])
async def test_required_members_of_a_sandbox_context(
    server169: ServerHandle, work: Path, case: str, build: Any, message: str | None
) -> None:
    """The same context on ``fs/getMetadata`` and on ``process/start``: refused with serde's
    text, or accepted."""
    context = build(work)
    async with session(server169.url) as client:
        meta = await call(client, "fs/getMetadata", {"path": uri(work), "sandbox": context})
        start = await start169(client, "m", ["/bin/true"], uri(work), sandbox=context)
        if message is None:
            assert meta["result"]["isDirectory"] is True, (case, meta)
            assert "result" in start, (case, start)
            await client.wait_process_closed("m")
        else:
            error = {"code": -32602, "message": message}
            assert (meta["error"], start["error"]) == (error, error), case
