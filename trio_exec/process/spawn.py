"""Spawning children, with pipes or with a PTY.

Rules (the contract's `process/start` semantics, identical in both modes):
- `env` is the child's whole environment; systemd's variables of the daemon never reach it.
- A bare program name is looked up in `env["PATH"]`, else in the daemon's own PATH; `arg0`, when
  given, is the argv[0] the program sees while argv[0] is still what is executed.
- `cwd` is handed to the kernel as given (relative to the daemon's cwd).
- Every child leads its own session and process group (pid = pgid = sid); a tty child also has
  its PTY as controlling terminal, so ^C raises SIGINT and job control works.
- Children inherit none of the daemon's file descriptors.
- With a `cgroup` (`cgroup.py`), the child joins it between fork and exec, before anything
  else runs in it. That hook makes the spawn fork instead of vfork (a few ms at a large heap);
  a tty or confined spawn forks anyway.
- A failure raises `SpawnError` with the wire text and leaves nothing open.
- With a `confinement` (`confine.py`), the child is confined between fork and exec (Landlock
  ruleset built here in the parent, applied by the `preexec_fn`); if that cannot be done, or
  fails in the child, nothing runs: `SpawnError` with the reason.

Resource handling: on success the caller owns `Spawned` (streams and the trio Process) and must
`close()` it after the child is reaped.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import subprocess
import termios
from collections.abc import Callable
from typing import Any

import attrs
import trio

from trio_exec.process.cgroup import ProcessCgroup
from trio_exec.proto import errors
from trio_exec.proto.errors import os_error_text
from trio_exec.sandbox import confine

DEFAULT_ROWS, DEFAULT_COLS = 24, 80


class SpawnError(Exception):
    """`str(err)` is the text the client sees (-32603); `kind` classifies an OS failure as
    codex 0.171 does in the error's `data` (probed: ENOENT → `spawnNotFound`, EACCES →
    `spawnPermissionDenied`, any other errno → `spawnFailed`), None for the others."""

    def __init__(self, text: str, *, os_errno: int | None = None) -> None:
        super().__init__(text)
        self.kind: str | None = None
        if os_errno is not None:
            self.kind = {errno.ENOENT: "spawnNotFound",
                         errno.EACCES: "spawnPermissionDenied"}.get(os_errno, "spawnFailed")


@attrs.frozen(kw_only=True)
class SpawnRequest:
    argv: list[str]
    cwd: str
    env: dict[str, str]
    tty: bool
    arg0: str | None = None
    pipe_stdin: bool = False
    rows: int = DEFAULT_ROWS
    cols: int = DEFAULT_COLS
    confinement: confine.Plan | None = None


@attrs.define(eq=False)
class Spawned:
    """A started child and the parent's ends of its streams.

    Invariant: `outputs` are (stream name, stream) pairs — ("stdout", …), ("stderr", …) for
    pipes, ("pty", master) for a tty; `stdin` is the pipe or the PTY master, or None."""

    process: trio.Process
    outputs: list[tuple[str, trio.abc.ReceiveStream]]
    stdin: trio.abc.SendStream | None
    pty_fd: int | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    async def aclose(self) -> None:
        streams: list[trio.abc.AsyncResource] = [s for _, s in self.outputs]
        if self.stdin is not None and self.stdin not in streams:
            streams.append(self.stdin)
        for stream in streams:
            await stream.aclose()


#: Sets an environment entry by entry, as `KEY=VALUE` strings, then execs the program.
#: What a service manager (systemd) sets for the daemon itself; none of it may reach a child.
SERVICE_MANAGER_VARIABLES = frozenset(
    {"NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"}
)
ENV_TRAMPOLINE = "/usr/bin/env"


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """What the child gets: the client's map minus systemd's variables."""
    return {key: value for key, value in env.items() if key not in SERVICE_MANAGER_VARIABLES}


def needs_trampoline(env: dict[str, str]) -> bool:
    """Python refuses keys that are empty or contain `=`; the reference passes them through as
    the entry `KEY=VALUE`. Such an environment is set by `env -i` in the child instead."""
    return any(not key or "=" in key for key in env)


def trampoline(executable: str, args: list[str], env: dict[str, str]) -> tuple[str, list[str]]:
    entries = [f"{key}={value}" for key, value in env.items()]
    return ENV_TRAMPOLINE, ["env", "-i", "--", *entries, executable, *args[1:]]


def resolve_program(program: str, env: dict[str, str]) -> str:
    """The executable for `program`, by execvp's rules, with the PATH described above."""
    if "/" in program:
        return program
    search_path = env.get("PATH")
    if search_path is None:
        search_path = os.environ.get("PATH", os.defpath)
    found_unexecutable = False
    for directory in search_path.split(":"):
        candidate = os.path.join(directory or ".", program)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            found_unexecutable = True
    code = errno.EACCES if found_unexecutable else errno.ENOENT
    raise OSError(code, os.strerror(code))


