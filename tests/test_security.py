"""Security rules of the daemon (issue 14, item 8).

- Session ids come from the OS CSPRNG (seeding Python's `random` changes nothing) and are UUID
  v4; no log record carries a full id, whatever happens to the session.
- Another session's processes cannot be reached by id.
- A child holds no descriptor of the daemon (listening socket, connections, other children's
  pipes, the token file): only 0, 1 and 2.
- A child inheriting the daemon's environment (`envPolicy.inherit: all`, default excludes off)
  gets none of the daemon's own variables (`TRIO_EXEC_*`, `CREDENTIALS_DIRECTORY`, a variable
  holding the auth token) unless the client sets them itself.
"""

from __future__ import annotations

import logging
import os
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
import trio
from support.daemon import in_memory_daemon
from support.servers import TRIO_EXEC, launch
from support.wsclient import WireClient, connect

from trio_exec.session.registry import new_session_id

THREAD = "01a21234-ec71-7193-af7d-5ca6e5884305"


def test_session_ids_do_not_follow_pythons_random() -> None:
    random.seed(7)
    first = [new_session_id() for _ in range(4)]
    random.seed(7)
    again = [new_session_id() for _ in range(4)]
    assert not set(first) & set(again)
    assert all(uuid.UUID(sid).version == 4 for sid in first + again)


async def test_no_log_record_carries_a_full_session_id(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(20):
        async with in_memory_daemon(session_ttl=30.0) as daemon:
            async with daemon.wire_link() as link:
                sid = await link.client.handshake()
                await link.client.start_ok("p", ["true"])
                await link.drop()
            async with daemon.wire_link() as link:
                await link.client.handshake(resumeSessionId=sid)
            async with daemon.wire_link() as link:
                await link.client.initialize(resumeSessionId=str(uuid.uuid4()))
    assert sid[:8] in caplog.text  # the label is logged...
    assert sid not in caplog.text  # ...never the whole id


async def test_another_sessions_processes_are_unreachable() -> None:
    with trio.fail_after(20):
        async with in_memory_daemon() as daemon, daemon.wire_link() as a, daemon.wire_link() as b:
                await a.client.handshake()
                await b.client.handshake()
                await a.client.start_ok("mine", ["sleep", "600"], pipeStdin=True)
                pid = {"processId": "mine"}
                read = await b.client.request("process/read", pid)
                assert read["error"]["message"] == "unknown process id mine"
                write = await b.client.result("process/write", {**pid, "chunk": ""})
                assert write == {"status": "unknownProcess"}
                assert await b.client.result("process/terminate", pid) == {"running": False}
                assert await b.client.result(
                    "process/signal", {**pid, "signal": "kill"}) == {"running": False}
                resize = await b.client.request("process/resize", {**pid, "rows": 5, "cols": 5})
                assert resize["error"]["message"] == "unknown process id mine"
                assert (await b.client.result("process/list", {}))["processes"] == []
                listed = (await a.client.result("process/list", {}))["processes"]
                assert [p["state"] for p in listed] == ["running"]


async def test_children_hold_no_daemon_descriptor(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sekrit-token")
    server = launch(TRIO_EXEC, "--auth-token-file", str(token))
    auth = [(b"Authorization", b"Bearer sekrit-token")]
    try:
        with trio.fail_after(20):
            async with connect(server.url, extra_headers=auth) as a, \
                    connect(server.url, extra_headers=auth) as b:
                await a.handshake()
                await b.handshake()
                await b.start_ok("other", ["sleep", "600"], pipeStdin=True)
                await a.start_ok("other", ["sleep", "600"], pipeStdin=True, tty=True)
                out, exited = await a.run("fds", ["sh", "-c", "ls /proc/$$/fd"])
                assert exited["exitCode"] == 0
                assert sorted(out.decode().split()) == ["0", "1", "2"], out
                out, _ = await a.run("fds-tty", ["sh", "-c", "ls /proc/$$/fd"], tty=True)
                assert sorted(out.decode().split()) == ["0", "1", "2"], out
    finally:
        server.stop()


async def run169(client: WireClient, pid: str, env: dict[str, str], common: dict[str, Any]) -> bytes:
    reply = await client.start(pid, ["env"], env=env, **common)
    assert reply["result"]["processId"] == pid, reply
    await client.wait_process_closed(pid)
    return client.output(pid)


async def test_inheriting_children_do_not_get_the_daemons_secrets(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("sekrit-token")
    env = {**os.environ, "TRIO_EXEC_SETTING": "daemon-only", "CREDENTIALS_DIRECTORY": "/run/c",
           "DEPLOY_PASSPHRASE": "prefix-sekrit-token", "PLAIN_VARIABLE": "kept"}
    server = launch(TRIO_EXEC, "--auth-token-file", str(token), env=env)
    auth = [(b"Authorization", b"Bearer sekrit-token")]
    policy = {"inherit": "all", "ignoreDefaultExcludes": True, "exclude": [], "set": {},
              "includeOnly": []}
    try:
        with trio.fail_after(20):
            async with connect(server.url, extra_headers=auth) as client:
                await client.handshake()
                common = {"envPolicy": policy, "metadata": {"threadId": THREAD},
                          "sandbox": None}
                out = await run169(client, "env", {}, common)
                seen = dict(line.split("=", 1) for line in out.decode().splitlines() if "=" in line)
                assert seen.get("PLAIN_VARIABLE") == "kept"
                for name in ("TRIO_EXEC_SETTING", "CREDENTIALS_DIRECTORY", "DEPLOY_PASSPHRASE"):
                    assert name not in seen, name
                asked = {"TRIO_EXEC_SETTING": "by the client"}
                out = await run169(client, "asked", asked, common)
                assert "TRIO_EXEC_SETTING=by the client" in out.decode().splitlines()
    finally:
        server.stop()
