"""`trio-exec serve` as a child process of a test: the command, a bounded run, and the rule
that every daemon a test starts is gone, with its pipes closed, when the test leaves it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import AnyStr

SERVE = [sys.executable, "-m", "trio_exec", "serve"]


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """`serve` with `args`, to its end (20 s at most), its output captured as text."""
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=20)


@contextmanager
def reaped(proc: subprocess.Popen[AnyStr]) -> Iterator[subprocess.Popen[AnyStr]]:
    """Yields `proc`; afterwards it is killed if still alive, waited for, and its pipes closed."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
