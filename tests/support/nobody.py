"""Running Python code as the unprivileged user `nobody`, wherever the checkout lives.

The suite runs as root; permission errors are tested in a child that drops to nobody with
`setpriv`. That child must import trio and trio_exec, but the checkout and its virtualenv may
sit under a directory only root can traverse (a CI clone in a private temporary directory).
So the child imports from a world-readable snapshot of every package this test process has
loaded from outside the standard library (the project itself included), made once per run.
"""

from __future__ import annotations

import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trio_exec
import trio_exec.fs.local
import trio_exec.process.spawn
import trio_exec.sandbox.confine

NOBODY = 65534


def _package_roots() -> set[Path]:
    """Top-level packages and modules loaded from site-packages or the project."""
    bases = [
        Path(sysconfig.get_paths()["purelib"]).resolve(),
        Path(sysconfig.get_paths()["platlib"]).resolve(),
        Path(trio_exec.__file__).resolve().parent.parent,
    ]
    roots: set[Path] = set()
    for module in list(sys.modules.values()):
        origin = getattr(module, "__file__", None)
        if not origin:
            continue
        path = Path(origin).resolve()
        for base in bases:
            if path.is_relative_to(base) and path != base:
                roots.add(base / path.relative_to(base).parts[0])
                break
    return roots


@contextmanager
def importable_snapshot() -> Iterator[Path]:
    """A 0755 directory in /var/tmp holding copies of the loaded packages (for PYTHONPATH)."""
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="trio-exec-nobody-") as name:
        root = Path(name)
        root.chmod(0o755)
        for source in _package_roots():
            target = root / source.name
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, target)
        yield root


def nobody_argv(code: str, *args: str) -> list[str]:
    """argv running `code` as nobody, isolated from the (possibly unreadable) venv paths."""
    return [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        sys.executable, "-s", "-c", code, *args,
    ]
