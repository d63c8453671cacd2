"""One suite for every environment: the same tests run against the local environment (the
daemon's process and fs code, in-process) and a remote one (a real daemon on 127.0.0.1:0,
through the client), so the two cannot drift."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing
from support.daemon import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Environment, ExecProcess
from trio_exec.proto.errors import InternalError, InvalidParams, InvalidRequest, NotFound
from trio_exec.proto.process_messages import TerminalSize

TIMEOUT = 15
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"}


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


async def collect(process: ExecProcess) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    last_seq = 0
    async for chunk in process.output():
        assert chunk.seq > last_seq
        last_seq = chunk.seq
        out[chunk.stream] = out.get(chunk.stream, b"") + chunk.data
    return out


async def run(env: Environment, script: str, **kwargs: object) -> tuple[dict[str, bytes], int]:
    process = await env.exec.start(["/bin/sh", "-c", script], cwd="/", env=ENV, **kwargs)  # type: ignore[arg-type]
    output = await collect(process)
    return output, await process.wait()


async def test_capabilities(env: Environment) -> None:
    assert env.capabilities.exec_enabled and env.capabilities.filesystem_enabled
    assert env.kind in ("local", "remote")


async def test_output_streams_and_exit_code(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        output, code = await run(env, "echo out; echo err >&2; exit 7")
    assert output == {"stdout": b"out\n", "stderr": b"err\n"}
    assert code == 7


async def test_state_after_exit(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["/bin/true"], cwd="/", env=ENV)
        assert await process.wait() == 0
        assert process.has_exited and process.exit_code == 0
        assert process.failure is None and process.signal_name is None
        assert await collect(process) == {}


async def test_large_output_exactly_once_in_order(env: Environment) -> None:
    script = "i=0; while [ $i -lt 3000 ]; do printf '%05d %s\\n' $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done"
    with trio.fail_after(TIMEOUT):
        output, code = await run(env, script)
    lines = output["stdout"].decode().splitlines()
    assert code == 0
    assert [int(line.split()[0]) for line in lines] == list(range(3000))


async def test_stdin_pipe_and_close(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["cat"], cwd="/", env=ENV, pipe_stdin=True)
        assert await process.write(b"hello ") == "accepted"
        assert await process.write(b"world", close_stdin=True) == "accepted"
        assert await collect(process) == {"stdout": b"hello world"}
        assert await process.wait() == 0
        assert await process.write(b"late") == "stdinClosed"


async def test_no_stdin_without_pipe(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["cat"], cwd="/", env=ENV)
        assert await process.write(b"x") == "stdinClosed"
        assert await process.wait() == 0


async def test_tty_output_and_resize(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(
            ["/bin/sh", "-c", "stty size; read line; stty size; echo got $line"],
            cwd="/", env=ENV, tty=True, size=TerminalSize(rows=30, cols=100),  # type: ignore[arg-type]
        )
        seen = b""
        async for chunk in process.output():
            assert chunk.stream == "pty"
            seen += chunk.data
            if b"30 100" in seen and b"resized" not in seen:
                await process.resize(40, 120)
                assert await process.write(b"resized\n") == "accepted"
                seen += b"[resized]"
        assert await process.wait() == 0
    assert b"30 100" in seen and b"40 120" in seen and b"got resized" in seen


async def test_terminate_reports_signal(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["sleep", "30"], cwd="/", env=ENV)
        assert await process.terminate() is True
        assert await process.wait() == -1
        assert process.signal_name == "SIGKILL"
        assert await process.terminate() is False


async def test_send_signal(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(
            ["/bin/sh", "-c", "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done"],
            cwd="/", env=ENV,
        )
        first = await process.receive()
        assert first is not None and first.data == b"ready\n"
        assert await process.send_signal("terminate") is True
        # (the TERM reaches the whole process group: a killed `sleep` may add a shell notice on stderr)
        assert (await collect(process))["stdout"] == b"got-term\n"
        assert await process.wait() == 5
        with pytest.raises(InvalidParams, match=r"unknown signal `bogus`"):
            await process.send_signal("bogus")


async def test_resize_without_terminal(env: Environment) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["sleep", "5"], cwd="/", env=ENV)
        with pytest.raises(InvalidRequest, match=f"process {process.process_id} has no terminal"):
            await process.resize(10, 10)
        await process.terminate()
        await process.wait()


async def test_spawn_errors(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        with pytest.raises(InternalError, match=r"^No such file or directory \(os error 2\)$"):
            await env.exec.start(["/no/such/program"], cwd="/", env=ENV)
        with pytest.raises(InternalError, match=r"^No such file or directory \(os error 2\)$"):
            await env.exec.start(["/bin/true"], cwd=str(tmp_path / "missing"), env=ENV)
        with pytest.raises(InvalidParams, match=r"^argv must not be empty$"):
            await env.exec.start([], cwd="/", env=ENV)


async def test_env_replaces_environment_and_cwd(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        process = await env.exec.start(["/usr/bin/env"], cwd=str(tmp_path), env={"ONLY": "this"})
        assert await collect(process) == {"stdout": b"ONLY=this\n"}
        process = await env.exec.start(["/bin/pwd"], cwd=str(tmp_path), env=ENV)
        assert (await collect(process))["stdout"].decode().strip() == str(tmp_path)


async def test_files_round_trip(env: Environment, tmp_path: Path) -> None:
    fs = env.filesystem
    root = str(tmp_path)
    with trio.fail_after(TIMEOUT):
        await fs.create_directory(f"{root}/a/b")
        await fs.write_file(f"{root}/a/b/f.bin", bytes(range(256)) * 10)
        assert await fs.read_file(f"{root}/a/b/f.bin") == bytes(range(256)) * 10
        meta = await fs.get_metadata(f"{root}/a/b/f.bin")
        assert meta.is_file and not meta.is_directory
        assert (await fs.get_metadata(f"{root}/a")).is_directory
        await fs.copy(f"{root}/a", f"{root}/c", recursive=True)
        assert await fs.read_file(f"{root}/c/b/f.bin") == bytes(range(256)) * 10
        names = sorted((e.file_name, e.is_directory) for e in await fs.read_directory(root))
        assert names == [("a", True), ("c", True)]
        await fs.remove(f"{root}/a")
        assert sorted(e.file_name for e in await fs.read_directory(root)) == ["c"]
        await fs.remove(f"{root}/a")  # force: a missing path is fine


async def test_file_errors_are_the_wire_errors(env: Environment, tmp_path: Path) -> None:
    fs = env.filesystem
    with trio.fail_after(TIMEOUT):
        with pytest.raises(NotFound, match=r"^No such file or directory \(os error 2\)$"):
            await fs.read_file(f"{tmp_path}/missing")
        with pytest.raises(InvalidParams, match=r"^AbsolutePathBuf deserialized without a base path$"):
            await fs.read_file("relative/path")
        with pytest.raises(InternalError, match=r"^Is a directory \(os error 21\)$"):
            await fs.read_file(str(tmp_path))
        with pytest.raises(NotFound):
            await fs.remove(f"{tmp_path}/missing", force=False)
        with pytest.raises(InvalidRequest, match=r"requires recursive: true"):
            await fs.copy(str(tmp_path), f"{tmp_path}-copy", recursive=False)
        await fs.write_file(f"{tmp_path}/x/../y", b"normalised")
        assert await fs.read_file(f"{tmp_path}/y") == b"normalised"


async def test_many_concurrent_processes(env: Environment) -> None:
    results: dict[int, bytes] = {}

    async def one(i: int) -> None:
        process = await env.exec.start(["/bin/echo", str(i)], cwd="/", env=ENV)
        results[i] = (await collect(process))["stdout"]

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, i)
    assert results == {i: f"{i}\n".encode() for i in range(20)}


if sys.platform != "linux":  # pragma: no cover
    pytestmark = pytest.mark.skip("Linux only")


@pytest.mark.parametrize("kind", ENVIRONMENT_KINDS)
async def test_a_process_outliving_its_environment_fails_instead_of_hanging(kind: str) -> None:
    """A consumer still reading (or waiting) when the environment is closed gets an error,
    the same way for both kinds: the remote one fails with ConnectionLost when its client
    closes; the local one must not leave `receive()`/`wait()` waiting for ever."""
    from trio_exec.client import ClientError

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            outcomes: list[str] = []

            async def consume(process: ExecProcess) -> None:
                try:
                    async for _chunk in process.output():
                        pass
                    outcomes.append("ended")
                except ClientError as exc:
                    outcomes.append(f"failed: {exc}")

            async def wait(process: ExecProcess) -> None:
                try:
                    await process.wait()
                    outcomes.append("exited")
                except ClientError as exc:
                    outcomes.append(f"failed: {exc}")

            async with open_environment(kind) as env:
                process = await env.exec.start(["sleep", "60"], cwd="/", env=ENV)
                nursery.start_soon(consume, process)
                nursery.start_soon(wait, process)
                await trio.testing.wait_all_tasks_blocked()
        assert len(outcomes) == 2 and all(o.startswith("failed") for o in outcomes), outcomes
