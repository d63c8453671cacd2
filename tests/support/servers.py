"""Launch the servers under test as child processes listening on ``127.0.0.1:0``.

Two kinds of server speak the 0.120 dialect of the exec-server protocol:

* ``trio-exec``: ``<venv python> -m trio_exec serve --listen ws://127.0.0.1:0 [flags]``.
* ``reference``: the codex-cli 0.120.0 binary, ``codex exec-server --listen ws://127.0.0.1:0``,
  run with a private, throw-away ``CODEX_HOME``.

Both print the bound URL (``ws://127.0.0.1:PORT``) as their first stdout line; the launcher
waits for that line (bounded), then drains the rest of stdout in a daemon thread so a chatty
server never blocks on a full pipe. stderr goes to a file kept for failure reports.

Resource handling: every launched server is stopped by :meth:`ServerHandle.stop` (SIGTERM,
a short grace period, then SIGKILL) and always reaped. The fixtures in ``tests/conftest.py``
call it at teardown. The benchmarks (``benchmarks/servers.py``) start their servers here too.

The reference binary is looked up under ``${TRIO_EXEC_REF_CACHE:-~/.cache/trio-exec-ref}``
(``npm install --prefix <cache>/v0120 @openai/codex@0.120.0`` puts it there; ``scripts/test``
does that on CI). A missing binary is an error unless ``TRIO_EXEC_SKIP_REFERENCE=1``.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import attrs

TRIO_EXEC = "trio-exec"
REFERENCE = "reference"
KINDS = (TRIO_EXEC, REFERENCE)

REFERENCE_VERSION = "0.120.0"
_REF_BIN_SUFFIX = (
    "v0120/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/codex/codex"
)
#: The codex-cli 0.169.0 exec-server, reference of the 0.169 dialect (docs/protocol-dialects.md).
REFERENCE_0169 = "reference-0.169"
REFERENCE_0169_VERSION = "0.169.0"
_REF_0169_BIN_SUFFIX = (
    "v0169/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
)

#: How long a server may take to print its URL.
STARTUP_TIMEOUT = 20.0
#: SIGTERM grace period at teardown before SIGKILL.
STOP_GRACE = 5.0


class ServerStartError(RuntimeError):
    """A server did not come up (exited, or printed no URL in time)."""


def reference_cache_dir() -> Path:
    env = os.environ.get("TRIO_EXEC_REF_CACHE")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "trio-exec-ref"


#: The codex-cli 0.171.0 exec-server: the 0.169 dialect plus one capability flag.
REFERENCE_0171 = "reference-0.171"
REFERENCE_0171_VERSION = "0.171.0"
_REF_0171_BIN_SUFFIX = (
    "v0171/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
)
#: The reference servers of the 0.169 dialect, oldest first.
REFERENCES_0169_DIALECT = (REFERENCE_0169, REFERENCE_0171)


def reference_binary() -> Path:
    """Where the reference codex binary is expected (it may be missing)."""
    return reference_cache_dir() / _REF_BIN_SUFFIX


def reference_0169_binary() -> Path:
    return reference_cache_dir() / _REF_0169_BIN_SUFFIX


def reference_0171_binary() -> Path:
    return reference_cache_dir() / _REF_0171_BIN_SUFFIX


def reference_binary_of(kind: str) -> Path:
    """The binary of reference server ``kind`` (it may be missing)."""
    return {
        REFERENCE: reference_binary,
        REFERENCE_0169: reference_0169_binary,
        REFERENCE_0171: reference_0171_binary,
    }[kind]()


def skip_reference() -> bool:
    return os.environ.get("TRIO_EXEC_SKIP_REFERENCE") == "1"


def missing_reference_message() -> str:
    return (
        f"reference server codex-cli {REFERENCE_VERSION} not found at {reference_binary()}; "
        f"install it with `npm install --prefix {reference_cache_dir() / 'v0120'} "
        f"@openai/codex@{REFERENCE_VERSION}` (or run ./scripts/test), "
        "or set TRIO_EXEC_SKIP_REFERENCE=1 to skip the reference runs"
    )


def trio_exec_python() -> str:
    """The interpreter that runs trio-exec: ``$TRIO_EXEC_VENV``'s, else the project's venv,
    else the running one."""
    venv_dir = os.environ.get("TRIO_EXEC_VENV")
    venv = Path(venv_dir) if venv_dir else Path(__file__).resolve().parents[2] / ".venv"
    python = venv / "bin" / "python"
    return str(python) if python.exists() else sys.executable


@attrs.define(eq=False)
class ServerHandle:
    """One running server child process.

    ``url`` is the URL the server printed; ``cwd`` is the directory it runs in (relative
    process ``cwd`` values resolve against it); ``stderr_path`` holds its stderr.
    """

    kind: str
    url: str
    cwd: Path
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    argv: list[str]
    _stdout_tail: list[bytes] = attrs.field(factory=list)
    _tmpdirs: list[tempfile.TemporaryDirectory[str]] = attrs.field(factory=list)

    @property
    def host(self) -> str:
        host = urlsplit(self.url).hostname
        assert host is not None
        return host

    @property
    def port(self) -> int:
        port = urlsplit(self.url).port
        assert port is not None
        return port

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def is_reference(self) -> bool:
        return self.kind in (REFERENCE, *REFERENCES_0169_DIALECT)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        """Stop the server (SIGTERM, grace, SIGKILL) and reap it. Idempotent."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            else:
                self.proc.wait()
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            for tmp in self._tmpdirs:
                tmp.cleanup()
            self._tmpdirs.clear()

    def __repr__(self) -> str:
        return f"<{self.kind} server {self.url} pid={self.proc.pid}>"


