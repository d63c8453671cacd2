"""A directory outside every writable root the sandbox policies grant (`/tmp` is one; `/var/tmp`
is not), holding one readable file, removed afterwards."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def outside_directory(tag: str) -> Iterator[Path]:
    path = Path(f"/var/tmp/trio-exec-{tag}-{os.getpid()}")
    path.mkdir(exist_ok=True)
    (path / "readable").write_text("from outside\n")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
