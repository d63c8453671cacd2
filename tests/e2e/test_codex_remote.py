"""The recipes of docs/remote.md, each run with the real codex 0.171 client.

Every test writes the `$CODEX_HOME/environments.toml` the guide shows (with the test's URL and
token) and runs `codex exec` with a scripted fake model (`support/codex_harness.py`). The command
prints its `$PPID`: the daemon's pid proves it ran remotely, any other pid that it ran on the
client's machine. Recipes: a token over `ws://`; `wss://` with a private CA through
`SSL_CERT_FILE`, also across a dropped connection; `include_local = false`, without which a
refused token (401) silently runs commands locally; `CODEX_EXEC_SERVER_URL`, which carries no
token and is ignored once the toml exists.
"""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support import servers
from support.codex_harness import CodexRun, Frame, Say, run_codex_exec, shell
from support.pki import Pki, make_pki
from support.servers import ServerHandle

pytestmark = pytest.mark.reference

VERSION = "0.171"
RUN_LIMIT = 40.0
TOKEN = "devbox-token-4f9a1c"
NO_REMOTE = "No usable execution environment is available"


def recipe(url: str, token: str | None = TOKEN, *, include_local: bool | None = False) -> str:
    """The environments.toml of docs/remote.md (`include_local = None`: the line left out)."""
    lines = ['default = "devbox"']
    if include_local is not None:
        lines.append(f"include_local = {'true' if include_local else 'false'}")
    lines += ["", "[[environments]]", 'id = "devbox"', f'url = "{url}"']
    if token is not None:
        lines.append(f'auth_bearer_token = "{token}"')
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def token_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    token = tmp_path_factory.mktemp("token") / "token"
    token.write_text(TOKEN + "\n")
    handle = servers.launch(servers.TRIO_EXEC, "--auth-token-file", str(token))
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def wss_daemon(pki: Pki) -> Iterator[ServerHandle]:
    handle = servers.launch(
        servers.TRIO_EXEC, "--listen", "wss://127.0.0.1:0", "--tls-cert", str(pki.cert_file),
        "--tls-key", str(pki.key_file), "--auth-token-sha256",
        __import__("hashlib").sha256(TOKEN.encode()).hexdigest())
    try:
        yield handle
    finally:
        handle.stop()


async def codex(url: str, script: list[Any], work: Path, **kwargs: Any) -> CodexRun:
    kwargs.setdefault("exec_server_url_env", False)
    with trio.fail_after(RUN_LIMIT + 10):
        return await run_codex_exec(url, script, codex_version=VERSION, cwd=work,
                                    base_dir=work.parent, sandbox_mode=None,
                                    extra_args=("-s", "danger-full-access"),
                                    time_limit=RUN_LIMIT, **kwargs)


def workdir(tmp_path: Path) -> Path:
    work = (tmp_path / "work").resolve()
    work.mkdir(parents=True)
    return work


PPID = "echo ran-as-child-of=$PPID; touch marker"


def ran_under(result: CodexRun) -> int | None:
    found = re.search(r"ran-as-child-of=(\d+)", " ".join(result.tool_output_texts()))
    return int(found.group(1)) if found else None


async def test_token_over_ws(token_daemon: ServerHandle, tmp_path: Path) -> None:
    """Recipe 1: `url = "ws://…"` and `auth_bearer_token`: the command runs on the daemon."""
    work = workdir(tmp_path)
    result = await codex(token_daemon.url, [shell(PPID), Say("done")], work,
                         environments_toml=recipe("{url}"))
    why = result.report()
    assert result.returncode == 0, why
    assert ran_under(result) == token_daemon.pid, why
    assert len(result.requests("process/start")) == 1, why
    assert (work / "marker").exists()


async def test_a_refused_token_runs_locally_unless_include_local_is_false(
    token_daemon: ServerHandle, tmp_path: Path
) -> None:
    """The hazard: a wrong token gets 401. With `include_local = false` the tool call fails
    (the model is told no environment is usable); with the default (`include_local` left out)
    codex runs the command on its own machine, and the turn succeeds (the 401 is only a WARN
    log line of the client)."""
    # straight to the daemon: the 401 comes from it, as a user would get it
    url = token_daemon.url
    work = workdir(tmp_path / "closed")
    closed = await codex(url, [shell(PPID), Say("done")], work, use_proxy=False,
                         environments_toml=recipe(url, token="not-the-token"))
    why = closed.report()
    assert NO_REMOTE in closed.tool_output_texts()[0], why
    assert ran_under(closed) is None and not (work / "marker").exists(), why

    work = workdir(tmp_path / "open")
    fallback = await codex(url, [shell(PPID), Say("done")], work, use_proxy=False,
                           environments_toml=recipe(url, token="not-the-token",
                                                    include_local=None))
    why = fallback.report()
    assert fallback.returncode == 0, why
    local = ran_under(fallback)
    assert local is not None and local != token_daemon.pid, why   # codex's own child
    assert (work / "marker").exists()
    assert fallback.final_message == "done", why   # the turn succeeds as if nothing happened


