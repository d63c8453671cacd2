"""End-to-end harness: run the real `codex exec` CLI against an exec-server.

Three pieces, all on 127.0.0.1, all in one trio process:

* a **fake model**: a tiny HTTP/1.1 server that speaks the OpenAI Responses API
  (`POST /v1/responses`, SSE reply).  It answers every turn from a script: a list
  of steps, each a tool call (`ToolCall`) or a final assistant text (`Say`).
  The step index is the number of tool results (`function_call_output` items) in
  the request's `input`, so the fake is stateless and survives client retries.
* a **logging WebSocket proxy** between codex and the exec-server under test.
  Every frame in both directions is recorded (`Frame`) per connection.  It can
  also cut the connection on purpose (`cut_when`) to provoke codex's
  reconnect/resume path.
* the **codex CLI** itself (`codex exec --json ...`), pointed at the proxy with
  `CODEX_EXEC_SERVER_URL` and at the fake model with a generated
  `$CODEX_HOME/config.toml`.

Works with codex-cli 0.169.0 and 0.120.0 (both use `wire_api = "responses"`;
0.169 refuses `"chat"`).

Usage::

    import trio
    from codex_harness import ToolCall, Say, run_codex_exec, shell

    async def main():
        run = await run_codex_exec(
            exec_server_url="ws://127.0.0.1:PORT",   # e.g. trio-exec, or a reference
            script=[shell("echo hello"), Say("done")],
            codex_version="0.169",
        )
        print(run.returncode, run.final_message)
        for f in run.frames:                         # what codex sent / got back
            print(f.conn, f.direction, f.raw)

    trio.run(main)

`shell(cmd, tty=False)` produces the right tool call for the codex version's
tool set (`exec_command` for unified exec, else `shell`).  `ToolCall(name,
arguments)` sends any tool call verbatim; `write_stdin(session_id, chars)` is the
unified-exec follow-up.  The model requests codex made are in
`run.model_requests` (parsed JSON bodies), so a test can look at the tool
outputs codex reported back (`run.tool_outputs()`).

Command line (quick manual check / frame capture)::

    python codex_harness.py --version 0.169 [--server ws://...] 'echo hi'

starts a reference exec-server of that version when `--server` is absent.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import h11
import trio
from trio_websocket import (
    ConnectionClosed,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

REF_ROOT = "/root/.cache/trio-exec-ref"
CODEX_BINARIES = {
    "0.120": f"{REF_ROOT}/v0120/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/codex/codex",
    "0.169": f"{REF_ROOT}/v0169/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/bin/codex",
}


# --------------------------------------------------------------------------- script


@dataclass
class ToolCall:
    """One function call the fake model makes (arguments are JSON-encoded for you)."""

    name: str
    arguments: dict[str, Any]


@dataclass
class Say:
    """Final assistant message; ends the turn."""

    text: str


Step = ToolCall | Say


def shell(cmd: str, *, tty: bool = False, yield_time_ms: int | None = None,
          workdir: str | None = None) -> Callable[[list[str]], ToolCall]:
    """A shell command as the model would issue it, adapted to the offered tools."""

    def make(tools: list[str]) -> ToolCall:
        if "exec_command" in tools:
            args: dict[str, Any] = {"cmd": cmd}
            if tty:
                args["tty"] = True
            if yield_time_ms is not None:
                args["yield_time_ms"] = yield_time_ms
            if workdir:
                args["workdir"] = workdir
            return ToolCall("exec_command", args)
        if "shell_command" in tools:
            args = {"command": cmd}
            if workdir:
                args["workdir"] = workdir
            return ToolCall("shell_command", args)
        args = {"command": ["bash", "-lc", cmd]}
        if workdir:
            args["workdir"] = workdir
        return ToolCall("shell", args)

    return make


def write_stdin(session_id: int | None, chars: str, *,
                yield_time_ms: int | None = None) -> ToolCall:
    """Unified-exec `write_stdin`.  session_id None = the last "session ID N" that
    codex reported in a tool output (filled in by the fake model at request time)."""
    args: dict[str, Any] = {"session_id": session_id, "chars": chars}
    if yield_time_ms is not None:
        args["yield_time_ms"] = yield_time_ms
    return ToolCall("write_stdin", args)


ScriptItem = Step | Callable[[list[str]], Step]


# --------------------------------------------------------------------------- fake model


@dataclass
class FakeModel:
    script: Sequence[ScriptItem]
    requests: list[dict[str, Any]] = field(default_factory=list)
    http_log: list[tuple[str, str, int]] = field(default_factory=list)
    port: int = 0

    def _step_for(self, body: dict[str, Any]) -> Step:
        items = body.get("input") or []
        n = sum(1 for it in items if isinstance(it, dict)
                and it.get("type") in ("function_call_output", "custom_tool_call_output"))
        tools = [t.get("name") or t.get("type") for t in body.get("tools") or []
                 if isinstance(t, dict)]
        if n >= len(self.script):
            return Say("(script exhausted)")
        item = self.script[n]
        step = item(tools) if callable(item) else item
        if isinstance(step, ToolCall) and "session_id" in step.arguments \
                and step.arguments["session_id"] is None:
            sid = None
            for it in items:
                if isinstance(it, dict) and it.get("type") == "function_call_output":
                    m = re.search(r"session ID (\d+)", str(it.get("output")))
                    if m:
                        sid = int(m.group(1))
            step = ToolCall(step.name, {**step.arguments, "session_id": sid})
        return step

    def _sse(self, step: Step, n: int) -> bytes:
        rid = f"resp_{n}"
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {"id": rid}},
        ]
        if isinstance(step, ToolCall):
            item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}",
                    "name": step.name, "arguments": json.dumps(step.arguments)}
        else:
            item = {"type": "message", "role": "assistant", "id": f"msg_{n}",
                    "content": [{"type": "output_text", "text": step.text}]}
        events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
        events.append({"type": "response.completed", "response": {
            "id": rid, "usage": {"input_tokens": 1, "input_tokens_details": None,
                                 "output_tokens": 1, "output_tokens_details": None,
                                 "total_tokens": 2}}})
        return b"".join(
            f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                req = None
                body = b""
                while True:
                    ev = conn.next_event()
                    if ev is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        conn.receive_data(data)
                        if not data:
                            return
                        continue
                    if isinstance(ev, h11.Request):
                        req = ev
                    elif isinstance(ev, h11.Data):
                        body += ev.data
                    elif isinstance(ev, h11.EndOfMessage):
                        break
                    elif isinstance(ev, h11.ConnectionClosed):
                        return
                assert req is not None
                path = req.target.decode()
                status, ctype, payload = 404, "application/json", b'{"error":"not found"}'
                if req.method == b"POST" and path.rstrip("/").endswith("/responses"):
                    parsed = json.loads(body or b"{}")
                    self.requests.append(parsed)
                    step = self._step_for(parsed)
                    status, ctype = 200, "text/event-stream"
                    payload = self._sse(step, len(self.requests))
                elif path.split("?")[0].rstrip("/").endswith("/models"):
                    status, payload = 200, b'{"data":[],"models":[]}'
                self.http_log.append((req.method.decode(), path, status))
                headers = [("content-type", ctype), ("content-length", str(len(payload)))]
                await stream.send_all(conn.send(h11.Response(status_code=status, headers=headers)))
                await stream.send_all(conn.send(h11.Data(data=payload)))
                await stream.send_all(conn.send(h11.EndOfMessage()))
                if conn.our_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            return
        finally:
            await stream.aclose()

    async def serve(self, nursery: trio.Nursery) -> None:
        listeners = await nursery.start(trio.serve_tcp, self._handle, 0, )  # type: ignore[arg-type]
        self.port = listeners[0].socket.getsockname()[1]


# --------------------------------------------------------------------------- proxy


@dataclass
class Frame:
    t: float            # seconds since harness start
    conn: int           # proxy connection number (1, 2, ... in accept order)
    direction: str      # "c>s" client to server, "s>c" server to client, "--" event
    raw: str            # frame text (or an event description)

    def json(self) -> Any:
        try:
            return json.loads(self.raw)
        except ValueError:
            return None


@dataclass
class LoggingProxy:
    upstream: str
    t0: float = field(default_factory=time.monotonic)
    frames: list[Frame] = field(default_factory=list)
    # cut_when(frame) -> True: drop both sides right after forwarding that frame
    cut_when: Callable[[Frame], bool] | None = None
    cuts_left: int = 1
    port: int = 0
    _n: int = 0

    def _log(self, conn: int, d: str, raw: str) -> Frame:
        f = Frame(round(time.monotonic() - self.t0, 4), conn, d, raw)
        self.frames.append(f)
        return f

    async def _handler(self, request: WebSocketRequest) -> None:
        self._n += 1
        n = self._n
        client = await request.accept()
        self._log(n, "--", f"accepted path={request.path!r}")
        try:
            async with open_websocket_url(self.upstream) as up:
                async with trio.open_nursery() as nursery:
                    async def pump(src: Any, dst: Any, d: str) -> None:
                        try:
                            while True:
                                msg = await src.get_message()
                                raw = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
                                f = self._log(n, d, raw)
                                await dst.send_message(msg)
                                if self.cut_when and self.cuts_left > 0 and self.cut_when(f):
                                    self.cuts_left -= 1
                                    self._log(n, "--", "proxy cuts the connection")
                                    break
                        except ConnectionClosed as e:
                            self._log(n, "--", f"{d} closed: {e.reason}")
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(pump, client, up, "c>s")
                    nursery.start_soon(pump, up, client, "s>c")
        except (OSError, ConnectionClosed) as e:
            self._log(n, "--", f"upstream error {e!r}")
        finally:
            # abrupt close, like a network failure
            try:
                await client.aclose()
            except Exception:
                pass

    async def serve(self, nursery: trio.Nursery) -> None:
        server = await nursery.start(serve_websocket, self._handler, "127.0.0.1", 0, None)
        self.port = server.port


# --------------------------------------------------------------------------- codex run


@dataclass
class CodexRun:
    returncode: int
    stdout: str
    stderr: str
    frames: list[Frame]
    model_requests: list[dict[str, Any]]
    http_log: list[tuple[str, str, int]]
    codex_home: str

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stdout.splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    @property
    def final_message(self) -> str | None:
        msg = None
        for e in self.events:
            item = e.get("item") or {}
            if item.get("type") in ("agent_message", "assistant_message"):
                msg = item.get("text")
        return msg

    def tool_outputs(self) -> list[Any]:
        """function_call_output items codex sent to the model (last request has all)."""
        if not self.model_requests:
            return []
        return [it for it in self.model_requests[-1].get("input", [])
                if isinstance(it, dict) and it.get("type") == "function_call_output"]

    def client_frames(self) -> list[Any]:
        return [f.json() for f in self.frames if f.direction == "c>s"]


def write_config(home: str, model_port: int, extra_toml: str = "") -> None:
    with open(os.path.join(home, "config.toml"), "w") as f:
        f.write(f"""
