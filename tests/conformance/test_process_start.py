"""``process/start`` (protocol.md §6; contract §1 and §2 #12, #13)."""

from __future__ import annotations

import os
import pwd
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from support.expect import internal, invalid_params, invalid_request
from support.servers import ServerHandle
from support.wsclient import WireClient, connect, session, unb64

PATH = "/usr/bin:/bin"
ENOENT = "No such file or directory (os error 2)"
ENOTDIR = "Not a directory (os error 20)"
EACCES = "Permission denied (os error 13)"
ENOEXEC = "Exec format error (os error 8)"
NUL = "nul byte found in provided data"
SELF_STAT = ["/bin/sh", "-c", "cat /proc/$$/stat; true"]
SELF_CMDLINE = ["/bin/sh", "-c", "cat /proc/$$/cmdline; true"]
TTY_MODES = pytest.mark.parametrize("tty", [False, True], ids=["pipe", "tty"])


def lines(output: bytes) -> set[str]:
    return {line for line in output.decode().replace("\r\n", "\n").split("\n") if line}


async def start_error(client: WireClient, argv: list[str], **kwargs: object) -> dict[str, object]:
    """Start a process that must fail; check that nothing got registered; return the reply."""
    reply = await client.start("failed", argv, **kwargs)
    assert "error" in reply, reply
    id = client.next_id()
    assert await client.request("process/read", {"processId": "failed"}, id=id) == (
        invalid_request("unknown process id failed", id))
    return reply


@pytest.fixture
def tool_dir(tmp_path: Path) -> Path:
    """A directory with ``mytool`` (prints ``from-mytool``), ``noexec`` (mode 0644) and
    ``garbage`` (executable, not a valid executable format)."""
    tool = tmp_path / "bin" / "mytool"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho from-mytool\n")
    tool.chmod(0o755)
    noexec = tmp_path / "bin" / "noexec"
    noexec.write_text("#!/bin/sh\necho never\n")
    noexec.chmod(0o644)
    garbage = tmp_path / "bin" / "garbage"
    garbage.write_text("garbage\n")
    garbage.chmod(0o755)
    return tool.parent


@pytest.mark.parametrize("process_id", ["p", "", "17433", "ü x/\"q\""])
async def test_start_result_echoes_the_process_id(server: ServerHandle, process_id: str) -> None:
    async with session(server.url) as client:
        reply = await client.start(process_id, ["/bin/true"])
        assert reply == {"id": reply["id"], "result": {"processId": process_id}}
        await client.wait_process_closed(process_id)


# ------------------------------------------------------------------------- environment


async def test_env_replaces_the_whole_environment(server: ServerHandle) -> None:
    async with session(server.url) as client:
        output, exited = await client.run("foo", ["/usr/bin/env"], env={"FOO": "bar"})
        assert output == b"FOO=bar\n"
        assert exited["exitCode"] == 0
        output, _ = await client.run("empty", ["/usr/bin/env"], env={})
        assert output == b""


async def test_env_keys_with_equals_signs_or_empty_keys_are_passed_through(
    server: ServerHandle,
) -> None:
    async with session(server.url) as client:
        output, _ = await client.run("odd-keys", ["/usr/bin/env"],
                                     env={"A=B": "c", "": "x", "Z": "1"})
        assert lines(output) == {"A=B=c", "=x", "Z=1"}


async def test_tty_env_is_the_given_env(server: ServerHandle) -> None:
    """Reference: the PTY spawner injects ``SHELL`` when absent. trio-exec (contract §2 #13):
    nothing is injected. Neither sets ``TERM``; a given ``SHELL`` is kept."""
    async with session(server.url) as client:
        output, _ = await client.run("tty-env", ["/usr/bin/env"], tty=True,
                                     env={"FOO": "bar", "PATH": PATH})
        got = lines(output)
        if server.is_reference:
            shell = {line for line in got if line.startswith("SHELL=")}
            assert len(shell) == 1, got
            assert got - shell == {"FOO=bar", f"PATH={PATH}"}
        else:
            assert got == {"FOO=bar", f"PATH={PATH}"}
        output, _ = await client.run("tty-shell", ["/usr/bin/env"], tty=True,
                                     env={"SHELL": "/bin/zsh"})
        assert lines(output) == {"SHELL=/bin/zsh"}


# ---------------------------------------------------------------------- program lookup


