"""Client A of the "a 500 MiB read never stalls the daemon" test, run as its own process.

    python -m support.big_read URL PATH SIZE

Connects with the trio-exec client library, prints ``sent`` as it sends the `fs/readFile`
request, then ``done <seconds> <ok|wrong>``: whether the reply holds exactly the base64 of
SIZE zero bytes (the test reads a sparse file). In a process of its own, so decoding the 700 MB
reply never competes with the measuring side for a GIL.
"""

from __future__ import annotations

import base64
import sys
import time

import trio

from trio_exec.client import open_client


def expected_base64(size: int) -> str:
    """The base64 of `size` zero bytes, built from one short quantum (no 700 MB encode)."""
    whole, rest = divmod(size, 3)
    return "A" * (4 * whole) + (base64.b64encode(bytes(rest)).decode() if rest else "")


async def main(url: str, path: str, size: int) -> None:
    async with open_client(url, reconnect=None, ping_interval=None) as client:
        started = time.monotonic()
        print("sent", flush=True)
        reply = await client.request("fs/readFile", {"path": path})
        took = time.monotonic() - started
        ok = reply["dataBase64"] == expected_base64(size)
        print(f"done {took:.3f} {'ok' if ok else 'wrong'}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