def _acquire_controlling_terminal() -> None:  # runs in the child, between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def set_window_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


async def spawn(request: SpawnRequest, cgroup: ProcessCgroup | None = None) -> Spawned:
    """Start the child (in `cgroup` when given). Raises `SpawnError` with the reference's text."""
    env = child_environment(request.env)
    try:
        program = request.argv[0]
        args = [request.arg0 if request.arg0 is not None else program, *request.argv[1:]]
        if any("\0" in arg for arg in (program, *args, request.cwd)):
            raise SpawnError("nul byte found in provided data")
        if any("\0" in item for pair in env.items() for item in pair):
            raise SpawnError("nul byte found in provided data")
        if "/" in program:
            executable = program
        else:  # a PATH search stats every entry: off the event loop (a PATH may be on NFS)
            executable = await trio.to_thread.run_sync(resolve_program, program, env)
        if needs_trampoline(env):
            # `env` cannot set argv[0]: this rare path keeps the program's own name.
            executable, args = trampoline(executable, args, env)
            env = {}
        join = cgroup.join_in_child if cgroup is not None else None
        if request.tty:
            return await _spawn_pty(request, args, executable, env, join)
        return await _spawn_pipes(request, args, executable, env, join)
    except OSError as exc:
        raise SpawnError(os_error_text(exc), os_errno=exc.errno) from None


async def _open(request: SpawnRequest, args: list[str], executable: str, env: dict[str, str],
                preexec: Callable[[], None] | None = None, tty_path: str | None = None,
                **options: Any) -> trio.Process:
    """`trio.lowlevel.open_process` with the common options, confined when asked."""
    common: dict[str, Any] = dict(executable=executable, cwd=request.cwd, env=env,
                                  start_new_session=True, **options)
    plan = request.confinement
    if plan is None:
        return await trio.lowlevel.open_process(args, preexec_fn=preexec, **common)
    cwd = os.path.join(os.getcwd(), request.cwd)
    try:
        hook = await trio.to_thread.run_sync(
            lambda: confine.prepare(plan, cwd=cwd, tty_path=tty_path, before=preexec))
    except confine.Unenforceable as exc:
        raise SpawnError(errors.cannot_confine(str(exc)).message) from None
    try:
        pass_fds = (hook.ruleset_fd,) if hook.ruleset_fd >= 0 else ()
        return await trio.lowlevel.open_process(args, preexec_fn=hook, pass_fds=pass_fds, **common)
    except subprocess.SubprocessError as exc:
        # the preexec_fn failed: the exec never happened
        raise SpawnError(errors.cannot_confine(f"setting it up in the child failed ({exc})").message) from None
    finally:
        hook.close()


def _then(first: Callable[[], None] | None,
          second: Callable[[], None] | None) -> Callable[[], None] | None:
    """One preexec hook running `first`, then `second` (either may be None)."""
    if first is None or second is None:
        return first or second

    def both() -> None:
        first()
        second()

    return both


async def _spawn_pipes(
    request: SpawnRequest, args: list[str], executable: str, env: dict[str, str],
    join: Callable[[], None] | None,
) -> Spawned:
    process = await _open(
        request, args, executable, env,
        preexec=join,
        stdin=subprocess.PIPE if request.pipe_stdin else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    return Spawned(
        process=process,
        outputs=[("stdout", process.stdout), ("stderr", process.stderr)],
        stdin=process.stdin,
    )


async def _spawn_pty(
    request: SpawnRequest, args: list[str], executable: str, env: dict[str, str],
    join: Callable[[], None] | None,
) -> Spawned:
    master, slave = os.openpty()
    try:
        set_window_size(slave, request.rows, request.cols)
        process = await _open(
            request, args, executable, env,
            preexec=_then(join, _acquire_controlling_terminal),
            tty_path=os.ttyname(slave),
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    stream = trio.lowlevel.FdStream(master)
    return Spawned(process=process, outputs=[("pty", stream)], stdin=stream, pty_fd=master)
