"""The token rules of the upgrade, held to codex's own exec-server (differential).

The same raw upgrade requests go to trio-exec (`--auth-token-file`, `--auth-token-sha256`) and
to the reference exec-servers 0.169 and 0.171 (`--ws-auth capability-token --ws-token-file`,
`--ws-token-sha256`): each `Authorization` variant must be accepted (101) or refused (401) by
both alike. Then what only trio-exec does: the token file re-read on SIGHUP, and no token (nor
its digest) in any log line.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
from support import servers

from trio_exec.ws.auth import offered_token

pytestmark = pytest.mark.reference

TOKEN = "sekret-token-123456"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()

#: Authorization header lines (None: no header), as codex's server was probed to treat them.
VARIANTS: dict[str, list[str] | None] = {
    "exact": [f"Bearer {TOKEN}"],
    "lower-case scheme": [f"bearer {TOKEN}"],
    "upper-case scheme": [f"BEARER {TOKEN}"],
    "mixed-case scheme": [f"BeArEr {TOKEN}"],
    "two spaces": [f"Bearer  {TOKEN}"],
    "space then tab": [f"Bearer \t{TOKEN}"],
    "space, tab, space": [f"Bearer \t {TOKEN}"],
    "trailing blanks": [f"Bearer {TOKEN} \t "],
    "tab instead of space": [f"Bearer\t{TOKEN}"],
    "tab then space": [f"Bearer\t {TOKEN}"],
    "no separator": [f"Bearer{TOKEN}"],
    "wrong token": ["Bearer nope"],
    "token alone": [TOKEN],
    "Basic scheme": [f"Basic {TOKEN}"],
    "a prefix of the token": [f"Bearer {TOKEN[:-1]}"],
    "token plus a byte": [f"Bearer {TOKEN}x"],
    "two words": [f"Bearer {TOKEN} x"],
    "empty token": ["Bearer "],
    "no header": None,
    "right one first": [f"Bearer {TOKEN}", "Bearer nope"],
    "right one second": ["Bearer nope", f"Bearer {TOKEN}"],
}


async def upgrade_status(url: str, authorization: list[str] | None) -> int:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    head = (f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n")
    for value in authorization or []:
        head += f"Authorization: {value}\r\n"
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all((head + "\r\n").encode())
        answer = b""
        while b"\r\n" not in answer:
            data = await stream.receive_some(4096)
            assert data, f"closed without a status line after {answer!r}"
            answer += data
    return int(answer.split(b" ", 2)[1])


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "token"
    path.write_text(f"{TOKEN}\n")
    return path.resolve()


def _launched(kind: str, *flags: str, reference_args: tuple[str, ...] = ()
              ) -> Iterator[servers.ServerHandle]:
    try:
        handle = servers.launch(kind, *flags, reference_args=reference_args)
    except servers.ServerStartError as exc:
        if servers.skip_reference():
            pytest.skip(str(exc))
        pytest.fail(str(exc), pytrace=False)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module", params=["file", "sha256"])
def servers_pair(request: pytest.FixtureRequest, token_file: Path
                 ) -> Iterator[list[servers.ServerHandle]]:
    """trio-exec and the 0.169 and 0.171 references, all with the same token."""
    if request.param == "file":
        ours: tuple[str, ...] = ("--auth-token-file", str(token_file))
        theirs: tuple[str, ...] = ("--ws-auth", "capability-token", "--ws-token-file",
                                   str(token_file))
    else:
        ours = ("--auth-token-sha256", DIGEST.upper())
        theirs = ("--ws-auth", "capability-token", "--ws-token-sha256", DIGEST.upper())
    handles = []
    generators = [_launched(servers.TRIO_EXEC, *ours)] + [
        _launched(kind, reference_args=theirs) for kind in servers.REFERENCES_0169_DIALECT]
    try:
        for generator in generators:
            handles.append(next(generator))
        yield handles
    finally:
        for generator in generators:
            generator.close()


@pytest.mark.parametrize("variant", list(VARIANTS))
async def test_authorization_header_is_read_as_codex_reads_it(
    servers_pair: list[servers.ServerHandle], variant: str
) -> None:
    with trio.fail_after(20):
        statuses = {handle.kind: await upgrade_status(handle.url, VARIANTS[variant])
                    for handle in servers_pair}
    assert set(statuses.values()) <= {101, 401}, statuses
    assert len(set(statuses.values())) == 1, statuses
    header = VARIANTS[variant]
    expected = header is not None and offered_token(header[0]) == TOKEN
    assert statuses[servers.TRIO_EXEC] == (101 if expected else 401), statuses


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--auth-token-sha256", "abc"],
         "Error: --auth-token-sha256 must be the 64 hex digits of a SHA-256 digest"),
        (["--auth-token-sha256", "z" * 64],
         "Error: --auth-token-sha256 must be the 64 hex digits of a SHA-256 digest"),
        (["--auth-token-sha256", DIGEST, "--auth-token-file", "/dev/null"],
         "Error: give the token either as --auth-token-file or --auth-token-sha256"),
    ],
)
def test_a_bad_token_digest_is_one_line_and_exit_2(flags: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "trio_exec", "serve", *flags],
                          capture_output=True, text=True, timeout=20)
    assert (done.returncode, done.stderr.splitlines()) == (2, [message])


async def reloaded(handle: servers.ServerHandle, times: int) -> None:
    with trio.fail_after(10):
        while handle.stderr_text().count("reload done") < times:  # noqa: ASYNC110 (a log file)
            await trio.sleep(0.01)


async def test_sighup_rereads_the_token_file_and_no_token_is_ever_logged(tmp_path: Path) -> None:
    """SIGHUP re-reads the token file: the new token opens, the old one no longer does; a file
    that became unusable keeps the current token (a warning naming the setting). At DEBUG, with
    right and wrong tokens offered, neither token nor digest appears in the log."""
    token = tmp_path / "token"
    token.write_text("first-token-value\n")
    secrets = ["first-token-value", "second-token-value", "wrong-token-value"]
    for handle in _launched(servers.TRIO_EXEC, "--auth-token-file", str(token),
                            "--log-level", "DEBUG"):
        with trio.fail_after(30):
            assert await upgrade_status(handle.url, ["Bearer first-token-value"]) == 101
            token.write_text("second-token-value\n")
            handle.proc.send_signal(signal.SIGHUP)
            await reloaded(handle, 1)
            assert await upgrade_status(handle.url, ["Bearer second-token-value"]) == 101
            assert await upgrade_status(handle.url, ["Bearer first-token-value"]) == 401
            assert await upgrade_status(handle.url, ["Bearer wrong-token-value"]) == 401
            token.write_text("two words\n")
            handle.proc.send_signal(signal.SIGHUP)
            await reloaded(handle, 2)
            assert await upgrade_status(handle.url, ["Bearer second-token-value"]) == 101
        log = handle.stderr_text()
        assert "reload: --auth-token-file re-read, token changed" in log
        assert ("reload: --auth-token-file must hold one token of printable ASCII, no spaces; "
                "keeping the current setting") in log
        for secret in secrets:
            assert secret not in log
            assert hashlib.sha256(secret.encode()).hexdigest() not in log.lower()
