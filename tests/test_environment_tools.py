"""The agent tools on an environment: offered by capability, rejected when called anyway,
and working the same on a local and a remote environment."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
from test_client_harness import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Capabilities, Environment, disabled_environment
from trio_exec.environment.local import open_local_environment
from trio_exec.tools import ToolRejected, open_toolset

TIMEOUT = 15
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
EXEC_TOOLS = {"exec_command", "write_stdin"}
FS_TOOLS = {"read_file", "write_file", "list_dir", "edit_file", "apply_patch"}


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


async def test_everything_is_offered_when_everything_is_enabled(env: Environment) -> None:
    async with open_toolset(env, cwd="/") as tools:
        assert set(tools.names()) == EXEC_TOOLS | FS_TOOLS


@pytest.mark.parametrize(("exec_on", "fs_on"), [(False, True), (True, False), (False, False)])
async def test_capabilities_gate_tools_independently(exec_on: bool, fs_on: bool) -> None:
    async with open_local_environment() as local:
        env = attrs.evolve(local, capabilities=Capabilities(exec_enabled=exec_on,
                                                            filesystem_enabled=fs_on))
        async with open_toolset(env, cwd="/") as tools:
            expected = (EXEC_TOOLS if exec_on else set()) | (FS_TOOLS if fs_on else set())
            assert set(tools.names()) == expected
            for name in (EXEC_TOOLS | FS_TOOLS) - expected:
                with pytest.raises(ToolRejected, match=f"tool `{name}` is not offered"):
                    await tools.call(name, {})


async def test_disabled_environment_offers_nothing_and_handlers_refuse() -> None:
    env = disabled_environment()
    async with open_toolset(env, cwd="/") as tools:
        assert tools.names() == []
        with pytest.raises(ToolRejected):
            await tools.call("exec_command", {"cmd": "true"})
        with pytest.raises(ToolRejected, match="unknown tool"):
            await tools.call("rm_rf", {})
        # the handler behind the registry refuses on its own (the runtime backstop)
        spec = tools._all["exec_command"]
        with pytest.raises(Exception, match="exec is not available"):
            await spec.handler({"cmd": "true"})


async def test_exec_command_and_write_stdin(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            done = await tools.call("exec_command", {"cmd": "pwd; exit 4"})
            assert done.ok
            assert done.text == f"Process exited with code 4\nOutput:\n{tmp_path}\n"
            running = await tools.call("exec_command", {"cmd": "read x; echo got $x",
                                                        "yield_time_ms": 100})
            assert running.ok and running.text.startswith("Process running with session ID ")
            session = int(running.text.split("session ID ")[1].split("\n")[0])
            fed = await tools.call("write_stdin", {"session_id": session, "chars": "hello\n",
                                                   "yield_time_ms": 5000})
            assert fed.text == "Process exited with code 0\nOutput:\ngot hello\n"
            gone = await tools.call("write_stdin", {"session_id": session})
            assert not gone.ok and "no running session" in gone.text
            bad = await tools.call("exec_command", {"cmd": 5})
            assert not bad.ok and "must be a string" in bad.text


async def test_file_tools(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path)) as tools:
            assert (await tools.call("write_file", {"path": "a.txt", "content": "one\ntwo\n"})).ok
            read = await tools.call("read_file", {"path": "a.txt", "offset": 2})
            assert read.text == "L2: two"
            edit = await tools.call("edit_file", {"path": "a.txt", "old_string": "two",
                                                  "new_string": "deux"})
            assert edit.ok
            assert (tmp_path / "a.txt").read_text() == "one\ndeux\n"
            twice = await tools.call("edit_file", {"path": "a.txt", "old_string": "e",
                                                   "new_string": "E"})
            assert not twice.ok and "found 2 times" in twice.text
            (tmp_path / "sub").mkdir()
            listing = await tools.call("list_dir", {"path": "."})
            assert listing.text == "a.txt\nsub/"
            missing = await tools.call("read_file", {"path": "nope"})
            assert not missing.ok and missing.text == "No such file or directory (os error 2)"


async def test_edit_file_on_a_file_that_is_not_utf8_is_refused_not_raised(
    env: Environment, tmp_path: Path
) -> None:
    """A handler's failure comes back as a ToolResult: a binary file cannot be edited as text,
    and the file is left as it was."""
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path)) as tools:
            (tmp_path / "blob").write_bytes(b"\xff\xfeold\x00")
            edit = await tools.call("edit_file", {"path": "blob", "old_string": "old",
                                                  "new_string": "new"})
            assert not edit.ok and "not UTF-8" in edit.text
            assert (tmp_path / "blob").read_bytes() == b"\xff\xfeold\x00"


async def test_output_cut_to_a_tiny_max_output_bytes_keeps_the_limit(
    env: Environment, tmp_path: Path
) -> None:
    """max_output_bytes=1 keeps at most one byte of output (the middle is cut), not all of it."""
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            done = await tools.call("exec_command", {"cmd": "printf abcdefghij",
                                                     "max_output_bytes": 1})
            assert done.ok
            output = done.text.split("\nOutput:\n", 1)[1]
            assert "abcdefghij" not in output
            assert "[... 9 bytes omitted ...]" in output


@pytest.mark.parametrize("tool,args", [
    ("exec_command", {"cmd": "true", "yield_time_ms": -1}),
    ("exec_command", {"cmd": "true", "max_output_bytes": -5}),
])
async def test_out_of_range_numbers_are_refused_before_anything_runs(
    tool: str, args: dict[str, object], tmp_path: Path
) -> None:
    """A negative yield time used to raise ValueError out of `call` (after the command had
    started); a negative limit mangled the output. Both are refused as tool failures."""
    marker = tmp_path / "ran"
    args = {**args, "cmd": f"touch {marker}"}
    with trio.fail_after(TIMEOUT):
        async with open_local_environment() as local, open_toolset(
            local, cwd=str(tmp_path), env_vars=ENV
        ) as tools:
            result = await tools.call(tool, args)
            assert not result.ok and "must be" in result.text
            assert not marker.exists()
            stdin = await tools.call("write_stdin", {"session_id": 1, "yield_time_ms": -1})
            assert not stdin.ok and "must be" in stdin.text
