"""Probe 07: envelope/transport behaviour.  usage: python p07_transport.py 0.169|0.120"""
import sys

import trio
from trio_websocket import open_websocket_url
from wsprobe import Conn, dump, reference_server

VERSION = sys.argv[1] if len(sys.argv) > 1 else "0.169"


async def main() -> None:
    async with reference_server(VERSION) as url:
        async with Conn.open(url) as c:
            await c.send_raw("{not json")
            await trio.sleep(0.3)
            print("malformed ->", dump(c.notes)); c.notes.clear()
            await c.handshake()
            print("jsonrpc 2.0 request ->", dump(await c.call("environment/info", {}))[:80])
            await c.notify("foo/bar", {})
            await trio.sleep(0.3)
            print("after unknown notification: closed =", c.closed.is_set())
        async with Conn.open(url) as c:
            await c.handshake()
            await c.send_raw({"id": 99, "result": {}})
            await trio.sleep(0.3)
            print("after client response: closed =", c.closed.is_set())
        try:
            async with open_websocket_url(url, extensions=None) as ws:  # baseline
                pass
            print("plain connect ok")
        except Exception as e:  # noqa: BLE001
            print("plain connect failed", e)
        # raw upgrade offering permessage-deflate
        host, port = url[5:].split(":")
        s = await trio.open_tcp_stream(host, int(port))
        await s.send_all(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                         b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
        with trio.move_on_after(2):
            print("deflate offer ->", (await s.receive_some(4096))[:300])


trio.run(main)
