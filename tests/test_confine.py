"""Confining a 0.169 `sandbox` child (`sandbox/confine.py`, `sandbox/landlock.py`).

Two layers: the mapping from a `SandboxContext` to a plan, a Landlock ruleset and a seccomp
program (pure, checked field by field), and real children spawned through `spawn()` with that
plan, each checked by what it could and could not do (write inside/outside, carve-outs, TCP,
UDP, signals, devices, a PTY). The kernel here has Landlock; a missing Landlock is simulated to
check the refusal text. One case runs the daemon-side code as nobody, through a user namespace.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.nobody import nobody_argv

from trio_exec.process.managed import DenialScanner
from trio_exec.process.spawn import SpawnError, SpawnRequest, spawn
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.sandbox import confine
from trio_exec.sandbox import landlock as ll
from trio_exec.sandbox.landlock import Bind, Rule
from trio_exec.sandbox.policy import ServerPaths

pytestmark = pytest.mark.skipif(ll.abi_version() == 0, reason="the kernel has no Landlock")

SERVER = ServerPaths(cwd="/", tmpdir=None)
ROOT_READ = {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"}
PROJECT_WRITE = {"path": {"type": "special", "value": {"kind": "project_roots"}}, "access": "write"}
TMP_WRITE = {"path": {"type": "special", "value": {"kind": "slash_tmp"}}, "access": "write"}


def carve(name: str) -> dict[str, Any]:
    return {"path": {"type": "special", "value": {"kind": "project_roots", "subpath": name}},
            "access": "read", "missing_path_behavior": "skip"}


def context(work: Path | str, entries: list[dict[str, Any]], network: str = "restricted",
            kind: str = "managed", fs_type: str = "restricted") -> SandboxContext:
    permissions: dict[str, Any] = {"type": kind, "network": network,
                                   "file_system": {"type": fs_type, "entries": entries}}
    return SandboxContext(permissions=permissions, cwd=str(work), workspace_roots=[str(work)])


def workspace_write(work: Path) -> SandboxContext:
    """What codex 0.169 sends in workspace-write (TMPDIR left out: unset here)."""
    return context(work, [ROOT_READ, PROJECT_WRITE, TMP_WRITE, carve(".git"), carve(".agents"),
                          carve(".codex"), carve(".aws")])


def read_only(work: Path) -> SandboxContext:
    """What codex 0.169 sends in its default mode."""
    return context(work, [ROOT_READ])


@pytest.fixture
def work(tmp_path: Path) -> Path:
    root = (tmp_path / "work").resolve()
    root.mkdir()
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("[core]\n")
    return root


# ------------------------------------------------------------------------------ the mapping


def test_workspace_write_plan(work: Path) -> None:
    plan = confine.plan(workspace_write(work), SERVER)
    assert plan == confine.Plan(
        filesystem=True, network=True,
        grants=(("/", "read"), (str(work), "write"), ("/tmp", "write"), (f"{work}/.git", "read"),
                (f"{work}/.agents", "read"), (f"{work}/.codex", "read"), (f"{work}/.aws", "read")),
        binds=(Bind(f"{work}/.git", True),),  # the missing carve-outs are skipped
    )


def test_read_only_plan_has_no_binds(work: Path) -> None:
    plan = confine.plan(read_only(work), SERVER)
    assert plan == confine.Plan(filesystem=True, network=True, grants=(("/", "read"),))


def test_plans_that_ask_nothing_or_only_network(work: Path) -> None:
    assert confine.plan(context(work, [], kind="disabled"), SERVER) is None
    assert confine.plan(context(work, [], kind="external"), SERVER) is None
    unrestricted = context(work, [], fs_type="unrestricted", network="enabled")
    assert confine.plan(unrestricted, SERVER) is None
    network_only = context(work, [], fs_type="unrestricted")
    assert confine.plan(network_only, SERVER) == confine.Plan(filesystem=False, network=True)
    open_net = confine.plan(context(work, [ROOT_READ], network="enabled"), SERVER)
    assert open_net is not None and not open_net.network


def test_a_write_root_inside_a_carve_out_is_bound_writable_again(work: Path) -> None:
    (work / ".git" / "scratch").mkdir()
    inner = {"path": {"type": "path", "path": f"{work}/.git/scratch"}, "access": "write"}
    plan = confine.plan(context(work, [ROOT_READ, PROJECT_WRITE, carve(".git"), inner]), SERVER)
    assert plan is not None
    assert plan.binds == (Bind(f"{work}/.git", True), Bind(f"{work}/.git/scratch", False))


def test_a_denied_path_beneath_a_granted_root_is_unenforceable(work: Path) -> None:
    deny = {"path": {"type": "path", "path": f"{work}/secret"}, "access": "none"}
    with pytest.raises(confine.Unenforceable, match=f"cannot deny access to {work}/secret"):
        confine.plan(context(work, [ROOT_READ, deny]), SERVER)
    # alone (nothing granted above it) it is simply not granted
    elsewhere = {"path": {"type": "path", "path": "/srv/elsewhere"}, "access": "write"}
    alone = confine.plan(context(work, [elsewhere, deny]), SERVER)
    assert alone is not None and alone.grants == (("/srv/elsewhere", "write"),)


def test_equal_roots_later_entry_wins(work: Path) -> None:
    again = {"path": {"type": "special", "value": {"kind": "project_roots"}}, "access": "read"}
    plan = confine.plan(context(work, [PROJECT_WRITE, again]), SERVER)
    assert plan is not None and plan.grants == ((str(work), "read"),)


def test_rules_and_handled_rights_per_abi(work: Path) -> None:
    plan = confine.plan(workspace_write(work), SERVER)
    assert plan is not None
    every = (1 << 16) - 1
    assert ll.fs_rights(7) == every and ll.fs_rights(1) == (1 << 13) - 1
    assert ll.fs_rights(3) == (1 << 15) - 1
    rules = confine.landlock_rules(plan, 7, tty_path="/dev/pts/9")
    assert rules[:3] == [Rule("/", ll.FS_READ_RIGHTS), Rule(str(work), every), Rule("/tmp", every)]
    assert Rule(f"{work}/.git", ll.FS_EXECUTE | ll.FS_READ_FILE | ll.FS_READ_DIR) in rules
    rw = ll.FS_READ_FILE | ll.FS_WRITE_FILE
    assert Rule("/dev/null", rw) in rules
    assert Rule("/dev/tty", rw | ll.FS_IOCTL_DEV) in rules
    assert rules[-1] == Rule("/dev/pts/9", rw | ll.FS_IOCTL_DEV)
    assert confine.handled(plan, 7) == confine.Handled(
        fs=every, net=ll.NET_BIND_TCP | ll.NET_CONNECT_TCP,
        scoped=ll.SCOPE_SIGNAL | ll.SCOPE_ABSTRACT_UNIX_SOCKET)
    assert confine.handled(plan, 3) == confine.Handled(fs=(1 << 15) - 1, net=0, scoped=0)
    no_net = confine.Plan(filesystem=True, network=False, grants=(("/", "read"),))
    assert confine.handled(no_net, 7) == confine.Handled(fs=every, net=0, scoped=ll.SCOPE_SIGNAL)
    assert confine.landlock_rules(confine.Plan(filesystem=False, network=True), 7) == []


def _decode(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]


@pytest.mark.parametrize("machine", sorted(ll.SYSCALLS))
def test_seccomp_program_shape(machine: str) -> None:
    table = ll.SYSCALLS[machine]
    program = _decode(ll.network_filter(table))
    assert program[0] == (ll.BPF_LD_W_ABS, 0, 0, 4)
    assert program[1] == (ll.BPF_JEQ_K, 1, 0, table.audit_arch)
    assert program[2] == (ll.BPF_RET_K, 0, 0, ll.SECCOMP_RET_KILL_PROCESS)
    denied = {k for code, _, _, k in program if code == ll.BPF_JEQ_K}
    assert {table.connect, table.bind, table.listen, table.accept, table.accept4, table.socket,
            table.sendto, *table.io_uring} <= denied
    assert program[-1] == (ll.BPF_RET_K, 0, 0, ll.SECCOMP_RET_ALLOW)
    assert len(program) < 64
    # every jump lands inside the program
    for index, (code, jt, jf, _) in enumerate(program):
        if code in (ll.BPF_JEQ_K, ll.BPF_JGE_K):
            assert index + 1 + max(jt, jf) < len(program)


def test_denial_scanner_follows_codex_rule() -> None:
    scanner = DenialScanner()
    scanner.feed("stderr", b"bash: /etc/x: Permis")
    scanner.feed("stderr", b"sion denied\n")  # split across chunks
    assert scanner.denied(1) and not scanner.denied(0)
    quiet = DenialScanner()
    quiet.feed("stdout", b"all good\n")
    assert not quiet.denied(1) and not quiet.denied(127) and quiet.denied(128 + 31)
    ro = DenialScanner()
    ro.feed("pty", b"touch: cannot touch 'x': READ-ONLY FILE SYSTEM\r\n")
    assert ro.denied(2)


# ------------------------------------------------------------------------------ real children


async def run(plan: confine.Plan | None, command: str, cwd: Path, *,
              tty: bool = False) -> tuple[int, str]:
    request = SpawnRequest(argv=["/bin/bash", "-c", command], cwd=str(cwd),
                           env={"PATH": os.defpath + ":/usr/local/bin", "LC_ALL": "C"},
                           tty=tty, confinement=plan)
    with trio.fail_after(10):
        spawned = await spawn(request)
        out = bytearray()
        for _, stream in spawned.outputs:
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    break
                if not data:
                    break
                out += data
        code = await spawned.process.wait()
        await spawned.aclose()
    return code, out.decode()


@pytest.fixture
def outside() -> Iterator[Path]:
    """A directory outside every writable root of the plans here (not /tmp)."""
    path = Path(f"/var/tmp/trio-exec-confine-{os.getpid()}")
    path.mkdir(exist_ok=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def plan_of(ctx: SandboxContext) -> confine.Plan:
    plan = confine.plan(ctx, ServerPaths.from_process())
    assert plan is not None
    return plan


@pytest.fixture
def tmp_probe() -> Iterator[Path]:
    """A file name in /tmp (a writable root of workspace-write), removed afterwards."""
    path = Path(f"/tmp/trio-exec-confine-{os.getpid()}")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


async def test_workspace_write_confines_writes(work: Path, outside: Path, tmp_probe: Path) -> None:
    plan = plan_of(workspace_write(work))
    assert await run(plan, "echo in > made.txt && mkdir d && mv made.txt d/ && cat d/made.txt",
                     work) == (0, "in\n")
    code, out = await run(plan, f"echo out > {outside}/x", work)
    assert code == 1 and "Permission denied" in out
    assert not (outside / "x").exists()
    # /tmp is a writable root too, and the devices a shell needs work
    code, out = await run(plan, f"echo t > {tmp_probe} && echo >/dev/null && echo e >/dev/stderr"
                          " && head -c1 /dev/urandom | wc -c", work)
    assert (code, sorted(out.split())) == (0, ["1", "e"])
    assert await trio.Path(tmp_probe).read_text() == "t\n"


async def test_carve_out_is_read_only_inside_a_writable_root(work: Path) -> None:
    plan = plan_of(workspace_write(work))
    code, out = await run(plan, "echo x >> .git/config", work)
    assert code == 1 and "Read-only file system" in out
    code, out = await run(plan, "touch .git/hooks-new", work)
    assert code == 1 and "Read-only file system" in out
    code, out = await run(plan, "mv .git moved || rm -rf .git", work)
    assert code != 0
    code, out = await run(plan, "echo x > inside-git", work / ".git")  # cwd beneath the carve-out
    assert code == 1 and "Read-only file system" in out
    assert (work / ".git" / "config").read_text() == "[core]\n"
    assert sorted(os.listdir(work / ".git")) == ["config"]
    assert await run(plan, "cat .git/config", work) == (0, "[core]\n")
    # nothing of the child's mount namespace leaked into ours
    assert os.statvfs(work / ".git").f_flag & os.ST_RDONLY == 0


async def test_read_only_reads_everywhere_writes_nowhere(work: Path, outside: Path) -> None:
    (outside / "f").write_text("readable\n")
    plan = plan_of(read_only(work))
    assert await run(plan, f"cat {outside}/f /etc/hostname >/dev/null && ls / >/dev/null"
                     " && echo ok", work) == (0, "ok\n")
    for target in (work / "new", outside / "new", Path("/tmp") / f"ro-{os.getpid()}"):
        code, out = await run(plan, f"echo x > {target}", work)
        assert code == 1 and "Permission denied" in out, (target, out)
        assert not target.exists()
    code, out = await run(plan, f"rm {outside}/f", work)
    assert code == 1 and (outside / "f").exists()


async def test_network_restricted_denies_tcp_and_udp(work: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        command = f"exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"
        assert await run(None, command, work) == (0, "connected\n")
        code, out = await run(plan_of(read_only(work)), command, work)
        assert code == 1 and "Operation not permitted" in out and "connected" not in out
        # network enabled: Landlock alone, TCP allowed
        open_net = plan_of(context(work, [ROOT_READ], network="enabled"))
        assert await run(open_net, command, work) == (0, "connected\n")
    udp = f"{sys.executable} -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)'"
    code, out = await run(plan_of(read_only(work)), udp, work)
    assert code == 1 and "PermissionError" in out
    pair = (f"{sys.executable} -c 'import socket; a, b = socket.socketpair(); a.send(b\"p\");"
            " print(b.recv(1).decode())'")
    assert await run(plan_of(read_only(work)), pair, work) == (0, "p\n")


async def test_signals_outside_the_sandbox_are_denied(work: Path) -> None:
    if ll.abi_version() < 6:
        pytest.skip("signal scoping needs Landlock ABI 6")
    code, out = await run(plan_of(read_only(work)), f"kill -0 {os.getpid()}", work)
    assert code == 1 and "Operation not permitted" in out
    assert await run(plan_of(read_only(work)), "sleep 5 & kill $! && wait $!; echo $?",
                     work) == (0, "143\n")


async def test_tty_child_is_confined_and_keeps_its_terminal(work: Path, outside: Path) -> None:
    plan = plan_of(workspace_write(work))
    code, out = await run(plan, f"stty size; echo t > /dev/tty; echo x > {outside}/t", work, tty=True)
    assert code == 1 and out.startswith("24 80\r\nt\r\n") and "Permission denied" in out


async def test_without_landlock_the_start_is_refused(work: Path, monkeypatch: pytest.MonkeyPatch,
                                                     outside: Path) -> None:
    monkeypatch.setattr(ll, "_probe", lambda: (0, errno.ENOSYS))
    with pytest.raises(SpawnError) as caught:
        await run(plan_of(read_only(work)), f"echo ran > {outside}/ran", work)
    assert str(caught.value) == (
        "trio-exec cannot run this process in the sandbox it asks for: Landlock is unavailable:"
        " not built into this kernel (needs Linux >= 5.13 with landlock in lsm=)")
    assert not (outside / "ran").exists()


async def test_a_failure_in_the_child_means_no_exec(work: Path, outside: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_binds(plan: confine.Plan, **kwargs: Any) -> ll.ChildHook:
        hook = ll.ChildHook(ruleset_fd=-1, seccomp=None, user_ns=False, cwd=str(work),
                            binds=(Bind(f"{work}/missing", True),))
        return hook

    monkeypatch.setattr(confine, "prepare", broken_binds)
    with pytest.raises(SpawnError, match="setting it up in the child failed"):
        await run(plan_of(read_only(work)), f"echo ran > {outside}/ran", work)
    assert not (outside / "ran").exists()


NOBODY_CHILD = """
import json, os, sys, trio
from trio_exec.sandbox.policy import ServerPaths
from trio_exec.sandbox import confine
from trio_exec.process.spawn import SpawnRequest, spawn
from trio_exec.proto.sandbox_context import SandboxContext

