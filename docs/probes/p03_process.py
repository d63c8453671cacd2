"""Probe 03: process/* in both dialects against one reference server.

usage: python p03_process.py 0.169|0.120
"""
import base64
import os
import sys
import tempfile

import trio
from wsprobe import Conn, dump, reference_server, uri

VERSION = sys.argv[1] if len(sys.argv) > 1 else "0.169"
B64 = lambda s: base64.b64encode(s.encode()).decode()  # noqa: E731


async def main() -> None:
    work = tempfile.mkdtemp(prefix="procprobe-")
    W = uri(work)
    env = {"PATH": "/usr/bin:/bin", "FOO": "bar"}
    async with reference_server(VERSION, env={"SERVER_ONLY_VAR": "from-server"}) as url:
        async with Conn.open(url) as c:
            await c.handshake()

            async def run(label, params, *, wait=3.0, show_output=True):
                r = await c.call("process/start", params)
                print(f"[{label}] start -> {dump(r)}")
                if "error" in r:
                    return r
                pid = params["processId"]
                n = await c.wait_note(lambda n: n.get("method") == "process/closed"
                                      and n["params"]["processId"] == pid, timeout=wait)
                out = b"".join(base64.b64decode(x["params"]["chunk"]) for x in c.notes
                               if x.get("method") == "process/output" and x["params"]["processId"] == pid)
                ex = [x["params"] for x in c.notes if x.get("method") == "process/exited"
                      and x["params"]["processId"] == pid]
                print(f"    exited={dump(ex)} closed={n is not None}")
                if show_output:
                    print(f"    output={out[:1500]!r}")
                return r

            base = dict(argv=["/usr/bin/env"], env=env, tty=False, arg0=None)
            await run("0.120 shape: plain cwd, no envPolicy", dict(base, processId="a1", cwd=work))
            await run("0.169 shape: uri cwd, no envPolicy", dict(base, processId="a2", cwd=W))
            await run("uri cwd, envPolicy null", dict(base, processId="a3", cwd=W, envPolicy=None))
            pol = {"inherit": "all", "ignoreDefaultExcludes": True, "exclude": [], "set": {}, "includeOnly": []}
            await run("envPolicy inherit all", dict(base, processId="a4", cwd=W, envPolicy=pol))
            await run("envPolicy inherit none", dict(base, processId="a5", cwd=W, envPolicy=dict(pol, inherit="none")))
            await run("envPolicy inherit core", dict(base, processId="a6", cwd=W, envPolicy=dict(pol, inherit="core")))
            await run("envPolicy all + set + exclude + env overrides",
                      dict(base, processId="a7", cwd=W, env={"FOO": "from-env", "SET1": "env"},
                           envPolicy=dict(pol, set={"SET1": "set", "SET2": "set"}, exclude=["SERVER_ONLY_*", "HOME"])))
            await run("envPolicy includeOnly", dict(base, processId="a8", cwd=W, envPolicy=dict(pol, includeOnly=["PATH", "FOO"])))
            await run("envPolicy default excludes (ignoreDefaultExcludes false)",
                      dict(base, processId="a9", cwd=W, env={"MY_SECRET_TOKEN": "x", "OK": "1"},
                           envPolicy=dict(pol, ignoreDefaultExcludes=False)))
            await run("envPolicy {}", dict(base, processId="a10", cwd=W, envPolicy={}))
            await run("envPolicy bogus inherit", dict(base, processId="a11", cwd=W, envPolicy=dict(pol, inherit="bogus")))
            await run("metadata + sandbox null + pipeStdin false", dict(base, processId="a12", cwd=W,
                      metadata={"threadId": "t", "toolCallId": "c"}, sandbox=None, pipeStdin=False,
                      enforceManagedNetwork=False, managedNetwork=None), show_output=False)
            await run("metadata bogus shape", dict(base, processId="a13", cwd=W, metadata="x"), show_output=False)
            await run("metadata extra members", dict(base, processId="a14", cwd=W, metadata={"a": 1}), show_output=False)
            await run("sandboxPolicy member (0.120 fs style) on start", dict(base, processId="a15", cwd=W,
                      sandboxPolicy={"type": "bogus"}), show_output=False)
            await run("sandbox bogus", dict(base, processId="a16", cwd=W, sandbox={"type": "bogus"}), show_output=False)
            await run("enforceManagedNetwork true", dict(base, processId="a17", cwd=W, enforceManagedNetwork=True), show_output=False)
            await run("missing env", {"processId": "a18", "argv": ["/bin/true"], "cwd": W, "tty": False}, show_output=False)
            await run("missing arg0", {"processId": "a19", "argv": ["/bin/true"], "cwd": W, "tty": False, "env": {}}, show_output=False)
            await run("relative cwd", dict(base, processId="a20", cwd="."), show_output=False)
            await run("cwd missing dir uri", dict(base, processId="a21", cwd=uri("/nonexistent")), show_output=False)
            await run("argv empty", dict(base, processId="a22", cwd=W, argv=[]), show_output=False)
            await run("program missing", dict(base, processId="a23", cwd=W, argv=["/no/such"]), show_output=False)
            await run("duplicate id", dict(base, processId="a22b", cwd=W, argv=["/bin/sleep", "5"]), wait=0.2, show_output=False)
            await run("duplicate id again", dict(base, processId="a22b", cwd=W, argv=["/bin/true"]), wait=0.2, show_output=False)
            # exit codes of signal deaths
            for sig, label in [("TERM", "pipe"), ("KILL", "pipe"), ("SEGV", "pipe")]:
                await run(f"kill -{sig} self ({label})", dict(base, processId=f"sig{sig}", cwd=W,
                          argv=["/bin/bash", "-c", f"kill -{sig} $$"]), show_output=False)
            await run("kill -TERM self (tty)", dict(base, processId="sigTERMtty", cwd=W, tty=True,
                      argv=["/bin/bash", "-c", "kill -TERM $$"]), show_output=False)
            await run("exit 300", dict(base, processId="x300", cwd=W, argv=["/bin/bash", "-c", "exit 300"]), show_output=False)
            # terminate
            await run("sleeper", dict(base, processId="sl", cwd=W, argv=["/bin/sleep", "30"]), wait=0.3, show_output=False)
            print("terminate:", dump(await c.call("process/terminate", {"processId": "sl"})))
            await c.wait_note(lambda n: n.get("method") == "process/closed" and n["params"]["processId"] == "sl", 3)
            print("  exited:", dump([x for x in c.notes if x.get("method") == "process/exited" and x["params"]["processId"] == "sl"]))
            await run("sleeper tty", dict(base, processId="slt", cwd=W, tty=True, argv=["/bin/sleep", "30"]), wait=0.3, show_output=False)
            print("terminate tty:", dump(await c.call("process/terminate", {"processId": "slt"})))
            await c.wait_note(lambda n: n.get("method") == "process/closed" and n["params"]["processId"] == "slt", 3)
            print("  exited:", dump([x for x in c.notes if x.get("method") == "process/exited" and x["params"]["processId"] == "slt"]))
            # signal
            await run("trap INT", dict(base, processId="si", cwd=W, argv=["/bin/bash", "-c", "trap 'echo got INT; exit 7' INT; echo ready; sleep 10 & wait"]), wait=0.5, show_output=False)
            print("signal interrupt:", dump(await c.call("process/signal", {"processId": "si", "signal": "interrupt"})))
            await c.wait_note(lambda n: n.get("method") == "process/closed" and n["params"]["processId"] == "si", 3)
            print("  notes:", dump([x for x in c.notes if x.get("params", {}).get("processId") == "si"]))
            print("signal terminate:", dump(await c.call("process/signal", {"processId": "si", "signal": "terminate"})))
            print("signal unknown pid:", dump(await c.call("process/signal", {"processId": "nope", "signal": "interrupt"})))
            # write / writeId
            await run("cat pipe stdin", dict(base, processId="cat", cwd=W, argv=["/bin/cat"], pipeStdin=True), wait=0.3, show_output=False)
            print("write no writeId:", dump(await c.call("process/write", {"processId": "cat", "chunk": B64("one\n")})))
            print("write writeId 1:", dump(await c.call("process/write", {"processId": "cat", "chunk": B64("two\n"), "writeId": "1"})))
            print("write writeId 1 again:", dump(await c.call("process/write", {"processId": "cat", "chunk": B64("dup\n"), "writeId": "1"})))
            print("write writeId 2:", dump(await c.call("process/write", {"processId": "cat", "chunk": B64("three\n"), "writeId": "2"})))
            print("write writeId int:", dump(await c.call("process/write", {"processId": "cat", "chunk": B64("x\n"), "writeId": 3})))
            await trio.sleep(0.3)
            print("  output:", [base64.b64decode(x["params"]["chunk"]) for x in c.notes if x.get("method") == "process/output" and x["params"]["processId"] == "cat"])
            print("write unknown:", dump(await c.call("process/write", {"processId": "nope", "chunk": "", "writeId": "9"})))
            await run("cat no pipeStdin", dict(base, processId="cat2", cwd=W, argv=["/bin/cat"]), wait=0.5, show_output=False)
            print("write non-pipe:", dump(await c.call("process/write", {"processId": "cat2", "chunk": B64("x"), "writeId": "1"})))
            print("terminate cat:", dump(await c.call("process/terminate", {"processId": "cat"})))
            # read
            await run("out for read", dict(base, processId="rd", cwd=W, argv=["/bin/bash", "-c", "echo a; echo b >&2; exit 4"]), show_output=False)
            print("read 0.120 style:", dump(await c.call("process/read", {"processId": "rd", "afterSeq": None, "maxBytes": None, "waitMs": 0})))
            print("read minimal:", dump(await c.call("process/read", {"processId": "rd"})))
            print("read after 2:", dump(await c.call("process/read", {"processId": "rd", "afterSeq": 2})))
            import time
            t = time.monotonic()
            r = await c.call("process/read", {"processId": "rd", "afterSeq": 100, "waitMs": 700})
            print(f"read closed long-poll (took {time.monotonic()-t:.3f}s):", dump(r))
            print("read unknown:", dump(await c.call("process/read", {"processId": "nope"})))


trio.run(main)