def _read_first_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ServerStartError(f"no URL on stdout within {timeout} s (got {buf!r})")
            if not sel.select(remaining):
                continue
            data = os.read(fd, 4096)
            if not data:
                raise ServerStartError(f"stdout closed before a URL line (got {buf!r})")
            buf += data
    os.set_blocking(fd, True)
    line, _, rest = buf.partition(b"\n")
    return line + b"\n" + rest


def _drain(stream: object, sink: list[bytes]) -> None:
    read = stream.read1  # type: ignore[attr-defined]
    try:
        while chunk := read(65536):
            sink.append(chunk)
            del sink[:-16]
    except (OSError, ValueError):
        pass


def launch(
    kind: str,
    *flags: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    reference_args: tuple[str, ...] = (),
    preexec_fn: Callable[[], None] | None = None,
) -> ServerHandle:
    """Start a server of ``kind`` on ``127.0.0.1:0`` and wait until it printed its URL.

    ``flags`` are extra CLI flags (trio-exec only, e.g. ``"--session-ttl", "2"``; a later
    ``--listen wss://127.0.0.1:0`` with a certificate serves TLS); ``reference_args`` are
    extra ``exec-server`` arguments of a reference server (e.g. its ``--ws-auth`` options).
    ``cwd`` defaults to a fresh temporary directory owned by the handle. ``preexec_fn`` runs
    in the child before the exec (the benchmarks raise limits there).
    """
    tmpdirs: list[tempfile.TemporaryDirectory[str]] = []
    if cwd is None:
        tmp = tempfile.TemporaryDirectory(prefix=f"{kind}-cwd-")
        tmpdirs.append(tmp)
        cwd = Path(tmp.name).resolve()
    child_env = dict(os.environ if env is None else env)
    if kind == TRIO_EXEC:
        argv = [trio_exec_python(), "-m", "trio_exec", "serve",
                "--listen", "ws://127.0.0.1:0", *flags]
        child_env.setdefault("PYTHONUNBUFFERED", "1")
    elif kind in (REFERENCE, *REFERENCES_0169_DIALECT):
        if flags:
            raise ValueError(f"the reference server takes no extra flags: {flags}")
        binary = reference_binary_of(kind)
        if not binary.exists():
            raise ServerStartError(missing_reference_message())
        home = tempfile.TemporaryDirectory(prefix="codex-home-")
        tmpdirs.append(home)
        child_env["CODEX_HOME"] = home.name
        argv = [str(binary), "exec-server", "--listen", "ws://127.0.0.1:0", *reference_args]
    else:
        raise ValueError(f"unknown server kind {kind!r}")

    stderr_file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - kept beyond this function
        prefix=f"{kind}-stderr-", suffix=".log", delete=False
    )
    stderr_path = Path(stderr_file.name)
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        preexec_fn=preexec_fn,
    )
    stderr_file.close()
    handle = ServerHandle(kind=kind, url="", cwd=cwd, proc=proc,
                          stderr_path=stderr_path, argv=argv, tmpdirs=tmpdirs)
    try:
        first = _read_first_line(proc, STARTUP_TIMEOUT)
    except ServerStartError as exc:
        handle.stop()
        raise ServerStartError(
            f"{kind} server failed to start: {exc}\n"
            f"argv: {argv}\nexit status: {proc.returncode}\nstderr:\n{handle.stderr_text()}"
        ) from None
    line, _, rest = first.partition(b"\n")
    url = line.decode(errors="replace").strip()
    if not url.startswith(("ws://127.0.0.1:", "wss://127.0.0.1:")):
        handle.stop()
        raise ServerStartError(
            f"{kind} server printed {url!r} as its first line, expected ws://127.0.0.1:PORT\n"
            f"stderr:\n{handle.stderr_text()}"
        )
    handle.url = url
    if rest:
        handle._stdout_tail.append(rest)
    threading.Thread(
        target=_drain, args=(proc.stdout, handle._stdout_tail), daemon=True,
        name=f"drain-{kind}-{proc.pid}",
    ).start()
    return handle
