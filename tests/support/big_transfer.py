"""Client A of the "a large transfer never stalls the daemon" tests, run as its own process.

    python -m support.big_transfer read URL PATH SIZE
    python -m support.big_transfer write URL PATH SIZE

Connects with the trio-exec client library, prints ``sent`` as it sends the request, then
``done <seconds> <ok|wrong>``. `read` reads PATH (the test's sparse file of SIZE zero bytes)
and checks the reply holds exactly their base64; `write` writes SIZE zero bytes to PATH in
one `fs/writeFile` (the test checks the file). In a process of its own, so building or decoding
the large message never competes with the measuring side for a GIL.
"""

from __future__ import annotations

import base64
import sys
import time

import trio

from trio_exec.client import open_client


def zeros_base64(size: int) -> str:
    """The base64 of `size` zero bytes, built from one short quantum (no large encode)."""
    whole, rest = divmod(size, 3)
    return "A" * (4 * whole) + (base64.b64encode(bytes(rest)).decode() if rest else "")


async def main(mode: str, url: str, path: str, size: int) -> None:
    async with open_client(url, reconnect=None, ping_interval=None) as client:
        payload = zeros_base64(size)
        started = time.monotonic()
        print("sent", flush=True)
        if mode == "read":
            reply = await client.request("fs/readFile", {"path": path})
            ok = reply["dataBase64"] == payload
        else:
            ok = await client.request("fs/writeFile", {"path": path, "dataBase64": payload}) == {}
        took = time.monotonic() - started
        print(f"done {took:.3f} {'ok' if ok else 'wrong'}", flush=True)


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