@TTY_MODES
async def test_bare_name_is_looked_up_in_env_PATH(
    server: ServerHandle, tool_dir: Path, tty: bool
) -> None:
    async with session(server.url) as client:
        output, exited = await client.run("lookup", ["mytool"], tty=tty,
                                          env={"PATH": f"/nonexistent:{tool_dir}"})
        assert lines(output) == {"from-mytool"}
        assert exited["exitCode"] == 0


@TTY_MODES
async def test_bare_name_missing_from_env_PATH_fails(server: ServerHandle, tty: bool) -> None:
    """Reference tty mode: a portable-pty text. trio-exec: the pipe-mode error in both."""
    async with session(server.url) as client:
        reply = await start_error(client, ["env"], tty=tty, env={"PATH": "/nonexistent"})
        if server.is_reference and tty:
            text = 'Unable to spawn env because:\nNo viable candidates found in PATH "/nonexistent"'
        else:
            text = ENOENT
        assert reply == internal(text, reply["id"])


def only_in_usr_sbin(name: str) -> bool:
    return Path("/usr/sbin", name).exists() and not any(
        Path(d, name).exists() for d in ("/usr/local/bin", "/bin", "/usr/bin"))


@TTY_MODES
async def test_bare_name_without_env_PATH(
    server: ServerHandle, launch_server: Callable[..., ServerHandle], tool_dir: Path, tty: bool
) -> None:
    """A fresh server of the same kind runs with only ``mytool``'s directory on its PATH.

    trio-exec (contract §1, §2 #13): the server's PATH, in both modes. Reference pipe mode:
    *not* the server's PATH (protocol.md §6 says so, the binary disagrees) but musl's default
    ``/usr/local/bin:/bin:/usr/bin``; reference tty mode: refused."""
    own = launch_server(server.kind, env={**os.environ, "PATH": str(tool_dir)})
    async with session(own.url) as client:
        if own.is_reference and tty:
            reply = await start_error(client, ["mytool"], tty=True, env={})
            assert reply == internal(
                "Unable to spawn mytool because:\nUnable to resolve the PATH", reply["id"])
        elif own.is_reference:
            reply = await start_error(client, ["mytool"], env={})
            assert reply == internal(ENOENT, reply["id"])
            _, exited = await client.run("default-path", ["env"], env={})  # /usr/bin
            assert exited["exitCode"] == 0
            if only_in_usr_sbin("chroot"):
                reply = await start_error(client, ["chroot"], env={})  # /usr/sbin: not searched
                assert reply == internal(ENOENT, reply["id"])
        else:
            output, exited = await client.run("server-path", ["mytool"], tty=tty, env={})
            assert lines(output) == {"from-mytool"}
            assert exited["exitCode"] == 0


async def test_relative_program_path_resolves_against_the_child_cwd(server: ServerHandle) -> None:
    async with session(server.url) as client:
        _, exited = await client.run("relative-prog", ["bin/true"], cwd="/usr", env={})
        assert exited["exitCode"] == 0
        reply = await start_error(client, ["./true"], cwd="/", env={})
        assert reply == internal(ENOENT, reply["id"])


# --------------------------------------------------------------------------------- arg0


async def test_arg0_sets_the_argv0_the_program_sees(server: ServerHandle) -> None:
    async with session(server.url) as client:
        output, _ = await client.run("arg0", SELF_CMDLINE, arg0="custom0")
        assert output.split(b"\0") == [b"custom0", b"-c", SELF_CMDLINE[2].encode(), b""]
        output, _ = await client.run("arg0-null", SELF_CMDLINE, arg0=None)
        assert output.split(b"\0")[0] == b"/bin/sh"
        output, _ = await client.run("arg0-absent", SELF_CMDLINE)
        assert output.split(b"\0")[0] == b"/bin/sh"


async def test_tty_arg0(server: ServerHandle) -> None:
    """Reference tty mode: ``arg0`` replaces the executed program. trio-exec (contract §2
    #13): it only sets argv[0], as in pipe mode."""
    async with session(server.url) as client:
        if server.is_reference:
            reply = await start_error(client, SELF_CMDLINE, tty=True, arg0="custom0")
            assert reply == internal(
                f'Unable to spawn custom0 because:\nNo viable candidates found in PATH "{PATH}"',
                reply["id"],
            )
            output, _ = await client.run("printf", ["/bin/echo", "hi", "there"], tty=True,
                                         arg0="/bin/printf")
            assert output.startswith(b"hi")
            assert b"ignoring excess arguments" in output
        else:
            output, _ = await client.run("arg0", SELF_CMDLINE, tty=True, arg0="custom0")
            assert output.split(b"\0") == [b"custom0", b"-c", SELF_CMDLINE[2].encode(), b""]
            output, _ = await client.run("printf", ["/bin/echo", "hi", "there"], tty=True,
                                         arg0="/bin/printf")
            assert output == b"hi there\r\n"


