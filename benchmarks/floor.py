"""The floor of the fixed stack: what trio + trio-websocket cost before trio-exec does anything.

Five servers in the same run, measured by the same client (`wsclient`, TCP_QUICKACK on):

* **floor**: the smallest JSON-RPC server the stack allows: `trio_websocket.serve_websocket`
  with trio-exec's settings (256 KiB reads, 64 MiB messages, the C unmasking of
  `trio_exec.ws.masking`); every request is parsed with orjson and answered at once (`{}`, a
  `sessionId` for `initialize`): no dispatch, no session, no file touched;
* **floor+io**: the same plus the least real work of the two file methods, done off the event
  loop as trio-exec does it (base64 decode, then the write or the `stat` in a worker thread);
* **wsproto+io**: floor+io without trio-websocket: one task per connection reads frames with
  wsproto and answers them itself (what dropping trio-websocket from the hot path would buy);
* **trio-exec**, the daemon;
* **ref+qa**, the reference (codex-cli 0.120.0 `exec-server`).

Figures: the upgrade (TCP connect to the `101` response), connect + `initialize`, the round
trip of `fs/getMetadata` and of a 1 MiB `fs/writeFile`. Where a floor is already slower than
the reference, no server built that way can reach the reference on that figure.

The floor of every per-request figure of `./scripts/bench` (PTY echo and resume → caught up
too, which need a child process) is the exec floor, `floor_exec.py`: the bench runs it as its
`floor+qa` column, through the same scenario code as every server.

    .venv/bin/python -m benchmarks.floor [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pybase64
import trio

import trio_exec.ws.masking
from benchmarks.servers import REFERENCE, TRIO_EXEC, Server, reference_binary
from benchmarks.wsclient import Client

UPGRADES = 200
ROUND_TRIPS = 1000
WRITES = 20
MiB = 1024 * 1024


# --- the floor server ---------------------------------------------------------------------------


async def _reply(value: dict[str, Any], with_io: bool) -> bytes | None:
    """The answer to one message (None for a notification). `with_io` adds the least real
    work of two fs methods: `fs/writeFile` decodes its base64 and writes the file in a worker
    thread (trio-exec's own `blocking.write_file`), `fs/getMetadata` stats in a worker thread;
    the rule every trio-exec file operation follows."""
    from trio_exec.fs.blocking import write_file

    if "id" not in value:
        return None
    method, params = value.get("method"), value.get("params") or {}
    result: dict[str, object] = {}
    if method == "initialize":
        result = {"sessionId": "floor"}
    elif with_io and method == "fs/writeFile":
        data = pybase64.b64decode(params["dataBase64"], validate=True)
        await trio.to_thread.run_sync(write_file, params["path"], data)
    elif with_io and method == "fs/getMetadata":
        info = await trio.to_thread.run_sync(os.stat, params["path"])
        result = {"isDirectory": False, "isFile": True, "modifiedAtMs": info.st_mtime_ns}
    return orjson.dumps({"id": value["id"], "result": result})


async def _trio_websocket_connection(request: object, with_io: bool) -> None:
    import trio_websocket

    assert isinstance(request, trio_websocket.WebSocketRequest)
    ws = await request.accept()
    while True:
        try:
            message = await ws.get_message()
        except trio_websocket.ConnectionClosed:
            return
        reply = await _reply(orjson.loads(message), with_io)
        if reply is not None:
            await ws.send_message(reply.decode())


async def _wsproto_connection(stream: trio.SocketStream, with_io: bool) -> None:
    """No trio-websocket: one task reads frames with wsproto and answers them itself."""
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await _wsproto_frames(stream, with_io)


async def _wsproto_frames(stream: trio.SocketStream, with_io: bool) -> None:
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

    ws = WSConnection(ConnectionType.SERVER)
    parts: list[str] = []
    while data := await stream.receive_some(256 * 1024):
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, Request):
                await stream.send_all(ws.send(AcceptConnection()))
            elif isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    reply = await _reply(orjson.loads("".join(parts)), with_io)
                    parts.clear()
                    if reply is not None:
                        await stream.send_all(ws.send(TextMessage(data=reply.decode())))
            elif isinstance(event, Ping):
                await stream.send_all(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                await stream.send_all(ws.send(event.response()))
                return


async def _serve_floor(kind: str) -> None:
    import trio_websocket


    trio_exec.ws.masking.install()
    with_io = kind.endswith("+io")
    async with trio.open_nursery() as nursery:
        if kind.startswith("wsproto"):
            listeners = await nursery.start(functools.partial(
                trio.serve_tcp, functools.partial(_wsproto_connection, with_io=with_io), 0,
                host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
        else:
            server = await nursery.start(
                functools.partial(
                    trio_websocket.serve_websocket,
                    functools.partial(_trio_websocket_connection, with_io=with_io),
                    "127.0.0.1",
                    0,
                    ssl_context=None,
                    message_queue_size=16,
                    max_message_size=64 * MiB,
                    receive_buffer_size=256 * 1024,
                )
            )
            port = server.port
        print(f"ws://127.0.0.1:{port}", flush=True)


class FloorServer:
    """The floor server as a child process (same interface as `Server` for the client)."""

    def __init__(self, kind: str) -> None:
        self.cwd = Path(tempfile.mkdtemp(prefix="bench-floor-"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.floor", "serve", kind],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ws://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"floor server printed {line!r}")
        self.host = "127.0.0.1"
        self.port = int(line.rsplit(":", 1)[1])

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


# --- measurements ---------------------------------------------------------------------------------


async def _timed(n: int, once: Callable[[], Awaitable[None]]) -> float:
    """Median of `n` runs of `once`, in ms (after 5 warm-up runs)."""
    for _ in range(5):
        await once()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await once()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e3


async def measure(server: Server | FloorServer) -> dict[str, float]:
    out: dict[str, float] = {}
    async with trio.open_nursery() as nursery:

        async def upgrade() -> None:
            client = await Client.connect(nursery, server.host, server.port, quickack=True)
            await client.abort()

        async def connect_initialize() -> None:
            client = await Client.connect(nursery, server.host, server.port, quickack=True)
            await client.call("initialize", {"clientName": "bench"})
            await client.abort()

        out["upgrade"] = await _timed(UPGRADES, upgrade)
        out["connect_init"] = await _timed(UPGRADES, connect_initialize)

        client = await Client.connect(nursery, server.host, server.port, quickack=True)
        await client.handshake()
        target = server.cwd / "floor-meta"
        target.write_bytes(b"x")
        meta = {"path": str(target)}

        async def metadata() -> None:
            await client.call("fs/getMetadata", meta)

        out["metadata"] = await _timed(ROUND_TRIPS, metadata)
        write = {
            "path": str(server.cwd / "floor-write"),
            "dataBase64": pybase64.b64encode(os.urandom(MiB)).decode(),
        }

        async def write_file() -> None:
            await client.call("fs/writeFile", write)

        out["write1"] = await _timed(WRITES, write_file)
        await client.abort()
        nursery.cancel_scope.cancel()
    return out


FIGURES = [
    ("upgrade", "TCP connect + upgrade (101)"),
    ("connect_init", "connect + initialize"),
    ("metadata", "fs/getMetadata round trip"),
    ("write1", "fs/writeFile 1 MiB round trip"),
]


FLOORS = ("floor", "floor+io", "wsproto+io")


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        trio.run(_serve_floor, sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not reference_binary().exists():
        sys.exit("reference not installed: run ./scripts/install-reference")
    kinds = [*FLOORS, TRIO_EXEC, REFERENCE]
    runs: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeat):
        for kind in kinds:
            server: Server | FloorServer = FloorServer(kind) if kind in FLOORS else Server(kind)
            try:
                runs[kind].append(trio.run(measure, server))
            finally:
                server.stop()
            print(f"run {repeat + 1} {kind:10s} " + "  ".join(
                f"{key}={value:.3f}" for key, value in runs[kind][-1].items()), flush=True)
    print(f"\nmedians over {args.repeat} runs, ms (lower is better); "
          "in brackets: the ratio to ref+qa (the reference)")
    names = [*FLOORS, TRIO_EXEC, "ref+qa"]
    print(f"{'figure':30s}" + "".join(f"{name:>18s}" for name in names))
    for key, title in FIGURES:
        ref = statistics.median(r[key] for r in runs[REFERENCE])
        cells = []
        for kind in kinds:
            value = statistics.median(r[key] for r in runs[kind])
            cells.append(f"{value:.3f} ({value / ref:.2f})")
        print(f"{title:30s}" + "".join(f"{cell:>18s}" for cell in cells))


if __name__ == "__main__":
    main()
