"""The exec floor: the least an exec-server on trio + trio-websocket must do per request.

`./scripts/bench` runs it as the `floor+qa` column, through the same scenario code as every
other server, for the per-request figures: connect + `initialize`, `fs/getMetadata`, PTY echo
and resume → caught up (`Scenario.floor_keys`). It is the daemon's stack with none of the
daemon's logic: `trio_websocket.serve_websocket` with the daemon's settings (and its C
unmasking), orjson, pybase64, and only the work each figure cannot do without:

* every message is handled in the connection's reader, one after the other (no task per
  request, no dispatch table, no converter, no checks, no limits, no metrics);
* `initialize` makes or resumes a session (a resume takes over at once);
* `fs/getMetadata` stats in a worker thread, by the cheapest hand-off the daemon's rules allow
  (`trio_exec.fs.handoff`, the daemon's own);
* `process/start` spawns the child (a PTY, or pipes), answers, then starts one pump per output
  stream; a pump records each read as the next seq and sends `process/output` to the
  session's connection of the moment (none while detached: the chunk stays in the log);
  the exit, then the close, follow once the child is reaped and its outputs ended;
* `process/write` writes the decoded chunk to the child's stdin; `process/read` answers the
  chunks after `afterSeq` (no long-poll: `waitMs` is ignored); `process/terminate` kills the
  group.

Everything else is -32601. Per process, record-and-send happens under one lock, the rule any
server must keep so that notifications leave in seq order.

    .venv/bin/python -m benchmarks.floor_exec     (prints its URL, serves until killed)
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import attrs
import orjson
import pybase64
import trio
import trio_websocket

import trio_exec.ws.masking
from trio_exec.fs.handoff import Handoff

MiB = 1024 * 1024
READ_SIZE = 64 * 1024
FLOOR = "floor"


@attrs.define(eq=False)
class Process:
    seq: int = 0
    chunks: list[dict[str, Any]] = attrs.field(factory=list)
    exited: bool = False
    exit_code: int | None = None
    closed: bool = False
    lock: trio.Lock = attrs.field(factory=trio.Lock)
    proc: trio.Process | None = None
    stdin: trio.lowlevel.FdStream | None = None


@attrs.define(eq=False)
class Session:
    ws: trio_websocket.WebSocketConnection | None = None
    processes: dict[str, Process] = attrs.field(factory=dict)

    async def send(self, method: str, params: dict[str, Any]) -> None:
        ws = self.ws
        if ws is None:
            return
        with contextlib.suppress(trio_websocket.ConnectionClosed):
            await ws.send_message(orjson.dumps({"method": method, "params": params}).decode())


@attrs.define(eq=False)
class FloorServer:
    nursery: trio.Nursery
    sessions: dict[str, Session] = attrs.field(factory=dict)
    handoff: Handoff = attrs.field(factory=lambda: Handoff(trio.CapacityLimiter(16)))

    async def connection(self, request: trio_websocket.WebSocketRequest) -> None:
        ws = await request.accept()
        session: Session | None = None
        try:
            while True:
                try:
                    message = await ws.get_message()
                except trio_websocket.ConnectionClosed:
                    return
                value = orjson.loads(message)
                if "id" not in value:
                    continue
                method, params = value.get("method"), value.get("params") or {}
                if method == "initialize":
                    sid = params.get("resumeSessionId")
                    if sid is None:
                        sid = str(uuid.uuid4())
                        self.sessions[sid] = Session()
                    session = self.sessions[sid]
                    session.ws = ws
                    reply: dict[str, Any] = {"result": {"sessionId": sid}}
                elif session is None:
                    reply = {"error": {"code": -32600, "message": "not initialized"}}
                else:
                    reply = await self.call(session, method, params)
                await ws.send_message(orjson.dumps({"id": value["id"], **reply}).decode())
                if method == "process/start" and "result" in reply:
                    self.nursery.start_soon(self.supervise, session, params["processId"])
        except trio_websocket.ConnectionClosed:
            pass
        finally:
            if session is not None and session.ws is ws:
                session.ws = None

    async def call(self, session: Session, method: str, params: dict[str, Any]) -> dict[str, Any]:
        result: Any
        if method == "fs/getMetadata":
            try:
                info = await self.handoff.run(os.stat, params["path"])
            except OSError as exc:
                return {"error": {"code": -32004, "message": str(exc)}}
            result = {"isDirectory": False, "isFile": True, "createdAtMs": 0,
                      "modifiedAtMs": info.st_mtime_ns // 1_000_000}
        elif method == "process/start":
            session.processes[params["processId"]] = await self.spawn(params)
            result = {"processId": params["processId"]}
        elif method == "process/write":
            process = session.processes[params["processId"]]
            assert process.stdin is not None
            await process.stdin.send_all(pybase64.b64decode(params["chunk"]))
            result = {"status": "accepted"}
        elif method == "process/read":
            process = session.processes[params["processId"]]
            after = params.get("afterSeq") or 0
            chunks = [chunk for chunk in process.chunks if chunk["seq"] > after]
            result = {"chunks": chunks,
                      "nextSeq": chunks[-1]["seq"] + 1 if chunks else after + 1,
                      "exited": process.exited, "exitCode": process.exit_code,
                      "closed": process.closed, "failure": None}
        elif method == "process/terminate":
            process = session.processes[params["processId"]]
            assert process.proc is not None
            running = process.proc.returncode is None
            if running:
                os.killpg(process.proc.pid, signal.SIGKILL)
            result = {"running": running}
        else:
            return {"error": {"code": -32601, "message": f"unknown method {method}"}}
        return {"result": result}

    async def spawn(self, params: dict[str, Any]) -> Process:
        process = Process()
        if params.get("tty"):
            master, slave = os.openpty()
            process.proc = await trio.lowlevel.open_process(
                params["argv"], stdin=slave, stdout=slave, stderr=slave, cwd=params["cwd"],
                env=params["env"], start_new_session=True)
            os.close(slave)
            process.stdin = trio.lowlevel.FdStream(master)
        else:
            process.proc = await trio.lowlevel.open_process(
                params["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=params["cwd"], env=params["env"],
                start_new_session=True)
        return process

    async def supervise(self, session: Session, process_id: str) -> None:
        process = session.processes[process_id]
        proc = process.proc
        assert proc is not None
        if process.stdin is not None:  # a PTY: its master is both ends
            outputs: list[tuple[str, trio.abc.ReceiveStream]] = [("pty", process.stdin)]
        else:
            assert proc.stdout is not None and proc.stderr is not None
            outputs = [("stdout", proc.stdout), ("stderr", proc.stderr)]
        async with trio.open_nursery() as nursery:
            for name, stream in outputs:
                nursery.start_soon(self.pump, session, process_id, name, stream)
        await proc.wait()
        for event in ("exited", "closed"):
            async with process.lock:
                process.seq += 1
                params: dict[str, Any] = {"processId": process_id, "seq": process.seq}
                if event == "exited":
                    process.exited, process.exit_code = True, proc.returncode
                    params["exitCode"] = proc.returncode
                else:
                    process.closed = True
                await session.send(f"process/{event}", params)

    async def pump(self, session: Session, process_id: str, name: str,
                   stream: trio.abc.ReceiveStream) -> None:
        process = session.processes[process_id]
        while True:
            try:
                data = await stream.receive_some(READ_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # a PTY master answers EIO once the child has gone
            if not data:
                return
            async with process.lock:
                process.seq += 1
                chunk = {"seq": process.seq, "stream": name,
                         "chunk": pybase64.b64encode(data).decode()}
                process.chunks.append(chunk)
                await session.send("process/output", {"processId": process_id, **chunk})


async def serve(*, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
    trio_exec.ws.masking.install()
    async with trio.open_nursery() as nursery:
        floor = FloorServer(nursery)
        server = await nursery.start(functools.partial(
            trio_websocket.serve_websocket, floor.connection, "127.0.0.1", 0, ssl_context=None,
            message_queue_size=16, max_message_size=64 * MiB, receive_buffer_size=256 * 1024))
        task_status.started(server.port)
        await trio.sleep_forever()


async def _main() -> None:
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve)
        print(f"ws://127.0.0.1:{port}", flush=True)


class FloorProcess:
    """The exec floor as a child process, with the bench's `Server` interface."""

    kind = FLOOR

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-floor-")
        self.cwd = Path(self._tmp.name)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.floor_exec"], stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1],
            start_new_session=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode().strip()
        if not line.startswith("ws://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the floor server printed {line!r}")
        self.host = "127.0.0.1"
        self.port = int(line.rsplit(":", 1)[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stderr_tail(self, n: int = 2000) -> str:
        return ""

    def remember_children(self) -> None:
        pass

    def stop(self) -> None:
        """Kill the floor and every child it spawned (they lead their own groups, so the
        floor's own group is killed, then each child's: `pkill`-free, by the floor's pids)."""
        children = _children_of(self.proc.pid)
        self.proc.kill()
        self.proc.wait()
        for pid in children:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        self._tmp.cleanup()


def _children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


if __name__ == "__main__":
    trio.run(_main)
