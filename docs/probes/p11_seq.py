"""Probe 11: every seq-related answer of `process/read` and of the process notifications, side
by side for the 0.120 reference, trio-exec speaking 0.120, the 0.169 and 0.171 references and
trio-exec speaking 0.169.

    usage: python p11_seq.py [KIND ...]    (kinds: 0.120 te-0.120 0.169 0.171 te-0.169)

Each scenario uses file gates so that every `printf` is its own chunk and its own seq; a
process's dialect comes from its `process/start` (a `file://` cwd makes it 0.169). A row is
one request; a cell is `chunk seqs | nextSeq | exited/exitCode | closed` (and the elapsed time
of long-polls), or the notification sequence `o1 o2 x3 c4` (output, exited, closed).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support import servers
from support.gates import Gates
from support.wsclient import WireClient, session

KINDS = {
    "0.120": (servers.REFERENCE, "0.120"),
    "te-0.120": (servers.TRIO_EXEC, "0.120"),
    "0.169": (servers.REFERENCE_0169, "0.169"),
    "0.171": (servers.REFERENCE_0171, "0.169"),
    "te-0.169": (servers.TRIO_EXEC, "0.169"),
}
SH = "/bin/sh"


def cell(reply: dict[str, Any], elapsed: float | None = None) -> str:
    if "result" not in reply:
        return f"error {reply.get('error')}"
    r = reply["result"]
    seqs = ",".join(str(c["seq"]) for c in r["chunks"])
    text = (f"[{seqs}] next={r['nextSeq']} ex={'T' if r['exited'] else 'F'}"
            f"/{r['exitCode']} cl={'T' if r['closed'] else 'F'}")
    if elapsed is not None:
        text += f" {elapsed:.1f}s"
    return text


def events(client: WireClient, pid: str) -> str:
    letters = {"process/output": "o", "process/exited": "x", "process/closed": "c"}
    return " ".join(f"{letters[n['method']]}{n['params']['seq']}" for n in client.events(pid))


class Probe:
    def __init__(self, client: WireClient, dialect: str, gates: Gates, work: Path) -> None:
        self.client = client
        self.dialect = dialect
        self.gates = gates
        self.cwd = f"file://{work}" if dialect == "0.169" else str(work)
        self.rows: dict[str, str] = {}

    async def start(self, pid: str, script: str) -> None:
        reply = await self.client.start(pid, [SH, "-c", script], cwd=self.cwd)
        assert "result" in reply, reply

    async def read(self, key: str, pid: str, **params: Any) -> None:
        start = trio.current_time()
        reply = await self.client.read(pid, within=30, **params)
        elapsed = trio.current_time() - start if params.get("waitMs") else None
        self.rows[key] = cell(reply, elapsed)

    async def chunks(self, pid: str, *texts: str, gate: str) -> None:
        """Wait for each text in turn, opening gate `<gate><n>` after it."""
        seen = b""
        for n, text in enumerate(texts, start=1):
            seen += text.encode()
            await self.client.wait_output(pid, seen)
            self.gates.open(f"{gate}{n}")

    async def run(self) -> dict[str, str]:
        g = self.gates
        # S1: three 10-byte chunks, exit 3, closed
        await self.start("s1", f"printf 0123456789; {g.wait('s1-1')}; printf abcdefghij; "
                               f"{g.wait('s1-2')}; printf ABCDEFGHIJ; {g.wait('s1-3')}; exit 3")
        await self.chunks("s1", "0123456789", "abcdefghij", "ABCDEFGHIJ", gate="s1-")
        await self.client.wait_process_closed("s1")
        self.rows["S1 notifications"] = events(self.client, "s1")
        for after in (0, 1, 2, 3, 4, 5, 6, 100):
            await self.read(f"S1 closed afterSeq={after}", "s1", afterSeq=after)
        for max_bytes in (0, 10, 20, 29, 30, 1000):
            await self.read(f"S1 closed maxBytes={max_bytes}", "s1", maxBytes=max_bytes)
        await self.read("S1 closed maxBytes=null", "s1", maxBytes=None)
        await self.read("S1 closed afterSeq=2 maxBytes=null waitMs=0 (the client's read)", "s1",
                        afterSeq=2, maxBytes=None, waitMs=0)
        await self.read("S1 closed maxBytes=2^40", "s1", maxBytes=2**40)
        await self.read("S1 closed afterSeq=1 maxBytes=10", "s1", afterSeq=1, maxBytes=10)
        await self.read("S1 closed afterSeq=2 maxBytes=1", "s1", afterSeq=2, maxBytes=1)
        await self.read("S1 closed afterSeq=3 maxBytes=10", "s1", afterSeq=3, maxBytes=10)
        await self.read("S1 closed long-poll afterSeq=0 waitMs=1500", "s1", waitMs=1500)
        for after in (3, 5, 6):
            await self.read(f"S1 closed long-poll afterSeq={after} waitMs=1500", "s1",
                            afterSeq=after, waitMs=1500)

        # S2: running, one chunk
        await self.start("s2", f"printf hi; {g.wait('s2-end')}")
        await self.client.wait_output("s2", b"hi")
        for after in (0, 1, 5):
            await self.read(f"S2 running afterSeq={after}", "s2", afterSeq=after)
        await self.read("S2 running afterSeq=1 maxBytes=10", "s2", afterSeq=1, maxBytes=10)
        await self.read("S2 running long-poll afterSeq=1 waitMs=500", "s2", afterSeq=1,
                        waitMs=500)
        await self.read("S2 running long-poll afterSeq=100 waitMs=500", "s2", afterSeq=100,
                        waitMs=500)
        g.open("s2-end")
        await self.client.wait_process_closed("s2")
        self.rows["S2 notifications"] = events(self.client, "s2")

        # S3: exits while a grandchild holds the pipe, which prints after the exit
        await self.start("s3", f"printf a; {g.wait('s3-1')}; "
                               f"({g.wait('s3-2')}; printf late; {g.wait('s3-3')}) & exit 5")
        await self.client.wait_output("s3", b"a")
        g.open("s3-1")
        await self.client.wait_exited("s3")
        for after in (0, 1, 2, 3, 100):
            await self.read(f"S3 exited-unclosed afterSeq={after}", "s3", afterSeq=after)
        await self.read("S3 exited-unclosed maxBytes=1", "s3", maxBytes=1)
        await self.read("S3 exited-unclosed maxBytes=1000", "s3", maxBytes=1000)
        await self.read("S3 exited-unclosed afterSeq=1 maxBytes=10", "s3", afterSeq=1,
                        maxBytes=10)
        await self.read("S3 exited-unclosed long-poll afterSeq=2 waitMs=1000", "s3",
                        afterSeq=2, waitMs=1000)
        g.open("s3-2")
        await self.client.wait_output("s3", b"alate")
        self.rows["S3 notifications before close"] = events(self.client, "s3")
        for after in (0, 1, 2, 3, 100):
            await self.read(f"S3 late output, unclosed afterSeq={after}", "s3", afterSeq=after)
        g.open("s3-3")
        await self.client.wait_process_closed("s3")
        self.rows["S3 notifications"] = events(self.client, "s3")
        for after in (0, 1, 2, 3, 4, 100):
            await self.read(f"S3 closed afterSeq={after}", "s3", afterSeq=after)
        await self.read("S3 closed maxBytes=1000", "s3", maxBytes=1000)

        # S4: no output at all
        await self.start("s4", "exit 0")
        await self.client.wait_process_closed("s4")
        self.rows["S4 notifications"] = events(self.client, "s4")
        for after in (0, 1, 2, 3):
            await self.read(f"S4 no output afterSeq={after}", "s4", afterSeq=after)

        # S5: beyond the retention window (1 MiB)
        await self.start("s5", "head -c 3000000 /dev/zero")
        await self.client.wait_process_closed("s5", within=60)
        notes = [n["params"] for n in self.client.events("s5")]
        outs = [p["seq"] for p in notes if "chunk" in p]
        ends = " ".join(f"{n['method'][8]}{n['params']['seq']}" for n in self.client.events("s5")
                        if n["method"] != "process/output")
        self.rows["S5 notifications"] = f"o1..o{max(outs)} ({len(outs)} outputs) {ends}"
        for key, params in [("afterSeq=0", {}), ("afterSeq=1 maxBytes=1", {"afterSeq": 1,
                            "maxBytes": 1})]:
            reply = await self.client.read("s5", **params)
            r = reply["result"]
            seqs = [c["seq"] for c in r["chunks"]]
            self.rows[f"S5 retention {key}"] = (
                f"[{seqs[0]}..{seqs[-1]}] next={r['nextSeq']} cl={r['closed']}")
        return self.rows


async def probe(kind: str, dialect: str) -> dict[str, str]:
    handle = servers.launch(kind)
    try:
        with tempfile.TemporaryDirectory(prefix="p11-") as tmp:
            work = Path(tmp)
            async with session(handle.url) as client:
                return await Probe(client, dialect, Gates(work), work).run()
    finally:
        handle.stop()


async def main(names: list[str]) -> None:
    columns = {}
    for name in names:
        columns[name] = await probe(*KINDS[name])
    keys = list(next(iter(columns.values())))
    width = max(len(k) for k in keys)
    print("| " + "request".ljust(width) + " | " + " | ".join(names) + " |")
    print("|" + "-" * (width + 2) + "|" + "|".join("---" for _ in names) + "|")
    for key in keys:
        print("| " + key.ljust(width) + " | " + " | ".join(columns[n].get(key, "")
                                                           for n in names) + " |")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:] or list(KINDS))
