"""The agent tools on an environment: offered by capability, refused before anything runs when
called anyway, and working the same on a local and a remote environment."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from support.daemon import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Capabilities, Environment, disabled_environment
from trio_exec.environment.local import open_local_environment
from trio_exec.tools import EXEC, FILESYSTEM, ToolRejected, ToolSet, open_toolset

TIMEOUT = 20
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

#: The seeds' gating, by tool name: every registered tool must be listed here.
GATING = {
    "exec_command": EXEC,
    "write_stdin": EXEC,
    "js_repl": EXEC,
    "js_repl_reset": EXEC,
    "apply_patch": FILESYSTEM,
    "list_dir": FILESYSTEM,
    "view_image": FILESYSTEM,
    "read_file": FILESYSTEM,
}
COMBINATIONS = [(True, True), (True, False), (False, True), (False, False)]
#: Arguments that fit each tool's schema (a call must get past the argument check).
SAMPLE_ARGS: dict[str, dict[str, Any]] = {
    "exec_command": {"cmd": "true"},
    "write_stdin": {"session_id": 1000},
    "js_repl": {"code": "1"},
    "js_repl_reset": {},
    "apply_patch": {"input": "*** Begin Patch\n*** End Patch\n"},
    "list_dir": {"dir_path": "/"},
    "view_image": {"path": "/x.png"},
    "read_file": {"file_path": "/x"},
}


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


def session_of(text: str) -> int:
    found = re.search(r"Process running with session ID (\d+)", text)
    assert found, text
    return int(found.group(1))


def body(text: str) -> str:
    """A unified-exec reply without its chunk id and wall time."""
    return re.sub(r"Chunk ID: \w+\nWall time: [\d.]+ seconds\n", "", text)


# --------------------------------------------------------------------------- gating


@attrs.define(eq=False)
class Recording:
    """An exec backend or filesystem that records every call and forwards it."""

    inner: Any
    calls: list[str]

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)

        async def forward(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await target(*args, **kwargs)
        return forward


async def test_every_registered_tool_has_a_gating_entry() -> None:
    async with open_local_environment() as local, open_toolset(local, cwd="/") as tools:
        registered = {s.name: s.capability for s in tools.registered()}
        assert {n: GATING.get(n) for n in registered} == registered


async def _gated(tools: ToolSet, name: str) -> Any:
    spec = {s.name: s for s in tools.registered()}.get(name)
    if spec is None:
        pytest.skip(f"`{name}` is not registered in this tree (it lives in its own module)")
    return spec


@pytest.mark.parametrize(("exec_on", "fs_on"), COMBINATIONS)
@pytest.mark.parametrize("name", sorted(GATING))
async def test_gating_matrix(name: str, exec_on: bool, fs_on: bool, tmp_path: Path) -> None:
    """Offered exactly when its capability is on; a call to a tool that is not offered is
    refused with nothing started or touched in the environment; an offered one runs."""
    calls: list[str] = []
    with trio.fail_after(TIMEOUT):
        async with open_local_environment() as local:
            env = attrs.evolve(
                local,
                capabilities=Capabilities(exec_enabled=exec_on, filesystem_enabled=fs_on),
                exec=Recording(local.exec, calls),
                filesystem=Recording(local.filesystem, calls),
            )
            async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
                spec = await _gated(tools, name)
                assert spec.capability == GATING[name]
                enabled = exec_on if GATING[name] == EXEC else fs_on
                assert (name in tools.names()) == enabled
                if not enabled:
                    with pytest.raises(ToolRejected, match=f"tool `{name}` is not offered"):
                        await tools.call(name, SAMPLE_ARGS[name])
                    assert calls == []
                    # the handler behind the registry refuses on its own (the backstop)
                    with pytest.raises(Exception, match="is not available"):
                        await spec.handler(SAMPLE_ARGS[name])
                    assert calls == []
                else:
                    await tools.call(name, SAMPLE_ARGS[name])  # reaches its handler


async def test_disabled_environment_offers_nothing() -> None:
    async with open_toolset(disabled_environment(), cwd="/") as tools:
        assert tools.names() == []
        assert tools.specs() == []
        for name in GATING:
            with pytest.raises(ToolRejected):
                await tools.call(name, SAMPLE_ARGS[name])
        with pytest.raises(ToolRejected, match="unknown tool"):
            await tools.call("rm_rf", {})


async def test_everything_is_offered_when_everything_is_enabled(env: Environment) -> None:
    async with open_toolset(env, cwd="/") as tools:
        assert set(tools.names()) == {s.name for s in tools.registered()}
        assert set(tools.names()) == set(GATING)


# --------------------------------------------------------------------------- exec tools


async def test_exec_command_reports_as_codex_does(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            (tmp_path / "sub").mkdir()
            done = await tools.call("exec_command", {"cmd": "pwd; exit 4", "workdir": "sub"})
            assert done.ok
            assert re.fullmatch(r"Chunk ID: [0-9a-f]{6}\nWall time: \d+\.\d{4} seconds\n.*",
                                done.text, re.S)
            printed = f"{tmp_path / 'sub'}\n"
            assert body(done.text) == (f"Process exited with code 4\nOriginal token count: "
                                       f"{(len(printed) + 3) // 4}\nOutput:\n{printed}")
            bash = await tools.call("exec_command", {"cmd": "echo $0 $TERM", "shell": "bash"})
            assert body(bash.text).endswith("Output:\nbash dumb\n")
            cut = await tools.call("exec_command", {"cmd": "printf 'a%.0s' $(seq 1 100)",
                                                    "max_output_tokens": 1})
            assert body(cut.text) == (
                "Process exited with code 0\nOriginal token count: 25\nOutput:\n"
                "Warning: truncated output (original token count: 25)\nTotal output lines: 1\n"
                "\naa…24 tokens truncated…aa")


async def test_a_running_command_keeps_a_session(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            # no stdin without a tty: a write is refused as codex refuses it
            piped = await tools.call("exec_command", {"cmd": "sleep 0.5; read x; echo [$x]",
                                                      "yield_time_ms": 250})
            session = session_of(piped.text)
            assert 1000 <= session < 100_000
            refused = await tools.call("write_stdin", {"session_id": session, "chars": "x"})
            assert not refused.ok
            assert refused.text == ("write_stdin failed: stdin is closed for this session; "
                                    "rerun exec_command with tty=true to keep stdin open")
            polled = await tools.call("write_stdin", {"session_id": session})
            assert body(polled.text).endswith("Process exited with code 0\nOriginal token "
                                              "count: 1\nOutput:\n[]\n")
            gone = await tools.call("write_stdin", {"session_id": session})
            assert gone.text == f"write_stdin failed: Unknown process id {session}"

            typed = await tools.call("exec_command", {"cmd": "read x; echo got $x", "tty": True,
                                                      "yield_time_ms": 250})
            fed = await tools.call("write_stdin", {"session_id": session_of(typed.text),
                                                   "chars": "hello\n", "yield_time_ms": 5000})
            assert body(fed.text) == ("Process exited with code 0\nOriginal token count: 5\n"
                                      "Output:\nhello\r\ngot hello\r\n")


@pytest.mark.parametrize(("tool", "args", "reason"), [
    ("exec_command", {"cmd": 5}, "argument `cmd` must be a string"),
    ("exec_command", {"cmd": "true", "yield_time_ms": 1.5}, "must be an integer"),
    ("exec_command", {"cmd": "true", "yield_time_ms": -1}, "must be at least 0"),
    ("exec_command", {"cmd": "true", "max_output_tokens": -5}, "must be at least 0"),
    ("exec_command", {"cmd": "true", "bogus": 1}, "unknown argument `bogus`"),
    ("write_stdin", {"session_id": 1000, "yield_time_ms": -1}, "must be at least 0"),
    ("write_stdin", {}, "missing argument `session_id`"),
])
async def test_bad_arguments_are_refused_before_anything_runs(
    tool: str, args: dict[str, object], reason: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    if "cmd" in args and isinstance(args["cmd"], str):
        args = {**args, "cmd": f"touch {marker}"}
    with trio.fail_after(TIMEOUT):
        async with open_local_environment() as local, open_toolset(
            local, cwd=str(tmp_path), env_vars=ENV
        ) as tools:
            result = await tools.call(tool, args)
            assert not result.ok
            assert result.text.startswith("failed to parse function arguments: ")
            assert reason in result.text
            assert not marker.exists()


# --------------------------------------------------------------------------- file tools


async def test_list_dir_and_read_file(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path)) as tools:
            (tmp_path / "a.txt").write_text("one\ntwo\nthree\n")
            (tmp_path / "sub" / "deep").mkdir(parents=True)
            (tmp_path / "sub" / "x.py").write_text("")
            (tmp_path / "sub" / "deep" / "hidden").write_text("")
            (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
            listing = await tools.call("list_dir", {"dir_path": "."})
            assert listing.text == (f"Absolute path: {tmp_path}\na.txt\ndangling?\nsub/\n"
                                    "  deep/\n  x.py")
            window = await tools.call("list_dir", {"dir_path": str(tmp_path), "offset": 2,
                                                   "limit": 2, "depth": 1})
            assert window.text == f"Absolute path: {tmp_path}\ndangling?\nsub/"
            cut = await tools.call("list_dir", {"dir_path": ".", "limit": 1, "depth": 3})
            assert cut.text == f"Absolute path: {tmp_path}\na.txt\nMore than 1 entries found"
            past = await tools.call("list_dir", {"dir_path": ".", "offset": 9})
            assert not past.ok and past.text == "offset exceeds directory entry count"

            read = await tools.call("read_file", {"file_path": "a.txt", "offset": 2, "limit": 1})
            assert read.text == "L2: two"
            beyond = await tools.call("read_file", {"file_path": "a.txt", "offset": 7})
            assert not beyond.ok and beyond.text == "offset exceeds file length"
            missing = await tools.call("read_file", {"file_path": "nope"})
            assert not missing.ok and missing.text == "No such file or directory (os error 2)"