# ---------------------------------------------------------------------------------- cwd


async def test_relative_cwd_resolves_against_the_server_cwd(server: ServerHandle) -> None:
    (server.cwd / "sub").mkdir(exist_ok=True)
    root = str(server.cwd)
    async with session(server.url) as client:
        for process_id, cwd, expected in [
            ("dot", ".", root),
            ("sub", "sub", f"{root}/sub"),
            ("dotdot", "sub/..", root),
        ]:
            output, _ = await client.run(process_id, ["/bin/pwd"], cwd=cwd)
            assert output == f"{expected}\n".encode(), cwd


@TTY_MODES
@pytest.mark.parametrize("cwd", ["/nonexistent-cwd", "/etc/hostname"], ids=["missing", "file"])
async def test_unusable_cwd(server: ServerHandle, cwd: str, tty: bool) -> None:
    """Pipe mode refuses a missing cwd (ENOENT) or a file (ENOTDIR). Reference tty mode
    silently starts in the home directory. trio-exec (contract §2 #13): refused in both."""
    async with session(server.url) as client:
        if server.is_reference and tty:
            output, _ = await client.run("home", ["/bin/pwd"], cwd=cwd, tty=True)
            assert output == f"{pwd.getpwuid(os.getuid()).pw_dir}\r\n".encode()
            return
        reply = await start_error(client, ["/bin/pwd"], cwd=cwd, tty=tty)
        assert reply == internal(ENOENT if cwd == "/nonexistent-cwd" else ENOTDIR, reply["id"])


# ------------------------------------------------------------------------- spawn errors


@TTY_MODES
async def test_spawn_errors_have_rust_io_error_texts(
    server: ServerHandle, tool_dir: Path, tty: bool
) -> None:
    """Pipe mode: the OS error in Rust's style. Reference tty mode: portable-pty texts, and a
    file of an unknown format "starts" and dies. trio-exec (contract §2 #13): the pipe texts."""
    noexec, garbage = str(tool_dir / "noexec"), str(tool_dir / "garbage")
    assert not os.stat(noexec).st_mode & stat.S_IXUSR
    async with session(server.url) as client:
        cases = {
            "/no/such": (ENOENT, "Unable to spawn /no/such because it doesn't exist on the "
                                 "filesystem (ENOENT: No such file or directory)"),
            noexec: (EACCES, f"Unable to spawn {noexec} because it is not executable "
                             "(EACCES: Permission denied)"),
            "/tmp": (EACCES, "Unable to spawn /tmp because it is a directory"),
        }
        for program, (pipe_text, ref_tty_text) in cases.items():
            reply = await start_error(client, [program], tty=tty)
            text = ref_tty_text if server.is_reference and tty else pipe_text
            assert reply == internal(text, reply["id"]), program
        if server.is_reference and tty:
            output, exited = await client.run("garbage", [garbage], tty=True)
            assert b"fatal runtime error" in output
            assert exited["exitCode"] == 1
        else:
            reply = await start_error(client, [garbage], tty=tty)
            assert reply == internal(ENOEXEC, reply["id"])


@TTY_MODES
async def test_nul_bytes_are_refused(server: ServerHandle, tty: bool) -> None:
    async with session(server.url) as client:
        for kwargs in [
            {"argv": ["/bin/echo", "a\0b"]},
            {"argv": ["ec\0ho", "x"]},
            {"argv": ["/usr/bin/env"], "env": {"A": "x\0y"}},
            {"argv": ["/usr/bin/env"], "cwd": "/\0x"},
        ]:
            argv = kwargs.pop("argv")
            if server.is_reference and tty and "/" not in argv[0]:
                # the reference's tty spawner searches PATH first (contract: tty spawns
                # follow the pipe rules, so trio-exec answers the pipe text in both modes)
                reply = await start_error(client, argv, tty=tty, **kwargs)
                assert "No viable candidates found in PATH" in reply["error"]["message"]
                continue
            if server.is_reference and tty and "cwd" in kwargs:
                # the reference's tty mode ignores an unusable cwd (see test_unusable_cwd)
                await client.run("nul-cwd", ["/bin/pwd"], tty=True, **kwargs)
                continue
            reply = await start_error(client, argv, tty=tty, **kwargs)
            assert reply == internal(NUL, reply["id"]), kwargs


