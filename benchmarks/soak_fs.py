"""The filesystem part of a soak worker: `fs/*` calls in a directory of the worker's own,
checked against what the worker knows it put there.

Rule: the worker keeps the expected content of every file it wrote (`files`) and the
directories it made (`dirs`); every read, stat and listing must agree with them. Reading a
missing file is the one error the worker causes on purpose (-32004, named).
"""

from __future__ import annotations

import base64
import os
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.wsclient import RpcError

if TYPE_CHECKING:
    from benchmarks.soak_worker import Dialect, Tally

Json = Any


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class FsWork:
    """Mixed into `soak_worker.Worker`, which provides what is declared here."""

    name: str
    dir: Path
    dialect: Dialect
    tally: Tally
    rng: random.Random
    files: dict[str, bytes]
    dirs: set[str]
    call: Callable[..., Awaitable[Json]]

    async def fs(self) -> None:
        d = self.dialect
        op = self.rng.choice(("write", "write", "read", "read", "meta", "list", "copy", "remove",
                              "mkdir", "missing"))
        name = f"f{self.rng.randint(0, 5)}"
        path = d.path(self.dir / name)
        if op == "write" or (op in ("read", "meta", "copy", "remove") and not self.files):
            data = os.urandom(self.rng.choice((0, 1, 100, 4096, 65536)))
            if await self.call("fs/writeFile", {"path": path, "dataBase64": b64(data)}) is not None:
                self.files[name] = data
            return
        if op == "missing":
            def missing(exc: RpcError) -> str | None:
                return "fs/readFile of a missing file: -32004" if exc.code == -32004 else None
            await self.call("fs/readFile", {"path": d.path(self.dir / "absent")}, missing)
            return
        if op == "list":
            r = await self.call("fs/readDirectory", {"path": d.path(self.dir)})
            if r is not None:
                got = {(e["fileName"], e["isFile"], e["isDirectory"]) for e in r["entries"]}
                want = {(n, True, False) for n in self.files} | {(n, False, True) for n in self.dirs}
                if got != want:
                    self.tally.violation(f"{self.name} fs/readDirectory: {sorted(got)} != {sorted(want)}")
            return
        if op == "mkdir":
            sub = f"d{self.rng.randint(0, 2)}"
            if sub in self.dirs:
                if await self.call("fs/remove", {"path": d.path(self.dir / sub), "recursive": True,
                                                 "force": True}) is not None:
                    self.dirs.discard(sub)
            elif await self.call("fs/createDirectory", {"path": d.path(self.dir / sub / "x"),
                                                        "recursive": True}) is not None:
                self.dirs.add(sub)
            return
        name = self.rng.choice(sorted(self.files))
        path = d.path(self.dir / name)
        if op == "read":
            r = await self.call("fs/readFile", {"path": path})
            if r is not None and base64.b64decode(r["dataBase64"]) != self.files[name]:
                self.tally.violation(f"{self.name} fs/readFile {name}: other bytes than written")
        elif op == "meta":
            r = await self.call("fs/getMetadata", {"path": path})
            if r is not None and not (r["isFile"] and not r["isDirectory"]):
                self.tally.violation(f"{self.name} fs/getMetadata {name}: {r}")
        elif op == "copy":
            dest = f"f{self.rng.randint(0, 5)}"
            if dest != name and await self.call("fs/copy", {
                    "sourcePath": path, "destinationPath": d.path(self.dir / dest),
                    "recursive": False}) is not None:
                self.files[dest] = self.files[name]
        elif op == "remove" and await self.call("fs/remove", {"path": path}) is not None:
            del self.files[name]
