"""The systemd unit's install instructions, run as written (in a scratch directory)."""

from __future__ import annotations

import getpass
import re
import subprocess
from pathlib import Path

from trio_exec.__main__ import build_parser, config_from_args

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "trio-exec.service"
CONFIG_DIR = "/etc/trio-exec"


def install_commands() -> list[str]:
    """The commands of the unit's `# Install` comment that make its configuration."""
    text = UNIT.read_text()
    block = text.split("# Install", 1)[1].split("\n#\n", 1)[0]
    commands = [line.removeprefix("#   ") for line in block.splitlines() if line.startswith("#   ")]
    return [command for command in commands if CONFIG_DIR in command]


def test_the_install_commands_work_where_the_directory_does_not_exist(tmp_path: Path) -> None:
    """Run on a fresh machine: no /etc/trio-exec yet, from a checkout. The token they make is
    one the daemon accepts, readable only by the unit's user; the configuration file they
    install is the one the unit names, and it names that token."""
    user = re.search(r"^User=(\S+)$", UNIT.read_text(), re.MULTILINE)
    assert user is not None
    root = tmp_path / "etc" / "trio-exec"
    script = "\n".join(
        command.replace(CONFIG_DIR, str(root)).replace(f"-o {user[1]}", f"-o {getpass.getuser()}")
        for command in install_commands()
    )
    assert "token" in script
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script],
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    token_file = root / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}\n", token_file.read_text())
    config_file = root / "config.toml"
    assert f'auth_token_file = "{CONFIG_DIR}/token"' in config_file.read_text()
    assert f"--config {CONFIG_DIR}/config.toml" in UNIT.read_text()
    args = build_parser().parse_args(
        ["serve", "--config", str(config_file), "--auth-token-file", str(token_file)]
    )
    assert config_from_args(args).auth_token_file == str(token_file)
    assert config_from_args(args).session_ttl == 120.0
