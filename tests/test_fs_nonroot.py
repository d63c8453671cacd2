"""Permission errors, as an unprivileged user: -32603 `Permission denied (os error 13)`.

The suite runs as root, which the kernel never refuses; so each case runs `LocalFilesystem`
in a child process that drops to nobody (`setpriv --reuid=65534 ...`) and reports the error it
got as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from support.nobody import nobody_argv

EACCES = {"code": -32603, "message": "Permission denied (os error 13)"}
OK = {"ok": True}

#: Runs in the child: read (method, args, kwargs) triples from argv[1], print one result each.
CHILD = """
import json, sys, trio
from trio_exec.fs import LocalFilesystem
from trio_exec.proto.errors import RpcError

async def main():
    fs = LocalFilesystem(cwd="/", tmpdir=None)
    out = []
    for method, args, kwargs in json.loads(sys.argv[1]):
        if method == "write_file":
            args[1] = args[1].encode()  # JSON has no bytes
        try:
            await getattr(fs, method)(*args, **kwargs)
            out.append({"ok": True})
        except RpcError as exc:
            out.append(exc.to_wire())
    print(json.dumps(out))

trio.run(main)
"""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to run a child as nobody",
)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can traverse (pytest's tmp_path is private to root)."""
    with tempfile.TemporaryDirectory(dir="/var/tmp") as name:
        root = Path(name)
        root.chmod(0o755)
        yield root


async def as_nobody(
    pythonpath: str, calls: list[tuple[str, list[Any], dict[str, Any]]]
) -> list[dict[str, Any]]:
    argv = nobody_argv(CHILD, json.dumps(calls))
    with trio.fail_after(20):
        done = await trio.run_process(
            argv, capture_stdout=True, capture_stderr=True, check=False,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": pythonpath},
        )
    assert done.returncode == 0, done.stderr.decode()
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


async def test_permission_denied_is_internal_error(
    shared_dir: Path, nobody_pythonpath: str
) -> None:
    secret = shared_dir / "secret"
    secret.mkdir(mode=0o700)
    (secret / "f").write_bytes(b"s")
    locked = shared_dir / "locked"
    locked.mkdir(mode=0o755)
    (locked / "f").write_bytes(b"l")
    private = shared_dir / "private"
    private.write_bytes(b"p")
    private.chmod(0o600)
    open_dir = shared_dir / "open"
    open_dir.mkdir()
    open_dir.chmod(0o777)
    s, lk, pv, od = str(secret), str(locked), str(private), str(open_dir)
    cases: list[tuple[tuple[str, list[Any], dict[str, Any]], dict[str, Any]]] = [
        (("read_file", [pv], {}), EACCES),
        (("read_file", [s + "/f"], {}), EACCES),
        (("get_metadata", [pv], {}), OK),  # stat needs no read permission
        (("get_metadata", [s + "/f"], {}), EACCES),
        (("read_directory", [s], {}), EACCES),
        (("write_file", [lk + "/new", ""], {}), EACCES),
        (("write_file", [pv, ""], {}), EACCES),
        (("create_directory", [lk + "/new"], {}), EACCES),
        (("create_directory", [lk + "/new"], {"recursive": False}), EACCES),
        (("remove", [lk + "/f"], {}), EACCES),
        (("remove", [s + "/f"], {}), EACCES),
        (("copy", [pv, od + "/copy"], {"recursive": False}), EACCES),
        (("copy", [od, lk + "/copy"], {"recursive": True}), EACCES),
        (("write_file", [od + "/mine", ""], {}), OK),
        (("read_file", [od + "/mine"], {}), OK),
    ]
    results = await as_nobody(nobody_pythonpath, [call for call, _ in cases])
    assert results == [expected for _, expected in cases]
    assert (locked / "f").read_bytes() == b"l"
    assert (secret / "f").read_bytes() == b"s"
