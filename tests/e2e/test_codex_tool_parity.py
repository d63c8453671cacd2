"""Our tools answer as codex's own do: the same calls, made by the real codex 0.169 and 0.171
clients (through a scripted fake model) and by `trio_exec.tools` (on a remote environment on
the same trio-exec daemon), give the same function-call output text, byte for byte once the
random parts (chunk id, wall time, session id) are masked; and our declarations use codex's
names, types and required lists for `exec_command`, `write_stdin` and `view_image`.
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import trio
from support.codex_harness import Say, ToolCall, run_codex_exec, write_stdin
from support.servers import ServerHandle

from trio_exec.environment import open_remote_environment
from trio_exec.tools import open_toolset

pytestmark = pytest.mark.reference

RUN_LIMIT = 90.0
ENV_PROBE = ('printf "%s|" "${NO_COLOR-unset}" "${TERM-unset}" "${LANG-unset}" '
             '"${LC_CTYPE-unset}" "${LC_ALL-unset}" "${COLORTERM-unset}" "${PAGER-unset}" '
             '"${GIT_PAGER-unset}" "${GH_PAGER-unset}"')
ENV_PROBED = {"NO_COLOR", "TERM", "LANG", "LC_CTYPE", "LC_ALL", "COLORTERM", "PAGER",
              "GIT_PAGER", "GH_PAGER"}
#: Parameters codex declares for its approval and sandbox flow, which has no counterpart here.
APPROVAL_PARAMETERS = {"justification", "login", "prefix_rule", "sandbox_permissions"}


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    rows = b"".join(b"\x00" + b"\x10\x20\x30" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def calls(workdir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The script; a session_id of None means the last session id reported."""
    return [
        ("exec_command", {"cmd": "echo hi; exit 3"}),
        ("exec_command", {"cmd": "seq 1 3000", "max_output_tokens": 50}),
        ("exec_command", {"cmd": "printf 'a%.0s' $(seq 1 100)", "max_output_tokens": 1}),
        ("exec_command", {"cmd": "exit 0", "max_output_tokens": 0}),
        ("exec_command", {"cmd": ENV_PROBE}),
        ("exec_command", {"cmd": "(echo on stderr; pwd) >&2", "workdir": "sub"}),
        ("exec_command", {"cmd": "sleep 0.8; echo late", "yield_time_ms": 300}),
        ("write_stdin", {"session_id": None, "chars": "x"}),
        ("write_stdin", {"session_id": None}),
        ("exec_command", {"cmd": "read x; echo got $x", "tty": True, "yield_time_ms": 300}),
        ("write_stdin", {"session_id": None, "chars": "hello\n", "yield_time_ms": 3000}),
        ("write_stdin", {"session_id": 999, "chars": "x"}),
        ("view_image", {"path": str(workdir / "pic.png")}),
        ("view_image", {"path": str(workdir / "missing.png")}),
    ]


def mask(output: Any) -> Any:
    if not isinstance(output, str):
        return output
    output = re.sub(r"Chunk ID: [0-9a-f]{6}", "Chunk ID: <id>", output)
    output = re.sub(r"Wall time: \d+\.\d{4} seconds", "Wall time: <t>", output)
    return re.sub(r"session ID \d+", "session ID <n>", output)


async def ours(url: str, workdir: Path) -> tuple[list[Any], dict[str, Any]]:
    outputs: list[Any] = []
    session: int | None = None
    env_vars = {k: v for k, v in os.environ.items() if k not in ENV_PROBED}
    async with open_remote_environment(url) as env, open_toolset(
        env, cwd=str(workdir), env_vars=env_vars
    ) as tools:
        for name, args in calls(workdir):
            if args.get("session_id", 0) is None:
                args = {**args, "session_id": session}
            result = await tools.call(name, args)
            outputs.append(result.output())
            found = re.search(r"session ID (\d+)", result.text)
            if found:
                session = int(found.group(1))
        specs = {s.name: s.to_openai() for s in tools.specs()}
    return outputs, specs


@pytest.mark.parametrize("version", ["0.169", "0.171"])
async def test_tool_outputs_and_declarations_match_codex(
    daemon: ServerHandle, tmp_path: Path, version: str
) -> None:
    workdir = tmp_path / "work"
    (workdir / "sub").mkdir(parents=True)
    (workdir / "pic.png").write_bytes(png(3, 2))
    script: list[Any] = [
        write_stdin(None, str(args.get("chars", "")), yield_time_ms=args.get("yield_time_ms"))
        if name == "write_stdin" and args["session_id"] is None else ToolCall(name, args)
        for name, args in calls(workdir)
    ]
    with trio.fail_after(RUN_LIMIT + 30):
        run = await run_codex_exec(daemon.url, [*script, Say("done")], codex_version=version,
                                   cwd=workdir, base_dir=tmp_path, time_limit=RUN_LIMIT)
        assert run.returncode == 0, run.report()
        theirs = [item["output"] for item in run.tool_outputs()]
        mine, specs = await ours(daemon.url, workdir)
    assert len(theirs) == len(mine) == len(calls(workdir))
    for (name, args), codex_out, our_out in zip(calls(workdir), theirs, mine, strict=True):
        assert mask(our_out) == mask(codex_out), (
            f"{name} {json.dumps(args)}\nours:  {our_out!r}\ncodex: {codex_out!r}")

    offered = {t["name"]: t for t in run.model_requests[0]["tools"] if "name" in t}
    for name in ("exec_command", "write_stdin", "view_image"):
        codex_params = offered[name]["parameters"]
        our_params = specs[name]["parameters"]
        assert our_params["required"] == codex_params["required"], name
        missing = set(codex_params["properties"]) - set(our_params["properties"])
        assert missing <= APPROVAL_PARAMETERS, name
        for param, decl in our_params["properties"].items():
            assert decl["type"] == codex_params["properties"][param]["type"], (name, param)
        assert specs[name]["description"] == offered[name]["description"], name
