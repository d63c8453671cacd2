"""Small black-box probing kit for exec-server dialects.

Start a reference exec-server (0.120.0 or 0.169.0) as a child process and talk
to it over WebSocket, one JSON frame at a time, recording everything.

    import trio
    from wsprobe import reference_server, Conn

    async def main():
        async with reference_server("0.169") as url:
            async with Conn.open(url) as c:
                print(await c.call("initialize", {"clientName": "probe"}))
                await c.notify("initialized", {})
                print(await c.call("environment/info", {}))
    trio.run(main)

`Conn.call` returns the raw reply object (``{"id":..,"result":..}`` or
``{"error":..,"id":..}``); notifications that arrive meanwhile are appended to
``Conn.notes``.  A dropped connection makes ``call`` return ``{"closed": True}``.

Binaries are looked up in /root/.cache/trio-exec-ref/ (override with the
environment variables TRIO_EXEC_REF_0120 / TRIO_EXEC_REF_0169).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import orjson
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

REF_ROOT = "/root/.cache/trio-exec-ref"
BINARIES = {
    "0.120": os.environ.get(
        "TRIO_EXEC_REF_0120",
        f"{REF_ROOT}/v0120/node_modules/@openai/codex-linux-x64/vendor/"
        "x86_64-unknown-linux-musl/codex/codex",
    ),
    "0.169": os.environ.get(
        "TRIO_EXEC_REF_0169",
        f"{REF_ROOT}/v0169/node_modules/@openai/codex-linux-x64/vendor/"
        "x86_64-unknown-linux-musl/bin/codex",
    ),
}


def binary(version: str) -> str:
    return BINARIES[version]


@contextlib.asynccontextmanager
async def reference_server(
    version: str, *, cwd: str | None = None, extra_args: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[str]:
    """Run `codex exec-server --listen ws://127.0.0.1:0`; yield its ws:// URL."""
    home = tempfile.mkdtemp(prefix=f"codex-home-{version}-", dir=os.path.expanduser("~"))
    penv = dict(os.environ)
    penv["CODEX_HOME"] = home
    penv.pop("CODEX_EXEC_SERVER_URL", None)
    if env:
        penv.update(env)
    args = [binary(version), "exec-server", "--listen", "ws://127.0.0.1:0", *(extra_args or [])]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=penv, cwd=cwd,
    )
    try:
        assert proc.stdout is not None
        line = await trio.to_thread.run_sync(proc.stdout.readline)
        url = line.decode().strip()
        if not url.startswith("ws://"):
            raise RuntimeError(f"exec-server did not print a URL: {line!r}")
        yield url
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(home, ignore_errors=True)


class Conn:
    """One WebSocket connection to an exec-server, with a reader task."""

    def __init__(self, ws: Any, nursery: trio.Nursery) -> None:
        self.ws = ws
        self.nursery = nursery
        self.next_id = 1
        self.waiting: dict[Any, trio.MemorySendChannel[Any]] = {}
        self.notes: list[dict[str, Any]] = []
        self.frames: list[tuple[str, Any]] = []  # ("<" received | ">" sent, obj)
        self.closed = trio.Event()
        self.note_event = trio.Event()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str) -> AsyncIterator[Conn]:
        async with trio.open_nursery() as nursery, open_websocket_url(url) as ws:
            c = cls(ws, nursery)
            nursery.start_soon(c._reader)
            try:
                yield c
            finally:
                nursery.cancel_scope.cancel()

    async def _reader(self) -> None:
        try:
            while True:
                msg = await self.ws.get_message()
                obj = orjson.loads(msg)
                self.frames.append(("<", obj))
                if isinstance(obj, dict) and "method" in obj and "id" not in obj:
                    self.notes.append(obj)
                    ev, self.note_event = self.note_event, trio.Event()
                    ev.set()
                    continue
                key = obj.get("id") if isinstance(obj, dict) else None
                ch = self.waiting.pop(orjson.dumps(key), None)
                if ch is not None:
                    ch.send_nowait(obj)
                else:
                    self.notes.append({"unmatched": obj})
        except (ConnectionClosed, trio.ClosedResourceError):
            pass
        finally:
            self.closed.set()
            for ch in self.waiting.values():
                ch.send_nowait({"closed": True})
            self.waiting.clear()

    async def send_raw(self, obj: Any) -> None:
        self.frames.append((">", obj))
        data = obj if isinstance(obj, (str, bytes)) else orjson.dumps(obj).decode()
        await self.ws.send_message(data)

    async def call(self, method: str, params: Any = None, *, id: Any = None,
                   omit_params: bool = False, timeout: float = 15) -> dict[str, Any]:
        if id is None:
            id = self.next_id
            self.next_id += 1
        send, recv = trio.open_memory_channel[Any](1)
        if self.closed.is_set():
            return {"closed": True}
        self.waiting[orjson.dumps(id)] = send
        msg: dict[str, Any] = {"id": id, "method": method}
        if not omit_params:
            msg["params"] = params
        await self.send_raw(msg)
        with trio.move_on_after(timeout):
            return await recv.receive()
        return {"timeout": True}

    async def notify(self, method: str, params: Any = None) -> None:
        await self.send_raw({"method": method, "params": params})

    async def wait_note(self, pred: Any, timeout: float = 10) -> dict[str, Any] | None:
        """Wait until a notification satisfying pred has arrived; return it."""
        with trio.move_on_after(timeout):
            while True:
                for n in self.notes:
                    if pred(n):
                        return n
                await self.note_event.wait()
        return None

    async def handshake(self, **params: Any) -> dict[str, Any]:
        params.setdefault("clientName", "probe")
        r = await self.call("initialize", params)
        await self.notify("initialized", {})
        return r


def uri(path: str) -> str:
    """file:// URI for an absolute POSIX path (percent-encoding like the 0.169 client)."""
    from urllib.parse import quote

    return "file://" + quote(path, safe="/")


def dump(obj: Any) -> str:
    return orjson.dumps(obj).decode()
