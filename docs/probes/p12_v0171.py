"""Probe 12: what the 0.169 and 0.171 exec-servers answer where trio-exec differed when 0.171
came out: `environmentInfo.capabilities`, `environmentConfig/read` with empty path lists,
`fs/walk` without `pruneHiddenDirectories`, and `sandbox` contexts missing a member.

    usage: python p12_v0171.py [KIND ...]    (kinds: 0.169 0.171 te)

Prints one line per request and server: the result (abridged) or the error.
"""
from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson
import trio

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support import servers
from support.wsclient import WireClient, session

KINDS = {"0.169": servers.REFERENCE_0169, "0.171": servers.REFERENCE_0171,
         "te": servers.TRIO_EXEC}


def uri(path: Path | str) -> str:
    return "file://" + str(path)


def context(work: Path) -> dict[str, Any]:
    """The `sandbox` the codex 0.169 client sends in workspace-write mode (abridged)."""
    return {
        "permissions": {
            "type": "managed",
            "file_system": {"type": "restricted", "entries": [
                {"path": {"type": "special", "value": {"kind": "root"}}, "access": "read"},
                {"path": {"type": "special", "value": {"kind": "project_roots"}},
                 "access": "write"}]},
            "network": "restricted"},
        "cwd": uri(work), "workspaceRoots": [uri(work)],
        "windowsSandboxLevel": "disabled", "windowsSandboxProxySettingsMode": "reconcile",
        "useLegacyLandlock": False,
    }


def without(ctx: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(ctx)
    *parents, last = path.split(".")
    node = out
    for name in parents:
        node = node[name]
    del node[last]
    return out


def show(reply: dict[str, Any]) -> str:
    if "error" in reply:
        return f"error {reply['error']['code']} {reply['error']['message']}"
    return "ok " + orjson.dumps(reply["result"]).decode()[:160]


async def call(client: WireClient, method: str, params: Any) -> str:
    return show(await client.request(method, params, id=client.next_id()))


async def probe(kind: str, work: Path) -> dict[str, str]:
    rows: dict[str, str] = {}
    handle = servers.launch(kind)
    try:
        async with session(handle.url) as client:
            info = (await client.request("environment/info", None, id=client.next_id()))
            caps = info["result"]["capabilities"]
            rows["capabilities (order)"] = " ".join(
                f"{k}={'T' if v else 'F'}" for k, v in caps.items())
            for name, cfg, req in [("both empty", [], []), ("config only", [["x"]], []),
                                   ("requirements only", [], [["x"]]),
                                   ("[[]] and []", [[]], [])]:
                rows[f"environmentConfig/read {name}"] = await call(
                    client, "environmentConfig/read",
                    {"cwd": uri(work), "configPaths": cfg, "requirementsPaths": req})
            options = {"maxDepth": 4, "maxDirectories": 100, "maxEntries": 100,
                       "followDirectorySymlinks": False}
            for name, extra in [("absent", {}), ("null", {"pruneHiddenDirectories": None}),
                                ("true", {"pruneHiddenDirectories": True}),
                                ("false", {"pruneHiddenDirectories": False})]:
                rows[f"fs/walk pruneHiddenDirectories {name}"] = await call(
                    client, "fs/walk", {"path": uri(work / "tree"),
                                        "options": {**options, **extra}, "sandbox": None})
            for member in ("maxDepth", "maxDirectories", "maxEntries",
                           "followDirectorySymlinks"):
                rows[f"fs/walk without {member}"] = await call(client, "fs/walk", {
                    "path": uri(work / "tree"),
                    "options": {k: v for k, v in options.items() if k != member},
                    "sandbox": None})
            base = context(work)
            cases = [("complete", base)] + [
                (f"without {m}", without(base, m)) for m in (
                    "permissions.file_system", "permissions.network", "windowsSandboxLevel",
                    "windowsSandboxProxySettingsMode", "useLegacyLandlock", "cwd",
                    "workspaceRoots", "permissions.file_system.entries")]
            disabled = {"permissions": {"type": "disabled"}, "windowsSandboxLevel": "disabled"}
            cases += [("disabled", disabled),
                      ("disabled without windowsSandboxLevel", {"permissions":
                                                               {"type": "disabled"}}),
                      ("external without network", {"permissions": {"type": "external"},
                                                     "windowsSandboxLevel": "disabled"})]
            for n, (name, ctx) in enumerate(cases):
                rows[f"sandbox {name}: fs/getMetadata"] = await call(
                    client, "fs/getMetadata", {"path": uri(work / "tree"), "sandbox": ctx})
                rows[f"sandbox {name}: process/start"] = await call(client, "process/start", {
                    "processId": f"p{n}", "argv": ["/bin/true"], "cwd": uri(work), "env": {},
                    "tty": False, "sandbox": ctx})
    finally:
        handle.stop()
    return rows


async def main(names: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="p12-") as tmp:
        work = Path(tmp)
        for sub in ("tree/.hidden/inner", "tree/shown"):
            (work / sub).mkdir(parents=True)
        (work / "tree/.hidden/inner/f").write_text("x")
        columns = {name: await probe(KINDS[name], work) for name in names}
    for key in next(iter(columns.values())):
        print(f"## {key}")
        for name in names:
            print(f"  {name:6} {columns[name].get(key, '')}")


if __name__ == "__main__":
    trio.run(main, sys.argv[1:] or list(KINDS))