work, outside = sys.argv[1], sys.argv[2]
entries = [{"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"},
           {"path": {"type": "special", "value": {"kind": "project_roots"}}, "access": "write"},
           {"path": {"type": "special", "value": {"kind": "project_roots", "subpath": ".git"}},
            "access": "read"}]
ctx = SandboxContext(permissions={"type": "managed", "network": "restricted",
                                  "file_system": {"type": "restricted", "entries": entries}},
                     cwd=work, workspace_roots=[work])

async def one(cmd):
    plan = confine.plan(ctx, ServerPaths.from_process())
    sp = await spawn(SpawnRequest(argv=["/bin/bash", "-c", cmd], cwd=work, env={}, tty=False,
                                  confinement=plan))
    out = b""
    for _, st in sp.outputs:
        while data := await st.receive_some(65536):
            out += data
    return [await sp.process.wait(), out.decode()]

async def main():
    print(json.dumps([await one(c) for c in sys.argv[3:]]))

trio.run(main)
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run the daemon side as nobody")
async def test_as_nobody_carve_outs_use_a_user_namespace(
    outside: Path, nobody_pythonpath: str
) -> None:
    shared = outside / "ws"
    (shared / ".git").mkdir(parents=True)
    for path in (outside, shared, shared / ".git"):
        os.chown(path, 65534, 65534)
    argv = nobody_argv(NOBODY_CHILD, str(shared), str(outside), "echo a > in && cat in",
                       "echo b > .git/x", f"echo c > {outside}/x")
    with trio.fail_after(20):
        done = await trio.run_process(argv, capture_stdout=True, capture_stderr=True,
                                      check=False, env={**os.environ, "PYTHONPATH": nobody_pythonpath})
    if done.returncode and b"user namespace" in done.stderr:
        pytest.skip("unprivileged user namespaces are disabled here")
    assert done.returncode == 0, done.stderr.decode()
    inside, carve_out, elsewhere = json.loads(done.stdout)
    assert inside == [0, "a\n"]
    assert carve_out[0] == 1 and "Read-only file system" in carve_out[1]
    assert elsewhere[0] == 1 and "Permission denied" in elsewhere[1]
