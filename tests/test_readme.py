"""The README's commands and its Python example, run as a newcomer pastes them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import trio

from trio_exec.config import Config, ListenAddress
from trio_exec.server import serve

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
EXAMPLE_URL = "ws://127.0.0.1:8765"


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_set_up_is_two_commands_and_every_example_uses_the_port_it_serves() -> None:
    block = fenced(section("Set up"), "sh")[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert commands == [f"./scripts/serve --listen {EXAMPLE_URL}", "./scripts/test"]
    assert set(re.findall(r"ws://127\.0\.0\.1:\d+", README)) == {EXAMPLE_URL}
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("exec ./scripts/test")


async def test_the_python_example_prints_what_the_readme_says(tmp_path: Path) -> None:
    """The example runs against a daemon (its URL put in place of the README's) in a fresh
    interpreter, with its temporary directory in `tmp_path`."""
    use = section("Use it from Python")
    [code], [printed] = fenced(use, "python"), fenced(use, "text")
    assert code.count(EXAMPLE_URL) == 1
    config = Config(listen=ListenAddress(host="127.0.0.1", port=0), ping_interval=None)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(serve, config)
        assert address is not None
        with trio.fail_after(30):
            done = await trio.run_process(
                [sys.executable, "-c", code.replace(EXAMPLE_URL, address.url)],
                env={**os.environ, "TMPDIR": str(tmp_path)},
                capture_stdout=True, capture_stderr=True, check=False,
            )
        nursery.cancel_scope.cancel()
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == printed
    assert (tmp_path / "trio-exec-example.txt").read_bytes() == b"written through trio-exec\n"


def test_the_test_script_skips_the_references_and_npm_when_told_to(tmp_path: Path) -> None:
    """`TRIO_EXEC_SKIP_REFERENCE=1 ./scripts/test` (here on one test file) never calls npm,
    which would be needed for the reference servers missing from an empty cache."""
    tripwire = tmp_path / "bin" / "npm"
    tripwire.parent.mkdir()
    tripwire.write_text("#!/bin/sh\necho 'npm was called' >&2\nexit 97\n")
    tripwire.chmod(0o755)
    env = {**os.environ, "PATH": f"{tripwire.parent}:{os.environ['PATH']}",
           "TRIO_EXEC_REF_CACHE": str(tmp_path / "empty-cache")}
    without_skip = subprocess.run([ROOT / "scripts" / "install-reference"], env=env,
                                  capture_output=True, text=True, timeout=60)
    assert without_skip.returncode == 97, "the tripwire must catch an npm call"
    done = subprocess.run(
        [ROOT / "scripts" / "test", "-q", "-p", "no:cacheprovider", "tests/test_packaging.py"],
        env={**env, "TRIO_EXEC_SKIP_REFERENCE": "1"}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "npm was called" not in done.stderr
