"""Probe 05: detached-session TTL and error codes of initialize.  usage: python p05_ttl.py 0.169|0.120 [max_wait_seconds=70]
Detaches a session that owns `sleep 600`, then resumes at increasing delays (each resume
re-attaches and detaches again, restarting the timer), and watches the child pid.
"""
import os
import sys
import tempfile
import time

import trio
from wsprobe import Conn, dump, reference_server, uri

VERSION = sys.argv[1] if len(sys.argv) > 1 else "0.169"
MAX_WAIT = float(sys.argv[2]) if len(sys.argv) > 2 else 70.0


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


async def main() -> None:
    work = tempfile.mkdtemp(prefix="ttlprobe-")
    cwd = uri(work) if VERSION == "0.169" else work
    async with reference_server(VERSION) as url:
        async with Conn.open(url) as c:
            print("unknown session:", dump(await c.call("initialize", {"clientName": "p", "resumeSessionId": "00000000-0000-4000-8000-000000000000"})))
            print("empty session id:", dump(await c.call("initialize", {"clientName": "p", "resumeSessionId": ""})))
            print("initialize extra members:", dump(await c.call("initialize", {"clientName": "p", "capabilities": {"x": 1}, "protocolVersion": "2"}))[:100])
        async with Conn.open(url) as c:
            print("initialize without clientName:", dump(await c.call("initialize", {})))
            print("initialized before success -> next call:", end=" ")
            await c.notify("initialized", {})
            print(dump(await c.call("initialize", {"clientName": "p"}, timeout=2))[:80])
        async with Conn.open(url) as c:
            r = await c.handshake()
            sid = r["result"]["sessionId"]
            pidfile = f"{work}/pid"
            await c.call("process/start", {"processId": "s", "argv": ["/bin/bash", "-c", f"echo $$ > {pidfile}; exec sleep 600"],
                                           "cwd": cwd, "env": {"PATH": "/usr/bin:/bin"}, "tty": False, "arg0": None})
            await trio.sleep(0.3)
        t0 = time.monotonic()
        pid = int(open(pidfile).read())
        while alive(pid) and time.monotonic() - t0 < MAX_WAIT:
            await trio.sleep(0.25)
        print(f"detached child alive for {time.monotonic()-t0:.2f}s (alive now: {alive(pid)})")
        async with Conn.open(url) as c:
            print("resume after expiry:", dump(await c.call("initialize", {"clientName": "p", "resumeSessionId": sid})))


trio.run(main)
