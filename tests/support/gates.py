"""File gates: let a test decide when a child process moves on, without sleeping in the test.

A child script waits for a gate with :meth:`Gates.wait` (a shell snippet that polls for a file
every 10 ms, in the child); the test opens it with :meth:`Gates.open` once it has seen what it
needed (typically a ``process/output`` notification). This makes output chunk boundaries and
event order deterministic: each ``printf`` before a gate is its own pipe read.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import attrs


@attrs.define
class Gates:
    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / f"gate-{name}"

    def wait(self, name: str) -> str:
        """Shell snippet: block until gate ``name`` is open."""
        return f"until [ -e {shlex.quote(str(self.path(name)))} ]; do sleep 0.01; done"

    def open(self, name: str) -> None:
        self.path(name).touch()
