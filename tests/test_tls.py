"""TLS on the daemon's own port: `--listen wss://…` with `--tls-cert`/`--tls-key`.

Real TLS over real sockets, with private CAs made by trustme (`support/pki.py`): the server
certificate is issued by an intermediate, so the daemon must send the chain. Our client and
`trio-exec exec` verify by default (system store, `--ca-file`, `SSL_CERT_FILE`); SIGHUP swaps
the certificate and the token file in without dropping a session.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
from support import servers
from support.pki import Pki, install_files, make_pki

from trio_exec.client import ConnectFailed, open_client
from trio_exec.config import Config, ListenAddress
from trio_exec.server import serve

TIMEOUT = 30
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
EXEC = [servers.trio_exec_python(), "-m", "trio_exec", "exec"]


@asynccontextmanager
async def wss_daemon(pki: Pki, **settings: object) -> AsyncIterator[str]:
    """An in-process daemon on wss://127.0.0.1:0; yields its URL."""
    config = Config(
        listen=ListenAddress(host="127.0.0.1", port=0, tls=True), ping_interval=None,
        shutdown_grace=2.0, tls_cert_file=str(pki.cert_file), tls_key_file=str(pki.key_file),
        **settings,  # type: ignore[arg-type]
    )
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, config)
        try:
            yield address.url
        finally:
            nursery.cancel_scope.cancel()


async def echo(url: str, text: str, **client: object) -> bytes:
    async with open_client(url, **client) as ec:  # type: ignore[arg-type]
        process = await ec.process_start(["/bin/echo", text], cwd="/", env=ENV)
        data = b"".join([chunk.data async for chunk in process.output()])
        assert await process.wait() == 0
        return data


async def https_get(url: str, ca_file: Path, target: str) -> bytes:
    host, port = url.removeprefix("wss://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    stream = await trio.open_ssl_over_tcp_stream(host, int(port), ssl_context=context)
    async with stream:
        await stream.send_all(f"GET {target} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        return await stream.receive_some(4096)


async def served_certificate(url: str, ca_file: Path) -> str:
    """The SHA-256 of the certificate a fresh connection is served."""
    host, port = url.removeprefix("wss://").rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    stream = await trio.open_ssl_over_tcp_stream(host, int(port), ssl_context=context)
    async with stream:
        await stream.do_handshake()
        der = stream.getpeercert(binary_form=True)
    return hashlib.sha256(der).hexdigest()


async def test_wss_serves_sessions_and_readyz_on_one_port_with_the_chain(tmp_path: Path) -> None:
    """The client trusts only the root CA: the handshake succeeds only because the daemon
    sends the intermediate after its certificate."""
    pki = make_pki(tmp_path / "pki")
    with trio.fail_after(TIMEOUT):
        async with wss_daemon(pki) as url:
            assert url.startswith("wss://127.0.0.1:")
            assert await echo(url, "over tls", ca_file=str(pki.ca_file)) == b"over tls\n"
            assert (await https_get(url, pki.ca_file, "/readyz")).startswith(b"HTTP/1.1 200 ")
            assert await served_certificate(url, pki.ca_file) == pki.leaf_sha256()


async def test_the_client_verifies_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    """No CA given: the system store does not know the private CA, so the connection fails
    naming the verification; `SSL_CERT_FILE` (as for codex) or `ca_file` makes it work; a
    trusted certificate for another name is refused."""
    pki = make_pki(tmp_path / "pki")
    elsewhere = make_pki(tmp_path / "other", "other.example")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with trio.fail_after(TIMEOUT):
        async with wss_daemon(pki) as url:
            with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await echo(url, "x", reconnect=None)
            monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_file))
            assert await echo(url, "via SSL_CERT_FILE") == b"via SSL_CERT_FILE\n"
        async with wss_daemon(elsewhere) as url:
            with pytest.raises(ConnectFailed, match=r"IP address mismatch, certificate is not valid for .127\.0\.0\.1"):
                await echo(url, "x", ca_file=str(elsewhere.ca_file), reconnect=None)


