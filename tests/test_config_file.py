"""The configuration file (`serve --config`): layering, one-line errors, and the SIGHUP reload.

The daemons here are real child processes on 127.0.0.1:0, reloaded by a real SIGHUP.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import tomllib
from pathlib import Path

import pytest
import trio
from support.serve import SERVE, reaped, run_serve
from support.wsclient import connect

from trio_exec.__main__ import build_parser, settings_from_args
from trio_exec.config import SETTINGS, ConfigError, resolve

ROOT = Path(__file__).resolve().parents[1]


def test_the_file_sets_what_no_flag_gives_and_a_flag_wins(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("tok\n")
    config = tmp_path / "config.toml"
    config.write_text(
        'listen = "ws://127.0.0.1:8765"\nsession_ttl_seconds = 120\nretention_seconds = 5.5\n'
        'ping_interval_seconds = 0\nmax_message_size_bytes = "1MiB"\nread_pause_bytes = 4096\n'
        f'read_pause_requests = 3\nauth_token_file = "{token}"\nlog_level = "info"\n'
    )
    args = build_parser().parse_args(
        ["serve", "--config", str(config), "--session-ttl", "7", "--log-format", "json"]
    )
    settings = settings_from_args(args)
    assert settings.config.listen.url == "ws://127.0.0.1:8765"
    assert settings.config.session_ttl == 7.0  # the flag wins
    assert settings.config.retention == 5.5
    assert settings.config.ping_interval is None  # 0 disables
    assert settings.config.max_message_size == 1024 * 1024
    assert (settings.config.read_pause_bytes, settings.config.read_pause_requests) == (4096, 3)
    assert settings.config.auth_token_file == str(token)  # the daemon reads it when it starts
    assert (settings["log_level"], settings["log_format"]) == ("INFO", "json")
    assert settings.config.shutdown_grace == 10.0  # neither: the default


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("session_ttl_seconds = -1\n", "config.toml: session_ttl_seconds: must be a finite, non-negative number: -1"),
        ('retention_seconds = "soon"\n', "config.toml: retention_seconds: not a number of seconds: soon"),
        ("ping_timeout_seconds = 0\n", "config.toml: ping_timeout_seconds: must be positive: 0"),
        ("max_message_size_bytes = true\n", "config.toml: max_message_size_bytes: not a size: True"),
        ("read_pause_requests = 1.5\n", "config.toml: read_pause_requests: not a whole number: 1.5"),
        ('log_level = "loud"\n', "config.toml: log_level: unknown level `loud`; expected one of DEBUG, INFO, WARNING, ERROR"),
        ('log_format = "xml"\n', "config.toml: log_format: unknown format `xml`; expected one of text, json"),
        ('listen = "http://x:1"\n', "config.toml: listen: unsupported --listen URL `http://x:1`; expected `ws://HOST:PORT` or `wss://HOST:PORT`"),
        ("session_ttl = 5\n", "config.toml: unknown setting `session_ttl`"),
        ("session_ttl_seconds = \n", "config.toml: not valid TOML: Invalid value (at line 1, column 23)"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_setting_and_exit_2(
    tmp_path: Path, content: str, message: str
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(content)
    done = run_serve("--config", str(config))
    assert (done.returncode, done.stdout, done.stderr.splitlines()) == (2, "", [f"Error: {message}"])


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = run_serve("--config", str(tmp_path / "absent.toml"))
    assert (done.returncode, done.stderr.splitlines()) == (
        2, [f"Error: cannot read --config {tmp_path / 'absent.toml'}: No such file or directory"]
    )


def test_a_bad_value_in_the_file_is_refused_even_when_a_flag_overrides_it(tmp_path: Path) -> None:
    """The file is checked whole: a typo there is reported, not hidden by today's flags."""
    config = tmp_path / "config.toml"
    config.write_text("session_ttl_seconds = -3\n")
    with pytest.raises(ConfigError, match="session_ttl_seconds"):
        resolve({"session_ttl": 5.0}, str(config))


