"""Start and stop the two servers, and read their memory figures.

Each server is a child of the bench, started on ``ws://127.0.0.1:0`` in a private temporary
directory with RLIMIT_NOFILE raised to its hard limit. ``stop()`` kills the server and then any
process it spawned that outlived it (children lead their own process groups, so killing the
server alone would leave e.g. ``sleep 1000`` behind).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import resource
import selectors
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIO_EXEC = "trio-exec"
REFERENCE = "reference"

STARTUP_TIMEOUT = 30.0
STOP_GRACE = 5.0


class ServerStartError(RuntimeError):
    pass


#: Servers not stopped yet; stopped at exit whatever happens (e.g. Ctrl-C mid-start).
_LIVE: set[Server] = set()


@atexit.register
def _stop_all() -> None:
    for server in list(_LIVE):
        server.stop()


def raise_nofile() -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE soft limit to the hard limit; return the limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


_prctl: Any = None
with contextlib.suppress(OSError, AttributeError):  # resolved here, not in the forked child
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def _preexec() -> None:
    raise_nofile()
    # Die with the bench, even if it is SIGKILLed (PR_SET_PDEATHSIG = 1).
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)


def reference_binary() -> Path:
    cache = Path(os.environ.get("TRIO_EXEC_REF_CACHE", Path.home() / ".cache" / "trio-exec-ref"))
    return cache / (
        "v0120/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex"
    )


def trio_exec_python() -> Path:
    venv = Path(os.environ.get("TRIO_EXEC_VENV", ROOT / ".venv"))
    return venv / "bin" / "python"


def _proc_stat(pid: int) -> tuple[int, int, int] | None:
    """(ppid, pgid, starttime) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[1]), int(fields[2]), int(fields[19])


def children_of(pid: int) -> list[tuple[int, int, int]]:
    """[(pid, pgid, starttime)] of the direct children of ``pid``."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = _proc_stat(int(name))
        if st is not None and st[0] == pid:
            out.append((int(name), st[1], st[2]))
    return out


def cpu_seconds(pid: int) -> float:
    """user+system CPU time of ``pid`` so far, in seconds (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0.0
    fields = data[data.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """VmRSS of ``pid`` in KiB (0 if unreadable)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One running server."""

    def __init__(self, kind: str, extra_args: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self._tmp = tempfile.TemporaryDirectory(prefix=f"bench-{kind}-")
        self.cwd = Path(self._tmp.name)
        env = dict(os.environ)
        if kind == TRIO_EXEC:
            argv = [str(trio_exec_python()), "-m", "trio_exec", "serve",
                    "--listen", "ws://127.0.0.1:0", *extra_args]
            env["PYTHONUNBUFFERED"] = "1"
            src = os.environ.get("TRIO_EXEC_BENCH_SRC")
            if src:  # run a snapshot of the package (``--rev``) instead of the working tree
                env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        elif kind == REFERENCE:
            binary = reference_binary()
            if not binary.exists():
                raise ServerStartError(
                    f"reference binary not found at {binary} (run ./scripts/install-reference)"
                )
            home = self.cwd / "codex-home"
            home.mkdir()
            env["CODEX_HOME"] = str(home)
            argv = [str(binary), "exec-server", "--listen", "ws://127.0.0.1:0", *extra_args]
        else:
            raise ValueError(kind)
        self.argv = argv
        self.stderr_path = self.cwd / "stderr.log"
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=err, preexec_fn=_preexec,
            )
        self._children: dict[int, tuple[int, int]] = {}
        _LIVE.add(self)
        try:
            line = self._first_line()
        except Exception:
            self.stop()
            raise
        self.url = line
        if not line.startswith("ws://127.0.0.1:"):
            self.stop()
            raise ServerStartError(f"{kind} printed {line!r}; stderr: {self.stderr_tail()}")
        self.host = "127.0.0.1"
        self.port = int(line.rsplit(":", 1)[1].strip("/"))
        threading.Thread(target=self._drain, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _first_line(self) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in buf:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerStartError(f"{self.kind}: no URL within {STARTUP_TIMEOUT}s")
                if sel.select(left):
                    data = os.read(fd, 4096)
                    if not data:
                        raise ServerStartError(
                            f"{self.kind} exited before printing its URL "
                            f"(status {self.proc.poll()}): {self.stderr_tail()}"
                        )
                    buf += data
        return buf.split(b"\n", 1)[0].decode(errors="replace").strip()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        try:
            while self.proc.stdout.read1(65536):  # type: ignore[attr-defined]
                pass
        except (OSError, ValueError):
            pass

    def stderr_tail(self, n: int = 2000) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def nofile_limit(self) -> str:
        try:
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return " ".join(line.split()[3:5])
        except OSError:
            pass
        return "?"

    def remember_children(self) -> None:
        """Record the server's current children so stop() can kill survivors."""
        for pid, pgid, start in children_of(self.pid):
            self._children[pid] = (pgid, start)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        _LIVE.discard(self)
        if self.proc.poll() is None:
            self.remember_children()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.remember_children()
                self.proc.kill()
                self.proc.wait()
        # Kill what the server spawned and left behind (verified by pid + start time).
        for pid, (pgid, start) in self._children.items():
            st = _proc_stat(pid)
            if st is None or st[2] != start:
                continue
            try:
                if pgid == pid:
                    os.killpg(pgid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        self._children.clear()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._tmp.cleanup()
