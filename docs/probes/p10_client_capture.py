"""Probe 10: capture what the real codex CLI sends to an exec-server.

usage: python p10_client_capture.py SCENARIO [CLIENT_VERSION] [SERVER_VERSION]
Scenarios: echo, tty, longrun, cut, fail, all.  Captures go to captures/<client>-<server>-<scenario>.jsonl
(one frame per line: t, conn, direction, frame) plus a .txt with codex stdout/stderr and tool outputs.
"""
import json
import os
import sys

import trio
from codex_harness import Say, run_codex_exec, shell, write_stdin
from wsprobe import reference_server

HERE = os.path.dirname(os.path.abspath(__file__))
CAP = os.path.join(HERE, "captures")

SCENARIOS = {
    # plain command, exits 0
    "echo": dict(script=[shell("echo hello; echo err >&2; exit 3"), Say("done")]),
    # tty command reading stdin, then write_stdin, then a signal death
    "tty": dict(script=[
        shell("read x; echo got:$x", tty=True, yield_time_ms=500),
        write_stdin(None, "abc\n", yield_time_ms=1000),  # session id filled in by the fake model
        shell("kill -TERM $$", yield_time_ms=1000),
        Say("done")]),
    # a command still running when the turn ends
    "longrun": dict(script=[shell("sleep 30", yield_time_ms=300), Say("done")]),
    # the proxy cuts the connection while a command runs (reconnect/resume)
    "cut": dict(script=[shell("for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done",
                              yield_time_ms=6000), Say("done")],
                cut_when=lambda f: '"process/output"' in f.raw and "tick 2" not in f.raw and f.direction == "s>c" and '"seq":2' in f.raw),
    # workspace-write sandbox: shows the `sandbox` member on fs/* and process/start
    "sandboxed": dict(script=[shell("echo hi > out.txt; cat out.txt"), Say("done")],
                      extra_args=["-s", "workspace-write"]),
    # a project with AGENTS.md and a .git directory: shows which fs/* calls read them
    "agents": dict(script=[shell("ls"), Say("done")], cwd="AGENTS"),
    # command that fails to spawn / missing cwd
    "fail": dict(script=[shell("echo x", workdir="/nonexistent/dir"), Say("done")]),
}


async def run_one(name: str, client: str, server: str) -> None:
    sc = dict(SCENARIOS[name])
    if sc.get("cwd") == "AGENTS":
        import subprocess
        import tempfile
        d = tempfile.mkdtemp(prefix="codex-harness-agents-")
        subprocess.run(["git", "init", "-q", d], check=True)
        with open(os.path.join(d, "AGENTS.md"), "w") as f:
            f.write("# Agents\nBe brief.\n")
        sc["cwd"] = d
    async with reference_server(server) as url:
        run = await run_codex_exec(url, sc.pop("script"), codex_version=client, **sc)
    os.makedirs(CAP, exist_ok=True)
    base = os.path.join(CAP, f"{client}-{server}-{name}")
    with open(base + ".jsonl", "w") as f:
        for fr in run.frames:
            f.write(json.dumps({"t": fr.t, "conn": fr.conn, "dir": fr.direction,
                                "frame": fr.json() if fr.json() is not None else fr.raw}) + "\n")
    with open(base + ".txt", "w") as f:
        f.write(f"returncode {run.returncode}\nfinal {run.final_message!r}\n")
        f.write(f"model http {run.http_log}\n")
        f.write("tool outputs:\n" + json.dumps(run.tool_outputs(), indent=1) + "\n")
        f.write("tools offered: " + json.dumps([t.get("name") or t.get("type") for t in (run.model_requests[0].get("tools") if run.model_requests else [])]) + "\n")
        f.write("--- stdout\n" + run.stdout + "\n--- stderr\n" + run.stderr[-6000:] + "\n")
    print(f"== {name} client {client} server {server}: rc={run.returncode} frames={len(run.frames)} -> {base}.jsonl")


async def main() -> None:
    name = sys.argv[1]
    client = sys.argv[2] if len(sys.argv) > 2 else "0.169"
    server = sys.argv[3] if len(sys.argv) > 3 else client
    for n in (SCENARIOS if name == "all" else [name]):
        await run_one(n, client, server)


trio.run(main)