model = "fake-model"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.fake]
name = "fake"
base_url = "http://127.0.0.1:{model_port}/v1"
wire_api = "responses"
env_key = "FAKE_MODEL_API_KEY"
request_max_retries = 0
stream_max_retries = 0
stream_idle_timeout_ms = 60000
{extra_toml}
""")


async def run_codex_exec(
    exec_server_url: str,
    script: Sequence[ScriptItem],
    *,
    codex_version: str = "0.169",
    codex_bin: str | None = None,
    prompt: str = "run the command",
    cwd: str | None = None,
    extra_args: Sequence[str] = (),
    extra_toml: str = "",
    extra_env: dict[str, str] | None = None,
    cut_when: Callable[[Frame], bool] | None = None,
    use_proxy: bool = True,
    timeout: float = 120,
    keep_home: bool = False,
) -> CodexRun:
    """Run `codex exec` once, model scripted, exec-server at `exec_server_url`."""
    bin_ = codex_bin or CODEX_BINARIES[codex_version]
    home = tempfile.mkdtemp(prefix=f"codex-harness-{codex_version}-",
                            dir=os.path.expanduser("~"))
    workdir = cwd or tempfile.mkdtemp(prefix="codex-harness-work-")
    model = FakeModel(list(script))
    proxy = LoggingProxy(exec_server_url, cut_when=cut_when)
    async with trio.open_nursery() as nursery:
        await model.serve(nursery)
        url = exec_server_url
        if use_proxy:
            await proxy.serve(nursery)
            url = f"ws://127.0.0.1:{proxy.port}"
        write_config(home, model.port, extra_toml)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_")}
        env.update({
            "CODEX_HOME": home,
            "CODEX_EXEC_SERVER_URL": url,
            "FAKE_MODEL_API_KEY": "sk-fake",
            "OPENAI_API_KEY": "sk-fake",
            "RUST_LOG": env.get("RUST_LOG", "warn"),
            "NO_COLOR": "1",
        })
        if extra_env:
            env.update(extra_env)
        args = [bin_, "exec", "--json", "--skip-git-repo-check", "-C", workdir,
                *extra_args, prompt]
        with trio.move_on_after(timeout):
            res = await trio.run_process(args, env=env, cwd=workdir, capture_stdout=True,
                                         capture_stderr=True, check=False,
                                         stdin=b"")
        nursery.cancel_scope.cancel()
    run = CodexRun(res.returncode, res.stdout.decode(errors="replace"),
                   res.stderr.decode(errors="replace"), proxy.frames, model.requests,
                   model.http_log, home)
    if not keep_home:
        shutil.rmtree(home, ignore_errors=True)
    return run


# --------------------------------------------------------------------------- CLI


def _main() -> None:
    import argparse
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from wsprobe import reference_server

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--version", default="0.169", choices=sorted(CODEX_BINARIES))
    ap.add_argument("--server", help="exec-server URL (default: start a reference of --version)")
    ap.add_argument("--server-version", help="reference exec-server version if --server absent")
    ap.add_argument("--tty", action="store_true")
    ap.add_argument("cmd", nargs="*", default=["echo hello from harness"])
    ns = ap.parse_args()

    async def main() -> None:
        script = [*(shell(c, tty=ns.tty) for c in ns.cmd), Say("done")]
        if ns.server:
            run = await run_codex_exec(ns.server, script, codex_version=ns.version)
        else:
            async with reference_server(ns.server_version or ns.version) as url:
                run = await run_codex_exec(url, script, codex_version=ns.version)
        for f in run.frames:
            print(f"{f.t:8.3f} #{f.conn} {f.direction} {f.raw[:400]}")
        print("rc", run.returncode, "final:", run.final_message)
        print("model http:", run.http_log)
        print("tool outputs:", json.dumps(run.tool_outputs())[:2000])
        if run.returncode:
            print(run.stderr[-3000:])

    trio.run(main)


if __name__ == "__main__":
    _main()