async def test_a_plain_client_on_the_tls_port_is_one_info_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Plain HTTP on the TLS port: the handshake fails, one INFO line, no traceback, and the
    daemon keeps serving TLS clients."""
    pki = make_pki(tmp_path / "pki")
    caplog.set_level(logging.INFO)
    with trio.fail_after(TIMEOUT):
        async with wss_daemon(pki) as url:
            host, port = url.removeprefix("wss://").rsplit(":", 1)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                await stream.send_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = b""
                with trio.move_on_after(10):
                    while data := await stream.receive_some(4096):
                        answer += data
            assert b"HTTP/1.1" not in answer  # at most a TLS alert, never a plain reply
            assert await echo(url, "still", ca_file=str(pki.ca_file)) == b"still\n"
    failures = [r for r in caplog.records if "TLS handshake" in r.getMessage()]
    assert [r.levelno for r in failures] == [logging.INFO], caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _serve_wss(pki: Pki, *flags: str) -> servers.ServerHandle:
    return servers.launch(
        servers.TRIO_EXEC, "--listen", "wss://127.0.0.1:0", "--tls-cert", str(pki.cert_file),
        "--tls-key", str(pki.key_file), "--log-level", "INFO", *flags,
    )


async def reloaded(handle: servers.ServerHandle, times: int) -> None:
    """Wait until the daemon logged the end of its `times`-th reload."""
    with trio.fail_after(10):
        while handle.stderr_text().count("reload done") < times:  # noqa: ASYNC110 (a log file)
            await trio.sleep(0.01)


async def test_sighup_swaps_certificate_and_token_without_dropping_a_session(
    tmp_path: Path,
) -> None:
    """A renewal in place: new certificate files (another CA) and a new token, then SIGHUP.
    New connections get the new certificate and need the new token; the session opened
    before keeps its connection and its running `cat`. A certificate file that no longer
    loads at the next SIGHUP is logged and the current one keeps serving."""
    live = make_pki(tmp_path / "live")
    first_ca = tmp_path / "first-ca.pem"
    first_ca.write_bytes(live.ca_file.read_bytes())
    token = tmp_path / "token"
    token.write_text("first-token\n")
    handle = _serve_wss(live, "--auth-token-file", str(token))
    try:
        with trio.fail_after(TIMEOUT):
            async with open_client(handle.url, ca_file=str(first_ca), auth_token="first-token",
                                   ping_interval=None) as client:
                cat = await client.process_start(["cat"], cwd="/", env=ENV, pipe_stdin=True)
                await cat.write(b"before\n")
                assert (await cat.receive()).data == b"before\n"  # type: ignore[union-attr]

                renewed = make_pki(tmp_path / "renewed")
                install_files(renewed, live)
                token.write_text("second-token\n")
                handle.proc.send_signal(signal.SIGHUP)
                await reloaded(handle, 1)

                assert await served_certificate(handle.url, renewed.ca_file) == renewed.leaf_sha256()
                assert await echo(handle.url, "new", ca_file=str(renewed.ca_file),
                                  auth_token="second-token") == b"new\n"
                with pytest.raises(ConnectFailed, match="HTTP 401"):
                    await echo(handle.url, "x", ca_file=str(renewed.ca_file),
                               auth_token="first-token", reconnect=None)
                with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                    await echo(handle.url, "x", ca_file=str(first_ca), auth_token="second-token",
                               reconnect=None)

                # the session from before the reload is still attached on its connection
                assert client.connections == 1
                await cat.write(b"after\n")
                assert (await cat.receive()).data == b"after\n"  # type: ignore[union-attr]

                live.cert_file.write_text("not a certificate\n")
                handle.proc.send_signal(signal.SIGHUP)
                await reloaded(handle, 2)
                assert await served_certificate(handle.url, renewed.ca_file) == renewed.leaf_sha256()
                await cat.write(b"", close_stdin=True)
                assert await cat.wait() == 0
        assert handle.alive()
        log = handle.stderr_text()
        assert "reload: --tls-cert re-read, serving the certificate with SHA-256 " \
            f"{renewed.leaf_sha256()}" in log
        assert "reload: --auth-token-file re-read, token changed" in log
        assert "reload: cannot load --tls-cert/--tls-key" in log
        assert "keeping the current setting" in log
        assert "Traceback" not in log
    finally:
        handle.stop()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--listen", "wss://127.0.0.1:0"], "Error: --listen wss://… needs --tls-cert and --tls-key"),
        (["--tls-cert", "{cert}", "--tls-key", "{key}"],
         "Error: --tls-cert needs a `wss://` --listen URL"),
        (["--listen", "wss://127.0.0.1:0", "--tls-cert", "{cert}"],
         "Error: --tls-cert and --tls-key go together; --tls-key is missing"),
        (["--listen", "wss://127.0.0.1:0", "--tls-cert", "{missing}", "--tls-key", "{key}"],
         "Error: cannot read --tls-cert: No such file or directory"),
        (["--listen", "wss://127.0.0.1:0", "--tls-cert", "{cert}", "--tls-key", "{missing}"],
         "Error: cannot read --tls-key: No such file or directory"),
        (["--listen", "wss://127.0.0.1:0", "--tls-cert", "{key}", "--tls-key", "{cert}"],
         "Error: cannot load --tls-cert/--tls-key (a PEM certificate chain and its unencrypted "
         "PEM key): "),
    ],
)
def test_a_bad_tls_setting_is_one_line_and_exit_2(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    pki = make_pki(tmp_path / "pki")
    names = {"cert": str(pki.cert_file), "key": str(pki.key_file),
             "missing": str(tmp_path / "missing.pem")}
    argv = [sys.executable, "-m", "trio_exec", "serve", *(f.format(**names) for f in flags)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(message), line


async def run_exec(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    base = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    return await trio.run_process([*EXEC, *args], env={**base, **(env or {})},
                                  capture_stdout=True, capture_stderr=True, check=False)


async def test_trio_exec_exec_verifies_wss(tmp_path: Path) -> None:
    """`trio-exec exec` against a wss:// daemon: refused without a trusted CA (exit 255, the
    reason named), run with `--ca-file` or `SSL_CERT_FILE`; an unreadable `--ca-file` is a
    usage error (exit 2)."""
    pki = make_pki(tmp_path / "pki")
    with trio.fail_after(TIMEOUT * 2):
        async with wss_daemon(pki) as url:
            refused = await run_exec("--url", url, "--reconnect-window", "0", "--", "echo", "x")
            assert refused.returncode == 255
            assert b"CERTIFICATE_VERIFY_FAILED" in refused.stderr, refused.stderr
            done = await run_exec("--url", url, "--ca-file", str(pki.ca_file), "--",
                                  "echo", "with --ca-file")
            assert (done.returncode, done.stdout) == (0, b"with --ca-file\n"), done.stderr
            done = await run_exec("--url", url, "--", "echo", "with SSL_CERT_FILE",
                                  env={"SSL_CERT_FILE": str(pki.ca_file)})
            assert (done.returncode, done.stdout) == (0, b"with SSL_CERT_FILE\n"), done.stderr
            missing = await run_exec("--url", url, "--ca-file", str(tmp_path / "nope.pem"), "--",
                                     "true")
            assert missing.returncode == 2
            assert missing.stderr.decode().splitlines() == [
                "trio-exec exec: cannot use --ca-file: No such file or directory"]
