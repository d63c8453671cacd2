"""`trio-exec tools list|call`, run as a real subprocess against the configured environment:
this machine (unset), a daemon (`TRIO_EXEC_SERVER_URL=ws://…`, or `CODEX_EXEC_SERVER_URL`),
or none; exit 0 on success, 1 when the tool fails, 2 on bad arguments."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
import trio
from support.daemon import tcp_daemon

TIMEOUT = 30


async def cli(*args: str, cwd: Path, url: str | None = None,
              variable: str = "TRIO_EXEC_SERVER_URL") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("TRIO_EXEC_SERVER_URL", "CODEX_EXEC_SERVER_URL")}
    if url is not None:
        env[variable] = url
    done = await trio.run_process([sys.executable, "-m", "trio_exec", "tools", *args],
                                  cwd=cwd, env=env, capture_stdout=True, capture_stderr=True,
                                  check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(),
                                       done.stderr.decode())


def png_1x1() -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00\x7f")) + chunk(b"IEND", b""))


async def test_list_and_call_locally(tmp_path: Path) -> None:
    (tmp_path / "dot.png").write_bytes(png_1x1())
    with trio.fail_after(TIMEOUT):
        listing = await cli("list", "--json", cwd=tmp_path)
        assert listing.returncode == 0, listing.stderr
        declared = json.loads(listing.stdout)
        names = [d["name"] for d in declared]
        assert {"exec_command", "write_stdin", "js_repl", "list_dir", "view_image"} <= set(names)
        assert all(d["type"] == "function" and d["parameters"]["type"] == "object"
                   for d in declared)
        chat = json.loads((await cli("list", "--chat", cwd=tmp_path)).stdout)
        assert [d["function"]["name"] for d in chat] == names
        text = await cli("list", cwd=tmp_path)
        assert text.stdout.startswith(f"local environment: {len(names)} tools\n")

        ran = await cli("call", "exec_command", '{"cmd": "pwd; exit 5"}', cwd=tmp_path)
        assert ran.returncode == 0
        assert "Process exited with code 5\nOriginal token count: " in ran.stdout
        assert ran.stdout.endswith(f"Output:\n{tmp_path}\n\n")
        image = await cli("call", "view_image", '{"path": "dot.png"}', cwd=tmp_path)
        assert image.returncode == 0
        url_length = len("data:image/png;base64,") + 4 * -(-len(png_1x1()) // 3)
        assert image.stdout == (f"{tmp_path}/dot.png: image/png, 1x1 pixels, "
                                f"{len(png_1x1())} bytes\ndata:image/png;base64,"
                                f"iVBORw0KGgoAAAANSUhEUgAAAA… ({url_length} characters)\n")


@pytest.mark.parametrize(("args", "status", "stderr"), [
    (("call", "view_image", '{"path": "nothing.png"}'), 1, ""),
    (("call", "exec_command", "{not json"), 2, "not valid JSON"),
    (("call", "exec_command", "[1]"), 2, "must be a JSON object"),
    (("call", "exec_command", '{"cmd": 1}'), 2, "argument `cmd` must be a string"),
    (("call", "exec_command", "{}"), 2, "missing argument `cmd`"),
    (("call", "no_such_tool", "{}"), 2, "unknown tool `no_such_tool`"),
])
async def test_exit_statuses(args: tuple[str, ...], status: int, stderr: str,
                             tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        done = await cli(*args, cwd=tmp_path)
    assert done.returncode == status, (done.stdout, done.stderr)
    assert stderr in done.stderr
    if status == 1:
        assert done.stdout.startswith("unable to locate image at ")


async def test_disabled_environment_offers_and_runs_nothing(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        listing = await cli("list", "--json", cwd=tmp_path, url="none")
        assert (listing.returncode, json.loads(listing.stdout)) == (0, [])
        refused = await cli("call", "exec_command", f'{{"cmd": "touch {tmp_path}/ran"}}',
                            cwd=tmp_path, url="none")
        assert refused.returncode == 2
        assert "tool `exec_command` is not offered: exec is disabled" in refused.stderr
        assert not (tmp_path / "ran").exists()
        bad = await cli("list", cwd=tmp_path, url="http://nope")
        assert bad.returncode == 2 and "TRIO_EXEC_SERVER_URL" in bad.stderr


@pytest.mark.parametrize("variable", ["TRIO_EXEC_SERVER_URL", "CODEX_EXEC_SERVER_URL"])
async def test_remote_environment(variable: str, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served:
            listing = await cli("list", cwd=tmp_path, url=served.url, variable=variable)
            assert listing.stdout.startswith("remote environment: ")
            ran = await cli("call", "js_repl", '{"code": "await Promise.resolve(6 * 7)"}',
                            cwd=tmp_path, url=served.url, variable=variable)
            assert (ran.returncode, ran.stdout) == (0, "42\n\n")
        gone = await cli("list", cwd=tmp_path, url=served.url, variable=variable)
        assert gone.returncode == 1 and "the environment is unavailable" in gone.stderr
