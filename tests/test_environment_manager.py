"""The environment manager: the variable matrix, each kind opened for real, cwd rules, and the
disabled environment refusing every operation."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from support.daemon import tcp_daemon

from trio_exec.environment import (
    EnvironmentConfigError,
    EnvironmentManager,
    EnvironmentUnavailable,
    disabled_environment,
    spec_from_environ,
)

TIMEOUT = 10


@pytest.mark.parametrize(
    ("environ", "kind", "url", "variable"),
    [
        ({}, "local", None, None),
        ({"TRIO_EXEC_SERVER_URL": ""}, "local", None, None),
        ({"TRIO_EXEC_SERVER_URL": "  "}, "local", None, None),
        ({"TRIO_EXEC_SERVER_URL": "none"}, "disabled", None, "TRIO_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "NONE"}, "disabled", None, "TRIO_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "ws://10.0.0.1:8765"}, "remote", "ws://10.0.0.1:8765",
         "TRIO_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "wss://exec.example:443/x"}, "remote",
         "wss://exec.example:443/x", "TRIO_EXEC_SERVER_URL"),
        ({"CODEX_EXEC_SERVER_URL": "ws://h:1"}, "remote", "ws://h:1", "CODEX_EXEC_SERVER_URL"),
        ({"CODEX_EXEC_SERVER_URL": "none"}, "disabled", None, "CODEX_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "", "CODEX_EXEC_SERVER_URL": "none"}, "disabled", None,
         "CODEX_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "ws://a:1", "CODEX_EXEC_SERVER_URL": "none"}, "remote",
         "ws://a:1", "TRIO_EXEC_SERVER_URL"),
        ({"TRIO_EXEC_SERVER_URL": "none", "CODEX_EXEC_SERVER_URL": "ws://a:1"}, "disabled",
         None, "TRIO_EXEC_SERVER_URL"),
    ],
)
def test_variable_matrix(
    environ: dict[str, str], kind: str, url: str | None, variable: str | None
) -> None:
    spec = spec_from_environ(environ)
    assert (spec.kind, spec.url, spec.variable) == (kind, url, variable)


@pytest.mark.parametrize(
    "value", ["http://h:1", "localhost:8765", "ws://", "file:///tmp/sock", "nothing", "ws:/h"]
)
def test_anything_else_is_a_clear_error(value: str) -> None:
    with pytest.raises(EnvironmentConfigError, match="TRIO_EXEC_SERVER_URL") as err:
        spec_from_environ({"TRIO_EXEC_SERVER_URL": value})
    assert "ws://" in str(err.value)


async def test_each_kind_opens_for_real(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with EnvironmentManager.from_environ({}).open() as env:
            assert env.kind == "local" and env.capabilities.exec_enabled
        async with EnvironmentManager.from_environ({"TRIO_EXEC_SERVER_URL": "none"}).open() as env:
            assert env.kind == "disabled"
            assert not env.capabilities.exec_enabled and not env.capabilities.filesystem_enabled
        async with tcp_daemon() as served:
            manager = EnvironmentManager.from_environ({"CODEX_EXEC_SERVER_URL": served.url})
            async with manager.open() as env:
                assert env.kind == "remote" and env.url == served.url
                assert env.capabilities.exec_enabled and env.capabilities.filesystem_enabled
                await env.filesystem.write_file(f"{tmp_path}/f", b"x")
                assert await env.filesystem.read_file(f"{tmp_path}/f") == b"x"


def test_remote_working_directory_is_not_checked_locally() -> None:
    manager = EnvironmentManager.from_environ({"TRIO_EXEC_SERVER_URL": "ws://h:1"})
    assert manager.resolve_cwd("/only/on/the/server") == "/only/on/the/server"
    assert manager.resolve_cwd("relative/on/server") == "relative/on/server"


def test_local_working_directory_is_checked(tmp_path: Path) -> None:
    manager = EnvironmentManager.from_environ({})
    assert manager.resolve_cwd(str(tmp_path)) == str(tmp_path)
    with pytest.raises(EnvironmentConfigError, match="does not exist"):
        manager.resolve_cwd(str(tmp_path / "missing"))


async def test_disabled_environment_refuses_every_operation() -> None:
    env = disabled_environment()
    fs = env.filesystem
    calls = [
        lambda: env.exec.start(["true"], cwd="/", env={}),
        lambda: fs.read_file("/x"),
        lambda: fs.write_file("/x", b""),
        lambda: fs.create_directory("/x"),
        lambda: fs.get_metadata("/x"),
        lambda: fs.read_directory("/x"),
        lambda: fs.remove("/x"),
        lambda: fs.copy("/x", "/y", recursive=True),
    ]
    for call in calls:
        with pytest.raises(EnvironmentUnavailable, match="is not available: the execution environment is disabled"):
            await call()