async def test_wss_with_a_private_ca_through_ssl_cert_file(
    wss_daemon: ServerHandle, pki: Pki, tmp_path: Path
) -> None:
    """Recipe 2: `url = "wss://…"`, the private CA in `SSL_CERT_FILE`, straight to the daemon
    (no proxy). Without `SSL_CERT_FILE` codex does not trust it and, with `include_local =
    false`, runs nothing."""
    work = workdir(tmp_path / "trusted")
    result = await codex(wss_daemon.url, [shell(PPID), Say("done")], work, use_proxy=False,
                         environments_toml=recipe(wss_daemon.url),
                         extra_env={"SSL_CERT_FILE": str(pki.ca_file)})
    why = result.report()
    assert result.returncode == 0, why
    assert ran_under(result) == wss_daemon.pid, why

    work = workdir(tmp_path / "untrusted")
    refused = await codex(wss_daemon.url, [shell(PPID), Say("done")], work, use_proxy=False,
                          environments_toml=recipe(wss_daemon.url))
    assert NO_REMOTE in refused.tool_output_texts()[0], refused.report()
    assert not (work / "marker").exists()


LINES = 8


def _cut_at_line_3(frame: Frame) -> bool:
    return frame.direction == "s>c" and "line-3\n" in frame.output_text()


async def test_wss_drop_and_resume(wss_daemon: ServerHandle, pki: Pki, tmp_path: Path) -> None:
    """Over TLS end to end (codex → wss proxy → wss daemon), the proxy loses the frame of
    `line-3` and drops the connection mid-command: codex reconnects over a new TLS connection,
    resumes the session and catches up; every line reaches the model once, the command is
    started once."""
    work = workdir(tmp_path)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(pki.cert_file, pki.key_file)
    upstream = ssl.create_default_context(cafile=str(pki.ca_file))
    command = f"for i in $(seq 1 {LINES}); do echo line-$i; sleep 0.25; done"
    result = await codex(wss_daemon.url, [shell(command, yield_time_ms=20000), Say("done")], work,
                         proxy_ssl=(server_side, upstream), environments_toml=recipe("{url}"),
                         extra_env={"SSL_CERT_FILE": str(pki.ca_file)},
                         cut_when=_cut_at_line_3, cut_drops_frame=True, reconnect_delay=0.8)
    why = result.report()
    assert result.returncode == 0, why
    assert result.connections() == [1, 2], why
    assert len(result.requests("process/start")) == 1, why
    init1 = result.requests("initialize", conn=1)[0]
    session_id = result.response_to(init1, conn=1)["result"]["sessionId"]
    (init2,) = result.requests("initialize", conn=2)
    assert init2["params"]["resumeSessionId"] == session_id, why
    assert result.response_to(init2, conn=2)["result"]["sessionId"] == session_id, why
    read = result.requests("process/read", conn=2)[0]
    caught_up = result.response_to(read, conn=2)["result"]
    text = "".join(base64.b64decode(c["chunk"]).decode() for c in caught_up["chunks"])
    assert text.startswith("line-3\n"), why
    (out,) = result.tool_output_texts()
    assert re.findall(r"^line-\d+$", out, re.MULTILINE) == [
        f"line-{i}" for i in range(1, LINES + 1)], why


async def test_codex_exec_server_url_carries_no_token_and_yields_to_the_toml(
    token_daemon: ServerHandle, tmp_path: Path
) -> None:
    """`CODEX_EXEC_SERVER_URL` alone cannot reach a daemon that wants a token (no way to give
    one: the command never reaches the daemon); and when environments.toml exists the
    variable is ignored: here it names a dead port, and the toml's daemon runs the command."""
    work = workdir(tmp_path / "env-only")
    env_only = await codex(token_daemon.url, [shell(PPID), Say("done")], work,
                           exec_server_url_env=True, use_proxy=False)
    assert ran_under(env_only) != token_daemon.pid, env_only.report()

    with trio.socket.socket() as unused:
        await unused.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{unused.getsockname()[1]}"
    work = workdir(tmp_path / "both")
    both = await codex(token_daemon.url, [shell(PPID), Say("done")], work,
                       environments_toml=recipe("{url}"),
                       extra_env={"CODEX_EXEC_SERVER_URL": dead})
    why = both.report()
    assert both.returncode == 0, why
    assert ran_under(both) == token_daemon.pid, why
