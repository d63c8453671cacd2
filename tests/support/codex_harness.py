"""End-to-end harness: run the real ``codex exec`` CLI against an exec-server.

Three pieces, all on 127.0.0.1, all in the calling trio run:

* a **fake model** (:class:`FakeModel`): a tiny HTTP/1.1 server speaking the OpenAI Responses
  API (``POST /v1/responses``, SSE reply). Every turn is answered from a script, a list of
  steps, each a tool call (:class:`ToolCall`, or a callable that builds one from the tools codex
  offered, see :func:`shell`) or a final assistant text (:class:`Say`). The step index is the
  number of tool results (``function_call_output`` items) in the request's ``input``, so the
  fake is stateless and survives client retries.
* a **logging WebSocket proxy** (:class:`LoggingProxy`) between codex and the exec-server under
  test. Every frame in both directions is recorded (:class:`Frame`) per connection. It can cut
  the connection on purpose (``cut_when``) to provoke codex's reconnect/resume path.
* the **codex CLI** itself (``codex exec --json --skip-git-repo-check -C <workdir>``), pointed at
  the proxy with ``CODEX_EXEC_SERVER_URL`` and at the fake model with a throw-away
  ``$CODEX_HOME/config.toml`` (provider ``wire_api = "responses"`` — 0.169 refuses ``"chat"`` —
  ``approval_policy = "never"``, ``sandbox_mode = "danger-full-access"`` unless told otherwise,
  no retries).

Works with codex-cli 0.120.0 and 0.169.0, installed by ``scripts/install-reference`` under
``${TRIO_EXEC_REF_CACHE:-~/.cache/trio-exec-ref}`` (see :func:`codex_binary`).

Usage::

    import trio
    from support.codex_harness import Say, run_codex_exec, shell

    async def main():
        run = await run_codex_exec("ws://127.0.0.1:PORT", [shell("echo hi"), Say("done")],
                                   codex_version="0.169")
        assert run.returncode == 0, run.report()
        assert "hi" in run.tool_output_texts()[0]
        print(run.requests("process/start"))        # what codex asked the exec-server

    trio.run(main)

What goes over the exec-server wire (observed with both clients, captures in
``docs/probes/captures/``): the shell tool (``exec_command``) becomes ``process/start`` and
friends; an ``apply_patch`` invocation (:func:`apply_patch`, the heredoc form the model uses
through ``exec_command``) is intercepted by codex and applied with ``fs/readFile`` /
``fs/createDirectory`` / ``fs/writeFile`` on the exec-server — no process is started for it.

Resource handling: codex runs in its own session and process group; when the run ends (normally,
on timeout or on cancellation) the whole group is SIGKILLed and reaped, the fake model and the
proxy are shut down, and the temporary ``CODEX_HOME`` is removed (``keep_home=True`` keeps it).
A run that exceeds ``time_limit`` raises :class:`CodexTimeout`, which carries the partial run.

Command line (quick manual check / frame capture)::

    python -m support.codex_harness --version 0.169 [--server ws://...] 'echo hi'

(from ``tests/``; ``docs/probes/codex_harness.py`` is the same entry point). Without
``--server`` it starts a reference exec-server of the client's version (``--server-version``
picks another one).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import h11
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketRequest,
    open_websocket_url,
    serve_websocket,
)

from . import servers

#: codex client versions the harness knows, and where their binaries live in the cache.
CODEX_BINARY_SUFFIXES = {
    "0.120": "v0120/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/codex/codex",
    "0.169": "v0169/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/bin/codex",
    "0.171": "v0171/node_modules/@openai/codex-linux-x64/vendor/"
    "x86_64-unknown-linux-musl/bin/codex",
}
CODEX_VERSIONS = tuple(sorted(CODEX_BINARY_SUFFIXES))

#: Largest WebSocket message the proxy relays (the exec-server default limit is 64 MiB).
MAX_MESSAGE = 64 * 1024 * 1024


def codex_binary(version: str) -> Path:
    """The codex CLI binary of ``version`` ("0.120", "0.169" or "0.171"); it may be missing."""
    return servers.reference_cache_dir() / CODEX_BINARY_SUFFIXES[version]


# --------------------------------------------------------------------------- script


@dataclass
class ToolCall:
    """One function call the fake model makes (``arguments`` are JSON-encoded for you)."""

    name: str
    arguments: dict[str, Any]


@dataclass
class Say:
    """A final assistant message; ends the turn."""

    text: str


Step = ToolCall | Say
#: A script item is a step, or a function of the offered tool names returning one.
ScriptItem = Step | Callable[[list[str]], Step]


def shell(cmd: str, *, tty: bool = False, yield_time_ms: int | None = None,
          workdir: str | None = None) -> Callable[[list[str]], ToolCall]:
    """A shell command as the model would issue it, adapted to the tools codex offers
    (``exec_command`` — unified exec, what both 0.120 and 0.169 offer here — else
    ``shell_command``, else ``shell``)."""

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


def apply_patch(patch: str) -> Callable[[list[str]], ToolCall]:
    """A file edit: ``apply_patch`` with a heredoc, through the shell tool. codex recognises
    the invocation and applies the patch itself through the exec-server's ``fs/*`` methods.
    ``patch`` is the ``*** Begin Patch`` … ``*** End Patch`` text."""
    body = patch if patch.endswith("\n") else patch + "\n"
    return shell(f"apply_patch <<'PATCH'\n{body}PATCH\n")


def write_stdin(session_id: int | None, chars: str, *,
                yield_time_ms: int | None = None) -> ToolCall:
    """Unified-exec ``write_stdin``. ``session_id=None`` means the last "session ID N" codex
    reported in a tool output (filled in by the fake model at request time)."""
    args: dict[str, Any] = {"session_id": session_id, "chars": chars}
    if yield_time_ms is not None:
        args["yield_time_ms"] = yield_time_ms
    return ToolCall("write_stdin", args)


# --------------------------------------------------------------------------- fake model


@dataclass
class FakeModel:
    """The scripted Responses-API server. ``requests`` holds every parsed request body."""

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
        if isinstance(step, ToolCall) and step.arguments.get("session_id", 0) is None:
            sid = None
            for it in items:
                if isinstance(it, dict) and it.get("type") == "function_call_output":
                    m = re.search(r"session ID (\d+)", str(it.get("output")))
                    if m:
                        sid = int(m.group(1))
            step = ToolCall(step.name, {**step.arguments, "session_id": sid})
        return step

    @staticmethod
    def _sse(step: Step, n: int) -> bytes:
        rid = f"resp_{n}"
        item: dict[str, Any]
        if isinstance(step, ToolCall):
            item = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}",
                    "name": step.name, "arguments": json.dumps(step.arguments)}
        else:
            item = {"type": "message", "role": "assistant", "id": f"msg_{n}",
                    "content": [{"type": "output_text", "text": step.text}]}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {"id": rid}},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": {
                "id": rid, "usage": {"input_tokens": 1, "input_tokens_details": None,
                                     "output_tokens": 1, "output_tokens_details": None,
                                     "total_tokens": 2}}},
        ]
        return b"".join(
            f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)

    async def _handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                req: h11.Request | None = None
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
                    status, ctype = 200, "text/event-stream"
                    payload = self._sse(self._step_for(parsed), len(self.requests))
                elif path.split("?")[0].rstrip("/").endswith("/models"):
                    status, payload = 200, b'{"data":[],"models":[]}'
                self.http_log.append((req.method.decode(), path, status))
                headers = [("content-type", ctype), ("content-length", str(len(payload)))]
                await stream.send_all(conn.send(h11.Response(status_code=status,
                                                             headers=headers)))
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
        """Listen on 127.0.0.1 (any port, then in ``port``) until ``nursery`` is cancelled."""
        listeners = await nursery.start(partial(trio.serve_tcp, host="127.0.0.1"), self._handle, 0)
        self.port = listeners[0].socket.getsockname()[1]


# --------------------------------------------------------------------------- proxy


@dataclass
class Frame:
    """One proxied WebSocket message, or a proxy event (``direction == "--"``)."""

    t: float            # seconds since the proxy was created
    conn: int           # proxy connection number (1, 2, ... in accept order)
    direction: str      # "c>s" client to server, "s>c" server to client, "--" event
    raw: str            # frame text (or an event description)

    def json(self) -> Any:
        """The parsed frame, or None (events, non-JSON text)."""
        if self.direction == "--":
            return None
        try:
            return json.loads(self.raw)
        except ValueError:
            return None

    @property
    def method(self) -> str | None:
        msg = self.json()
        return msg.get("method") if isinstance(msg, dict) else None

    @property
    def params(self) -> Any:
        msg = self.json()
        return msg.get("params") if isinstance(msg, dict) else None

    def output_text(self) -> str:
        """The decoded chunk of a ``process/output`` notification ("" for other frames)."""
        if self.method != "process/output":
            return ""
        return base64.b64decode(self.params["chunk"]).decode(errors="replace")


@dataclass
class LoggingProxy:
    """WebSocket proxy on 127.0.0.1 logging every frame to ``frames``.

    ``cut_when(frame)`` returning true (at most ``cuts`` times) drops both sides of that
    connection right after the frame was forwarded — or instead of forwarding it, with
    ``cut_drops_frame`` (the frame is logged, then lost, as on a real network failure). The
    client then sees its connection end and may reconnect; each new client connection gets a
    fresh upstream connection, accepted only ``reconnect_delay`` seconds after the last cut
    (output produced meanwhile must come back through the client's catch-up), and only once
    ``before_reconnect()`` (if given) has returned: a test holds the client away until what
    it needs has happened on the server (a command that ends while no client is attached)."""

    upstream: str
    cut_when: Callable[[Frame], bool] | None = None
    #: TLS toward codex (the proxy serves wss://) and toward the upstream (verifying it).
    server_ssl: ssl.SSLContext | None = None
    upstream_ssl: ssl.SSLContext | None = None
    cuts: int = 1
    cut_drops_frame: bool = False
    reconnect_delay: float = 0.0
    before_reconnect: Callable[[], Awaitable[None]] | None = None
    t0: float = field(default_factory=time.monotonic)
    frames: list[Frame] = field(default_factory=list)
    port: int = 0
    _n: int = 0
    _last_cut: float | None = None

    def _log(self, conn: int, direction: str, raw: str) -> Frame:
        frame = Frame(round(time.monotonic() - self.t0, 4), conn, direction, raw)
        self.frames.append(frame)
        return frame

    async def _handler(self, request: WebSocketRequest) -> None:
        self._n += 1
        n = self._n
        if self._last_cut is not None:
            await trio.sleep_until(self._last_cut + self.reconnect_delay)
            if self.before_reconnect is not None:
                await self.before_reconnect()
                self._log(n, "--", "before_reconnect returned")
        client = await request.accept()
        self._log(n, "--", f"accepted path={request.path!r}")
        try:
            # the client's credentials go through, so the upstream decides on them
            auth = [(k, v) for k, v in request.headers if k.lower() == b"authorization"]
            async with open_websocket_url(self.upstream, max_message_size=MAX_MESSAGE,
                                          ssl_context=self.upstream_ssl,
                                          extra_headers=auth) as up, \
                    trio.open_nursery() as nursery:

                async def pump(src: Any, dst: Any, direction: str) -> None:
                    try:
                        while True:
                            msg = await src.get_message()
                            raw = msg if isinstance(msg, str) else msg.decode("utf-8", "replace")
                            frame = self._log(n, direction, raw)
                            cut = bool(self.cut_when and self.cuts > 0 and self.cut_when(frame))
                            if not (cut and self.cut_drops_frame):
                                await dst.send_message(msg)
                            if cut:
                                self.cuts -= 1
                                self._last_cut = trio.current_time()
                                self._log(n, "--", "proxy cuts the connection" + (
                                    " (frame dropped)" if self.cut_drops_frame else ""))
                                break
                    except ConnectionClosed as exc:
                        self._log(n, "--", f"{direction} closed: {exc.reason}")
                    nursery.cancel_scope.cancel()

                nursery.start_soon(pump, client, up, "c>s")
                nursery.start_soon(pump, up, client, "s>c")
        except (OSError, ConnectionClosed, HandshakeError) as exc:
            self._log(n, "--", f"upstream error {exc!r}")
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(2):
                await client.aclose()

    async def serve(self, nursery: trio.Nursery) -> None:
        """Listen on 127.0.0.1 (any port, then in ``port``) until ``nursery`` is cancelled."""
        server = await nursery.start(
            partial(serve_websocket, max_message_size=MAX_MESSAGE),
            self._handler, "127.0.0.1", 0, self.server_ssl)
        self.port = server.port


# --------------------------------------------------------------------------- codex run


@dataclass
class CodexRun:
    """What one ``codex exec`` run did: its exit status and output, every exec-server frame,
    and every request it made to the model."""

    codex_version: str
    returncode: int | None          # None: killed on timeout
    stdout: str                     # JSONL events (``--json``)
    stderr: str
    frames: list[Frame]
    model_requests: list[dict[str, Any]]
    http_log: list[tuple[str, str, int]]
    workdir: str
    codex_home: str
    elapsed: float

    @property
    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stdout.splitlines():
            with contextlib.suppress(ValueError):
                out.append(json.loads(line))
        return out

    @property
    def final_message(self) -> str | None:
        msg = None
        for e in self.events:
            item = e.get("item") or {}
            if item.get("type") in ("agent_message", "assistant_message"):
                msg = item.get("text")
        return msg

    def tools_offered(self) -> list[str]:
        if not self.model_requests:
            return []
        return [t.get("name") or t.get("type") for t in self.model_requests[0].get("tools", [])]

    def tool_outputs(self) -> list[dict[str, Any]]:
        """The ``function_call_output`` items codex sent to the model (the last request
        carries them all), in call order."""
        if not self.model_requests:
            return []
        return [it for it in self.model_requests[-1].get("input", [])
                if isinstance(it, dict) and it.get("type") == "function_call_output"]

    def tool_output_texts(self) -> list[str]:
        return [str(it.get("output")) for it in self.tool_outputs()]

    def connections(self) -> list[int]:
        """Proxy connection numbers, in accept order."""
        return sorted({f.conn for f in self.frames})

    def wire(self, direction: str | None = None, conn: int | None = None) -> list[Frame]:
        """Frames (not proxy events), optionally of one direction and one connection."""
        return [f for f in self.frames if f.direction != "--"
                and (direction is None or f.direction == direction)
                and (conn is None or f.conn == conn)]

    def requests(self, method: str, conn: int | None = None) -> list[dict[str, Any]]:
        """Client-to-server messages (requests and notifications) calling ``method``."""
        return [f.json() for f in self.wire("c>s", conn) if f.method == method]

    def notifications(self, method: str, conn: int | None = None) -> list[dict[str, Any]]:
        """Server-to-client notifications of ``method``."""
        return [f.json() for f in self.wire("s>c", conn) if f.method == method]

    def response_to(self, request: dict[str, Any], conn: int | None = None) -> dict[str, Any]:
        """The server's answer to ``request`` (matched by id on the request's connection)."""
        if conn is None:
            conn = next(f.conn for f in self.wire("c>s") if f.json() == request)
        for f in self.wire("s>c", conn):
            msg = f.json()
            if isinstance(msg, dict) and "method" not in msg and msg.get("id") == request["id"]:
                return msg
        raise LookupError(f"no response to {request!r} on connection {conn}")

    def frame_log(self, limit: int = 400) -> str:
        return "\n".join(f"{f.t:8.3f} #{f.conn} {f.direction} {f.raw[:limit]}"
                         for f in self.frames)

    def report(self) -> str:
        """Everything useful to understand a failed assertion."""
        return (f"codex {self.codex_version} exit status {self.returncode} after "
                f"{self.elapsed:.1f} s, final message {self.final_message!r}\n"
                f"tools offered: {self.tools_offered()}\n"
                f"tool outputs: {json.dumps(self.tool_output_texts())[:3000]}\n"
                f"--- exec-server frames\n{self.frame_log()}\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


class CodexTimeout(Exception):
    """``codex exec`` did not finish in time; ``run`` holds what happened until then."""

    def __init__(self, run: CodexRun) -> None:
        super().__init__(f"codex exec timed out\n{run.report()}")
        self.run = run


def write_config(home: str, model_port: int, *, sandbox_mode: str | None,
                 extra_toml: str = "") -> None:
    """The throw-away ``config.toml``: the fake model provider, no approvals, no retries,
    ``sandbox_mode`` unless None (then codex's own default applies)."""
    sandbox = f'sandbox_mode = "{sandbox_mode}"\n' if sandbox_mode else ""
    with open(os.path.join(home, "config.toml"), "w") as f:
        f.write(f"""
model = "fake-model"
model_provider = "fake"
approval_policy = "never"
{sandbox}check_for_update_on_startup = false

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


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


async def run_codex_exec(
    exec_server_url: str,
    script: Sequence[ScriptItem],
    *,
    codex_version: str = "0.169",
    codex_bin: str | os.PathLike[str] | None = None,
    prompt: str = "run the command",
    cwd: str | os.PathLike[str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
    sandbox_mode: str | None = "danger-full-access",
    extra_args: Sequence[str] = (),
    extra_toml: str = "",
    extra_env: dict[str, str] | None = None,
    cut_when: Callable[[Frame], bool] | None = None,
    cuts: int = 1,
    cut_drops_frame: bool = False,
    reconnect_delay: float = 0.0,
    before_reconnect: Callable[[], Awaitable[None]] | None = None,
    use_proxy: bool = True,
    proxy_ssl: tuple[ssl.SSLContext, ssl.SSLContext] | None = None,
    environments_toml: str | None = None,
    exec_server_url_env: bool = True,
    time_limit: float = 120,
    keep_home: bool = False,
) -> CodexRun:
    """Run ``codex exec`` once with the model scripted by ``script`` and the exec-server at
    ``exec_server_url`` (through the logging proxy unless ``use_proxy=False``).

    ``cwd`` is codex's working directory (``-C``; default: a fresh directory under
    ``base_dir``); ``base_dir`` holds the temporary ``CODEX_HOME`` too (default: the system
    temp directory). ``sandbox_mode`` goes to the config (None: codex's default);
    ``extra_args`` go to ``codex exec`` before the prompt (e.g. ``["-s", "read-only"]``).
    ``cut_when``, ``cuts``, ``cut_drops_frame``, ``reconnect_delay`` and ``before_reconnect``
    configure the proxy's connection cuts (:class:`LoggingProxy`); ``proxy_ssl`` (server
    context, upstream client context) makes the proxy speak TLS on both sides (``wss://``).
    ``environments_toml`` is written to ``$CODEX_HOME/environments.toml`` with ``{url}``
    replaced by the URL codex should use (the proxy's, or ``exec_server_url`` without it);
    ``exec_server_url_env=False`` leaves ``CODEX_EXEC_SERVER_URL`` unset.
    Raises :class:`CodexTimeout` after ``time_limit`` seconds."""
    bin_ = Path(codex_bin) if codex_bin else codex_binary(codex_version)
    if not bin_.exists():
        raise FileNotFoundError(f"codex {codex_version} not found at {bin_}; "
                                "run ./scripts/install-reference")
    base = os.fspath(base_dir) if base_dir is not None else None
    home = tempfile.mkdtemp(prefix=f"codex-home-{codex_version}-", dir=base)
    workdir = os.fspath(cwd) if cwd is not None else tempfile.mkdtemp(
        prefix="codex-work-", dir=base)
    model = FakeModel(list(script))
    proxy = LoggingProxy(exec_server_url, cut_when=cut_when, cuts=cuts,
                         cut_drops_frame=cut_drops_frame, reconnect_delay=reconnect_delay,
                         before_reconnect=before_reconnect,
                         server_ssl=proxy_ssl[0] if proxy_ssl else None,
                         upstream_ssl=proxy_ssl[1] if proxy_ssl else None)
    out_path, err_path = os.path.join(home, "codex.stdout"), os.path.join(home, "codex.stderr")
    returncode: int | None = None
    started = time.monotonic()
    try:
        async with trio.open_nursery() as nursery:
            await model.serve(nursery)
            url = exec_server_url
            if use_proxy:
                await proxy.serve(nursery)
                url = f"{'wss' if proxy_ssl else 'ws'}://127.0.0.1:{proxy.port}"
            write_config(home, model.port, sandbox_mode=sandbox_mode, extra_toml=extra_toml)
            if environments_toml is not None:
                await trio.Path(home, "environments.toml").write_text(
                    environments_toml.replace("{url}", url))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CODEX_")}
            env.update({
                "CODEX_HOME": home,
                **({"CODEX_EXEC_SERVER_URL": url} if exec_server_url_env else {}),
                "FAKE_MODEL_API_KEY": "sk-fake",
                "OPENAI_API_KEY": "sk-fake",
                "RUST_LOG": env.get("RUST_LOG", "warn"),
                "NO_COLOR": "1",
            })
            if extra_env:
                env.update(extra_env)
            argv = [os.fspath(bin_), "exec", "--json", "--skip-git-repo-check", "-C", workdir,
                    *extra_args, prompt]
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                proc = await trio.lowlevel.open_process(
                    argv, env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=out,
                    stderr=err, start_new_session=True)
            finally:
                os.close(out)
                os.close(err)
            try:
                with trio.move_on_after(time_limit):
                    returncode = await proc.wait()
            finally:
                _kill_group(proc.pid)       # codex and anything it left behind
                with trio.CancelScope(shield=True):
                    proc.kill()
                    await proc.wait()
            nursery.cancel_scope.cancel()
        run = CodexRun(
            codex_version, returncode,
            await trio.Path(out_path).read_text(errors="replace"),
            await trio.Path(err_path).read_text(errors="replace"),
            proxy.frames, model.requests, model.http_log, workdir, home,
            time.monotonic() - started)
    finally:
        if not keep_home:
            shutil.rmtree(home, ignore_errors=True)
    if returncode is None:
        raise CodexTimeout(run)
    return run


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m support.codex_harness [--version V] [--server URL] CMD...``"""
    import argparse

    ap = argparse.ArgumentParser(description="Run the real codex exec against an exec-server.")
    ap.add_argument("--version", default="0.169", choices=CODEX_VERSIONS)
    ap.add_argument("--server", help="exec-server URL (default: start a reference of --version)")
    ap.add_argument("--server-version", choices=CODEX_VERSIONS,
                    help="reference exec-server version if --server is absent")
    ap.add_argument("--tty", action="store_true")
    ap.add_argument("--sandbox-mode", default="danger-full-access",
                    help="config sandbox_mode; 'default' leaves it to codex")
    ap.add_argument("cmd", nargs="*", default=["echo hello from harness"])
    ns = ap.parse_args(argv)
    sandbox_mode = None if ns.sandbox_mode == "default" else ns.sandbox_mode

    async def go() -> None:
        script: list[ScriptItem] = [*(shell(c, tty=ns.tty) for c in ns.cmd), Say("done")]
        handle = None
        url = ns.server
        if not url:
            kind = {"0.120": servers.REFERENCE, "0.169": servers.REFERENCE_0169,
                    "0.171": servers.REFERENCE_0171}[
                ns.server_version or ns.version]
            handle = servers.launch(kind)
            url = handle.url
        try:
            run = await run_codex_exec(url, script, codex_version=ns.version,
                                       sandbox_mode=sandbox_mode)
        finally:
            if handle is not None:
                handle.stop()
        print(run.frame_log())
        print("rc", run.returncode, "final:", run.final_message, f"({run.elapsed:.2f} s)")
        print("model http:", run.http_log)
        print("tool outputs:", json.dumps(run.tool_output_texts())[:2000])
        if run.returncode:
            print(run.stderr[-3000:])

    trio.run(go)


if __name__ == "__main__":
    main()
