"""Probe 01: handshake, environment info, method table of a reference exec-server.

usage: python p01_basics.py 0.169|0.120
"""
import sys

import trio
from wsprobe import Conn, dump, reference_server

VERSION = sys.argv[1] if len(sys.argv) > 1 else "0.169"

METHODS = [
    "process/start", "process/read", "process/write", "process/terminate",
    "process/signal", "process/resize", "process/list", "process/kill",
    "environment/info", "environmentConfig/read", "environment/config", "environmentConfig/write",
    "fs/readFile", "fs/writeFile", "fs/createDirectory", "fs/getMetadata", "fs/readDirectory",
    "fs/remove", "fs/copy", "fs/canonicalize", "fs/open", "fs/readBlock", "fs/close",
    "fs/walk", "fs/watch", "fs/unwatch", "fs/watchMissing", "fs/unwatchMissing", "fs/rename",
    "http/request", "shutdown", "ping", "bogus/x",
]


async def main() -> None:
    async with reference_server(VERSION) as url:
        print("url", url)
        async with Conn.open(url) as c:
            print("pre-init environment/info:", dump(await c.call("environment/info", {})))
            print("pre-init fs/getMetadata:", dump(await c.call("fs/getMetadata", {"path": "file:///"})))
            print("pre-init process/read:", dump(await c.call("process/read", {"processId": "x"})))
            r = await c.call("initialize", {"clientName": "probe"})
            print("initialize:", dump(r))
            print("before initialized fs:", dump(await c.call("fs/getMetadata", {"path": "file:///"})))
            await c.notify("initialized", {})
            for m in METHODS:
                print(f"{m} {{}}:", dump(await c.call(m, {})))
            print("notes:", c.notes)


trio.run(main)