def test_serve_help_lists_every_setting_with_its_file_key() -> None:
    done = subprocess.run([*SERVE, "--help"], capture_output=True, text=True, timeout=20)
    flat = " ".join(done.stdout.split())
    for setting in SETTINGS:
        assert setting.flag in flat and f"[{setting.key}]" in flat, setting.name
    assert "--config" in flat


def test_every_setting_is_in_the_operations_guide_and_the_example_file(tmp_path: Path) -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    example = tomllib.loads((ROOT / "deploy" / "config.toml").read_text())
    commented = re.findall(r"^#\s*(\w+)\s*=", (ROOT / "deploy" / "config.toml").read_text(), re.M)
    for setting in SETTINGS:
        assert f"`{setting.flag}`" in guide and f"`{setting.key}`" in guide, setting.name
        assert setting.key in example or setting.key in commented, setting.key
    token = tmp_path / "token"
    token.write_text("t\n")
    example_config = resolve({"auth_token_file": str(token)}, str(ROOT / "deploy" / "config.toml"))
    assert example_config.config.session_ttl == 120.0


# --- SIGHUP --------------------------------------------------------------------------------


def _readline_until(stream: subprocess.Popen[str], pattern: str) -> list[str]:
    """stderr lines up to and including the first that matches (bounded by the test timeout)."""
    assert stream.stderr is not None
    seen = []
    while True:
        line = stream.stderr.readline()
        assert line, f"stderr ended before {pattern!r}: {seen}"
        seen.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return seen


def _start(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*SERVE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


async def _upgrade_status(url: str, token: str) -> bytes:
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        await stream.send_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
        )
        head = await stream.receive_some(4096)
    return head.split(b"\r\n", 1)[0]


async def test_sighup_reloads_the_token_and_limits_and_logs_what_changed(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first-token\n")
    config = tmp_path / "config.toml"
    config.write_text(f'auth_token_file = "{token}"\nsession_ttl_seconds = 30\nlog_level = "info"\n')
    notify_path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(notify_path)
        notify.settimeout(10)
        proc = _start("--config", str(config), "--retention", "9",
                      env={**os.environ, "NOTIFY_SOCKET": notify_path})
        with reaped(proc):
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            assert notify.recv(4096).startswith(b"READY=1")
            auth = [(b"authorization", b"Bearer first-token")]
            async with connect(url, extra_headers=auth) as held:
                await held.handshake()
                token.write_text("second-token\n")
                config.write_text(
                    f'auth_token_file = "{token}"\nsession_ttl_seconds = 60\n'
                    'log_level = "warning"\nretention_seconds = 1\nlisten = "ws://127.0.0.1:1"\n'
                )
                proc.send_signal(signal.SIGHUP)
                assert notify.recv(4096).startswith(b"RELOADING=1\nMONOTONIC_USEC=")
                assert notify.recv(4096) == b"READY=1"
                lines = _readline_until(proc, "nothing changed|listen .* next start")
                said = "\n".join(lines)
                assert "reload: session_ttl_seconds 30.0 -> 60.0" in said
                assert "reload: log_level INFO -> WARNING" in said
                assert "reload: --auth-token-file re-read, token changed" in said
                assert "reload: listen ws://127.0.0.1:0 -> ws://127.0.0.1:1 takes effect at the next start" in said
                assert "retention" not in said  # the flag still wins over the file
                assert "first-token" not in said and "second-token" not in said  # never a token
                assert await _upgrade_status(url, "first-token") == b"HTTP/1.1 401 Unauthorized"
                assert await _upgrade_status(url, "second-token") == b"HTTP/1.1 101 Switching Protocols"
                # the connection made before the reload goes on being served
                await held.assert_usable()
            # a reload that fails keeps the current settings
            config.write_text("session_ttl_seconds = -1\n")
            proc.send_signal(signal.SIGHUP)
            lines = _readline_until(proc, "reload refused")
            assert lines[-1].endswith(
                "reload refused, the current settings stay: config.toml: session_ttl_seconds: "
                "must be a finite, non-negative number: -1"
            )
            assert await _upgrade_status(url, "second-token") == b"HTTP/1.1 101 Switching Protocols"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