@TTY_MODES
async def test_empty_argv_is_refused(server: ServerHandle, tty: bool) -> None:
    async with session(server.url) as client:
        reply = await start_error(client, [], tty=tty)
        assert reply == invalid_params("argv must not be empty", reply["id"])


async def test_a_failed_spawn_leaves_the_id_free(server: ServerHandle) -> None:
    async with session(server.url) as client:
        await start_error(client, ["/no/such"])
        await client.start_ok("failed", ["/bin/true"])
        await client.wait_process_closed("failed")


async def test_duplicate_process_id_is_refused_while_retained(server: ServerHandle) -> None:
    async with session(server.url) as client:
        await client.start_ok("dup", ["/bin/sleep", "5"])
        reply = await client.start("dup", ["/bin/true"])
        assert reply == invalid_request("process dup already exists", reply["id"])
        assert (await client.result("process/terminate", {"processId": "dup"})) == {
            "running": True}
        await client.wait_process_closed("dup")
        reply = await client.start("dup", ["/bin/true"])
        assert reply == invalid_request("process dup already exists", reply["id"])
        # a tty process too
        await client.run("dup-tty", ["/bin/true"], tty=True)
        reply = await client.start("dup-tty", ["/bin/true"], tty=True)
        assert reply == invalid_request("process dup-tty already exists", reply["id"])


# --------------------------------------------------------------- process group, stdio


def parse_stat(output: bytes) -> dict[str, int]:
    text = output.decode().strip()
    fields = text[text.rindex(")") + 2:].split()
    pid = int(text.split(" ", 1)[0])
    # fields[0] is the state; then ppid, pgrp, session, tty_nr, tpgid
    return {"pid": pid, "pgrp": int(fields[2]), "session": int(fields[3]),
            "tty_nr": int(fields[4]), "tpgid": int(fields[5])}


@TTY_MODES
async def test_every_child_leads_its_own_process_group_and_session(
    server: ServerHandle, tty: bool
) -> None:
    async with session(server.url) as client:
        output, _ = await client.run("leader", SELF_STAT, tty=tty)
        st = parse_stat(output)
        assert st["pid"] == st["pgrp"] == st["session"], st
        assert st["session"] != os.getsid(server.pid)
        if tty:
            # the PTY is the controlling terminal and the child its foreground group
            assert st["tty_nr"] != 0 and st["tpgid"] == st["pid"], st
        else:
            assert st["tty_nr"] == 0, st


async def test_pipe_children_get_dev_null_stdin_and_separate_output_pipes(
    server: ServerHandle,
) -> None:
    async with session(server.url) as client:
        await client.run("stdio", ["/bin/sh", "-c",
                                   "readlink /proc/self/fd/0; cat; echo err >&2"])
        outputs = [n["params"] for n in client.events("stdio") if n["method"] == "process/output"]
        by_stream: dict[str, bytes] = {}
        for params in sorted(outputs, key=lambda p: p["seq"]):
            by_stream[params["stream"]] = by_stream.get(params["stream"], b"") + unb64(
                params["chunk"])
        assert by_stream == {"stdout": b"/dev/null\n", "stderr": b"err\n"}


async def test_pipe_stdin_option(server: ServerHandle) -> None:
    """Reference: ``pipeStdin`` is ignored, stdin stays /dev/null. trio-exec (contract §2
    #12): ``pipeStdin: true`` gives the child a stdin pipe."""
    async with session(server.url) as client:
        await client.start_ok("piped", ["/bin/sh", "-c", "readlink /proc/self/fd/0"],
                              pipeStdin=True)
        await client.wait_process_closed("piped")
        target = client.output("piped").strip()
        if server.is_reference:
            assert target == b"/dev/null"
        else:
            assert target.startswith(b"pipe:["), target


async def test_unknown_start_params_are_ignored(server: ServerHandle) -> None:
    async with connect(server.url) as client:
        await client.handshake()
        await client.start_ok("extra", ["/bin/true"], bogusParam={"x": 1})
        await client.wait_process_closed("extra")
