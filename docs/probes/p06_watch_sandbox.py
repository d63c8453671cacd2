"""Probe 06 (0.169 only): fs/watchMissing firing rules; `sandbox` on process/start and fs/*;
sandboxDenied.   usage: python p06_watch_sandbox.py
"""
import base64
import os
import tempfile

import trio
from wsprobe import Conn, dump, reference_server, uri


def sandbox_ctx(work: str) -> dict:
    W = uri(work)
    return {"permissions": {"type": "managed", "file_system": {"type": "restricted", "entries": [
        {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"},
        {"path": {"type": "special", "value": {"kind": "project_roots"}}, "access": "write"},
    ]}, "network": "restricted"}, "cwd": W, "workspaceRoots": [W],
        "windowsSandboxLevel": "disabled", "windowsSandboxProxySettingsMode": "reconcile",
        "useLegacyLandlock": False}


async def main() -> None:
    work = tempfile.mkdtemp(prefix="watchprobe-", dir=os.path.expanduser("~"))
    W = uri(work)
    async with reference_server("0.169") as url:
        async with Conn.open(url) as c:
            await c.handshake()
            os.mkdir(f"{work}/d")
            print("watch d/x:", dump(await c.call("fs/watchMissing", {"watchId": 10, "missing": [f"{W}/d/x"], "present": None})))
            open(f"{work}/d/unrelated", "w").close()
            await trio.sleep(1.0)
            print("after unrelated file in same dir:", dump(c.notes)); c.notes.clear()
            open(f"{work}/d/x", "w").close()
            await trio.sleep(1.0)
            print("after d/x created:", dump(c.notes)); c.notes.clear()
            os.unlink(f"{work}/d/x")
            open(f"{work}/d/x", "w").close()
            await trio.sleep(1.0)
            print("after d/x recreated (one-shot?):", dump(c.notes)); c.notes.clear()
            print("re-register id 10:", dump(await c.call("fs/watchMissing", {"watchId": 10, "missing": [f"{W}/d/y"]})))
            print("present string:", dump(await c.call("fs/watchMissing", {"watchId": 11, "missing": [f"{W}/d/z"], "present": f"{W}/d/x"})))
            os.unlink(f"{work}/d/x")
            await trio.sleep(1.0)
            print("after present d/x removed:", dump(c.notes)); c.notes.clear()
            print("watch already-present path:", dump(await c.call("fs/watchMissing", {"watchId": 12, "missing": [f"{W}/d/unrelated"]})))
            await trio.sleep(0.5)
            print("  notes:", dump(c.notes)); c.notes.clear()
            print("watch deep missing:", dump(await c.call("fs/watchMissing", {"watchId": 13, "missing": [f"{W}/a/b/c"]})))
            os.makedirs(f"{work}/a")
            await trio.sleep(1.0)
            print("after a/ created:", dump(c.notes)); c.notes.clear()
            print("watch empty list:", dump(await c.call("fs/watchMissing", {"watchId": 14, "missing": []})))

            sb = sandbox_ctx(work)
            base = {"env": {"PATH": "/usr/bin:/bin"}, "tty": False, "arg0": None, "cwd": W}
            for pid, cmd in [("ok", f"echo ok > {work}/in.txt && cat {work}/in.txt"),
                             ("deny", "echo no > /etc/trio-exec-probe-denied; echo rc=$?"),
                             ("deny-exit", "echo no > /etc/trio-exec-probe-denied")]:
                r = await c.call("process/start", dict(base, processId=pid, argv=["/bin/bash", "-c", cmd], sandbox=sb))
                print(f"sandboxed start {pid}:", dump(r))
                await c.wait_note(lambda n: n.get("method") == "process/closed" and n["params"]["processId"] == pid, 5)
                print("   ", dump([n["params"] if n["method"] != "process/output" else base64.b64decode(n["params"]["chunk"]).decode() for n in c.notes if n.get("params", {}).get("processId") == pid]))
                print("    read:", dump(await c.call("process/read", {"processId": pid, "afterSeq": 99})))
            print("fs read with sandbox:", dump(await c.call("fs/readFile", {"path": f"{W}/in.txt", "sandbox": sb})))
            print("fs write inside with sandbox:", dump(await c.call("fs/writeFile", {"path": f"{W}/w.txt", "dataBase64": "", "sandbox": sb})))
            print("fs write outside with sandbox:", dump(await c.call("fs/writeFile", {"path": uri("/etc/trio-exec-probe"), "dataBase64": "", "sandbox": sb})))
            print("fs write outside with sandboxPolicy (0.120 member):", dump(await c.call("fs/writeFile", {"path": uri(f"{work}/../trio-exec-probe-x"), "dataBase64": "", "sandboxPolicy": {"type": "read-only"}})))
            os.path.exists(os.path.expanduser("~/trio-exec-probe-x")) and os.unlink(os.path.expanduser("~/trio-exec-probe-x"))
            ro = {**sb, "permissions": {"type": "managed", "file_system": {"type": "restricted", "entries": [
                {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"}]}, "network": "restricted"}}
            print("fs write with read-only sandbox:", dump(await c.call("fs/writeFile", {"path": f"{W}/w2.txt", "dataBase64": "", "sandbox": ro})))
            print("fs mkdir with read-only sandbox:", dump(await c.call("fs/createDirectory", {"path": f"{W}/dd", "sandbox": ro})))
            print("sandbox perms disabled:", dump(await c.call("fs/writeFile", {"path": f"{W}/w3.txt", "dataBase64": "", "sandbox": {**sb, "permissions": {"type": "disabled"}}})))
            print("sandbox perms bogus:", dump(await c.call("fs/writeFile", {"path": f"{W}/w3.txt", "dataBase64": "", "sandbox": {**sb, "permissions": {"type": "bogus"}}})))
            print("sandbox native cwd:", dump(await c.call("fs/writeFile", {"path": f"{W}/w3.txt", "dataBase64": "", "sandbox": {**sb, "cwd": work}})))


trio.run(main)
