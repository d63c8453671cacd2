"""The daemon's log lines: one per event that matters, short ids, no secrets; text, journald and
JSON forms. The formats are checked on a real `serve` child; the session lifecycle (expiry
included) on an in-process daemon under the mock clock."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing
from support import serve
from support.daemon import ended, in_memory_daemon
from support.wsclient import connect

SERVE = [*serve.SERVE, "--listen", "ws://127.0.0.1:0"]
SECRET_ENV = "env-value-7c1d"
SECRET_FILE = "file-content-93ab"
TOKEN = "token-5e2f0a"


def _start(*flags: str, env: dict[str, str], stderr: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([*SERVE, *flags], stdout=subprocess.PIPE, stderr=stderr, env=env)


async def _exercise(url: str, secret_file: Path) -> None:
    """A session that runs a command with a secret in its environment and reads a secret file."""
    auth = [(b"authorization", f"Bearer {TOKEN}".encode())]
    async with connect(url, extra_headers=auth) as client:
        await client.handshake()
        await client.run("job-1", ["sh", "-c", "echo $SECRET; exit 3"],
                         env={"SECRET": SECRET_ENV, "PATH": os.environ["PATH"]})
        reply = await client.request("fs/readFile", {"path": str(secret_file)})
        assert "result" in reply


async def _run_daemon_and_read_its_log(tmp_path: Path, *flags: str, journald: bool = False) -> str:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET_FILE)
    read_end, write_end = os.pipe()
    env = dict(os.environ)
    if journald:
        stat = os.fstat(write_end)
        env["JOURNAL_STREAM"] = f"{stat.st_dev}:{stat.st_ino}"
    proc = _start("--auth-token-file", str(token), *flags, env=env, stderr=write_end)
    os.close(write_end)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().decode().strip()
        await _exercise(url, secret_file)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        with os.fdopen(read_end, "rb") as reader:
            return reader.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _assert_the_events_and_no_secrets(said: str) -> None:
    for event in (r"conn-\d+ connected from 127\.0\.0\.1:\d+",
                  r"sess-[0-9a-f]{8} created for conn-\d+",
                  r"job-1 started: pid \d+, sh",
                  r"job-1 exited: code 3 after \d+\.\d{3}s",
                  r"sess-[0-9a-f]{8} parked for 30\.0s"):
        assert re.search(event, said), (event, said)
    for secret in (SECRET_ENV, SECRET_FILE, TOKEN):
        assert secret not in said


async def test_text_lines_carry_a_timestamp_off_journald(tmp_path: Path) -> None:
    said = await _run_daemon_and_read_its_log(tmp_path, "--log-level", "info")
    _assert_the_events_and_no_secrets(said)
    for line in said.splitlines():
        assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (INFO|WARNING) trio_exec", line), line


async def test_under_journald_no_timestamp_and_the_priority_prefix(tmp_path: Path) -> None:
    said = await _run_daemon_and_read_its_log(tmp_path, "--log-level", "info", journald=True)
    _assert_the_events_and_no_secrets(said)
    for line in said.splitlines():
        assert re.match(r"<[3-7]>(INFO|WARNING) trio_exec", line), line


async def test_json_lines_for_collectors(tmp_path: Path) -> None:
    said = await _run_daemon_and_read_its_log(
        tmp_path, "--log-level", "info", "--log-format", "json", journald=True
    )
    entries = [orjson.loads(line) for line in said.splitlines()]
    assert entries and all(set(e) == {"time", "level", "logger", "message"} for e in entries)
    _assert_the_events_and_no_secrets("\n".join(e["message"] for e in entries))


async def test_a_session_lifecycle_is_logged_to_its_expiry(
    mock_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="trio_exec")
    async with in_memory_daemon(session_ttl=30.0) as daemon:
        async with daemon.wire_link() as link:
            sid = await link.client.handshake()
            await link.client.start_ok("s", ["sleep", "1000"])
            await link.drop()
        async with daemon.wire_link() as link, daemon.wire_link() as thief:
            await link.client.handshake(resumeSessionId=sid)
            await thief.client.handshake(resumeSessionId=sid)
            await thief.drop()
        await trio.testing.wait_all_tasks_blocked()
        session = daemon.registry.get(sid)
        assert session is not None
        mock_clock.jump(30.0)
        await ended(session)  # its processes killed and reaped
    label = f"sess-{sid[:8]}"
    said = [r.getMessage() for r in caplog.records if r.name.startswith("trio_exec")]
    expected = [f"{label} created for conn-", "s started: pid ", f"{label} parked for 30.0s",
                f"{label} resumed by conn-", f"{label} taken over by conn-",
                f"{label} resumed by conn-", f"{label} parked for 30.0s",
                "s killed at its session's end after 30.000s",
                f"{label} expired: not resumed within 30.0s, its processes killed"]
    lifecycle = [m for m in said if any(m.startswith(e) for e in expected)]
    assert len(lifecycle) == len(expected), said
    for message, start in zip(lifecycle, expected, strict=True):
        assert message.startswith(start), (message, start)
