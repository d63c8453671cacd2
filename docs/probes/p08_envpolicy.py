"""Probe 08 (0.169): envPolicy order of operations.  usage: python p08_envpolicy.py"""
import base64
import tempfile

import trio
from wsprobe import Conn, reference_server, uri

SERVER_ENV = {"SRV_API_KEY": "k", "SRV_TOKEN": "t", "SRV_SECRET": "s", "SRV_PLAIN": "p",
              "SRV_PASSWORD": "pw", "USER": "u", "TMPDIR": "/tmp", "LOGNAME": "l"}
POL = {"inherit": "all", "ignoreDefaultExcludes": True, "exclude": [], "set": {}, "includeOnly": []}
CASES = [
    ("inherit all, default excludes ON", dict(POL, ignoreDefaultExcludes=False), {}),
    ("inherit all, default excludes OFF", POL, {}),
    ("inherit core", dict(POL, inherit="core"), {}),
    ("includeOnly SRV_PLAIN; env adds EXTRA", dict(POL, includeOnly=["SRV_PLAIN"]), {"EXTRA": "e"}),
    ("includeOnly SRV_*; set S1", dict(POL, includeOnly=["SRV_*"], set={"S1": "x"}), {}),
    ("exclude SRV_PLAIN but env sets it", dict(POL, exclude=["SRV_PLAIN"]), {"SRV_PLAIN": "from-env"}),
    ("exclude SRV_PLAIN but set sets it", dict(POL, exclude=["SRV_PLAIN"], set={"SRV_PLAIN": "from-set"}), {}),
    ("exclude case-insensitive? srv_plain", dict(POL, exclude=["srv_plain"]), {}),
]


async def main() -> None:
    W = uri(tempfile.mkdtemp())
    async with reference_server("0.169", env=SERVER_ENV) as url:
        async with Conn.open(url) as c:
            await c.handshake()
            for i, (label, pol, env) in enumerate(CASES):
                pid = f"e{i}"
                await c.call("process/start", {"processId": pid, "argv": ["/usr/bin/env"], "cwd": W, "env": env,
                                               "tty": False, "envPolicy": pol})
                await c.wait_note(lambda n: n.get("method") == "process/closed" and n["params"]["processId"] == pid)
                out = b"".join(base64.b64decode(n["params"]["chunk"]) for n in c.notes
                               if n.get("method") == "process/output" and n["params"]["processId"] == pid).decode()
                names = sorted(line.split("=", 1)[0] for line in out.splitlines())
                interesting = [n for n in names if n.startswith(("SRV_", "S1", "EXTRA", "HOME", "PATH", "LANG", "SHELL", "USER", "TMPDIR", "LOGNAME"))]
                vals = {l.split("=", 1)[0]: l.split("=", 1)[1] for l in out.splitlines() if l.startswith("SRV_PLAIN=")}
                print(f"[{label}] n={len(names)} {interesting} {vals}")


trio.run(main)
