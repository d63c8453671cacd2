"""Containment: every child in a cgroup v2 of its own, so a teardown kills every descendant.

Rules:
- The v2 hierarchy is wherever the mount table (/proc/self/mountinfo) has a `cgroup2` file
  system; a hybrid host mounts it beside the v1 controllers (e.g. .../unified). The daemon's
  own cgroup is the `0::` line of /proc/self/cgroup, a path relative to the hierarchy's root,
  found under the mount whose root (mountinfo's 4th field) contains it. Neither is assumed.
- Containment is on only when that cgroup is delegated to the daemon (systemd's
  `Delegate=yes`): not the hierarchy's root, with `cgroup.kill`, and the cgroup itself, its
  `cgroup.procs` and `cgroup.subtree_control` writable. Otherwise `detect` gives the reason
  and the daemon keeps the process-group kill alone.
- The delegated cgroup D keeps no daemon process: the daemon moves itself into the leaf
  D/daemon first (a cgroup that enables controllers for its children holds no process). A
  daemon already in a leaf named `daemon` of a delegated cgroup uses that parent as D.
- Each child gets D/proc-<daemon pid>-<n>, made before the spawn with its limits written.
  The child joins it between fork and exec (`join_in_child` writes 0 to the parent's fd of
  its `cgroup.procs`), so the program's first instruction already runs inside: every
  descendant, `setsid` or double-forked, is born in it.
- Killing is `cgroup.kill`: SIGKILL to every member, forks included. A cgroup is never reused
  while it exists, so it may be killed at any time, also after the leader was reaped.
- A child's cgroup is removed once empty, after its kill (`remove_when_empty`).
- Per-process limits (`memory.max`, `pids.max`) need their controller enabled in D: asked
  for and impossible, `detect` raises `ContainmentError` naming why; they are never dropped.

Everything here is a cgroupfs access: in-kernel, never waiting on I/O, so it runs on the loop.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
from pathlib import Path

import attrs
import trio

log = logging.getLogger(__name__)

DAEMON_LEAF = "daemon"
#: How long a killed cgroup may take to empty before it is left behind (logged).
REMOVE_TIMEOUT = 5.0
_REMOVE_POLL = 0.01
_names = itertools.count(1)


class ContainmentError(Exception):
    """A limit was asked for that this host cannot enforce; `str(err)` says which and why."""


@attrs.frozen(kw_only=True)
class Limits:
    """Per-process limits, written into every child's cgroup; None: no limit."""

    memory_max: int | None = None
    pids_max: int | None = None

    def controllers(self) -> list[str]:
        wanted = [("memory", self.memory_max), ("pids", self.pids_max)]
        return [name for name, value in wanted if value is not None]


@attrs.frozen
class Detection:
    """What `detect` found: `containment` when on, else None and `reason` saying why not."""

    containment: Containment | None
    reason: str

    @property
    def active(self) -> bool:
        return self.containment is not None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (`\\040`)."""
    return field.encode().decode("unicode_escape")


def unified_mounts(mountinfo: str) -> list[tuple[str, str]]:
    """(root within the hierarchy, mount point) of every cgroup2 mount."""
    mounts = []
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if tail.split()[:1] == ["cgroup2"] and len(parts) >= 5:
            mounts.append((_unescape(parts[3]), _unescape(parts[4])))
    return mounts


def own_cgroup(proc_cgroup: str) -> str | None:
    """The v2 path of the `0::` line, or None when the process is in no v2 hierarchy."""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None


def locate(mountinfo: str, proc_cgroup: str) -> Path | None:
    """The directory of the own cgroup under a cgroup2 mount that shows it, if any."""
    path = own_cgroup(proc_cgroup)
    if path is None:
        return None
    for root, mount_point in unified_mounts(mountinfo):
        relative = os.path.relpath(path, root)
        if relative == ".":
            return Path(mount_point)
        if not relative.startswith(".."):
            candidate = Path(mount_point, relative)
            if candidate.is_dir():
                return candidate
    return None


def _not_delegated(directory: Path) -> str | None:
    """Why `directory` is no cgroup the daemon may manage, or None when it is."""
    if not (directory / "cgroup.kill").exists():
        if not (directory / "cgroup.type").exists():
            return f"{directory} is the root of the cgroup v2 hierarchy (nothing delegated)"
        return f"{directory} has no cgroup.kill (kernel older than 5.14)"
    for target in (directory, directory / "cgroup.procs", directory / "cgroup.subtree_control"):
        if not os.access(target, os.W_OK):
            return f"{target} is not writable (no Delegate=yes)"
    return None


def detect(limits: Limits | None = None, *, mountinfo: str | None = None,
           proc_cgroup: str | None = None) -> Detection:
    """Find the delegated cgroup and take it over: move the daemon into its leaf, enable the
    limits' controllers. Raises `ContainmentError` when `limits` cannot be enforced."""
    limits = limits or Limits()
    if mountinfo is None:
        mountinfo = Path("/proc/self/mountinfo").read_text()
    if proc_cgroup is None:
        proc_cgroup = Path("/proc/self/cgroup").read_text()
    directory = locate(mountinfo, proc_cgroup)
    if directory is None:
        detection = Detection(None, "no cgroup v2 hierarchy holds the daemon")
    elif directory.name == DAEMON_LEAF and _not_delegated(directory.parent) is None:
        detection = Detection(Containment(directory.parent, limits), "")
    elif (reason := _not_delegated(directory)) is not None:
        detection = Detection(None, reason)
    else:
        _move_into_leaf(directory)
        detection = Detection(Containment(directory, limits), "")
    if limits.controllers():
        if detection.containment is None:
            raise ContainmentError(
                f"per-process limits need a delegated cgroup v2 subtree: {detection.reason}")
        detection.containment.enable_controllers()
    return detection


def _move_into_leaf(directory: Path) -> None:
    leaf = directory / DAEMON_LEAF
    leaf.mkdir(exist_ok=True)
    (leaf / "cgroup.procs").write_text(str(os.getpid()))


@attrs.frozen
class Containment:
    """The delegated cgroup D: the children's cgroups are made in it."""

    root: Path
    limits: Limits = attrs.field(factory=Limits)

    def enable_controllers(self) -> None:
        wanted = self.limits.controllers()
        available = (self.root / "cgroup.controllers").read_text().split()
        missing = [name for name in wanted if name not in available]
        if missing:
            raise ContainmentError(
                f"per-process limits need the {', '.join(missing)} controller in {self.root} "
                f"(it offers: {' '.join(available) or 'none'})")
        try:
            (self.root / "cgroup.subtree_control").write_text(
                " ".join(f"+{name}" for name in wanted))
        except OSError as exc:
            why = ("other processes are in it" if exc.errno == errno.EBUSY
                   else os.strerror(exc.errno or 0))
            raise ContainmentError(
                f"cannot enable {', '.join(wanted)} for the children of {self.root}: {why}"
            ) from None

    def create(self) -> ProcessCgroup:
        """A new child cgroup with the limits written, ready to be joined. Raises OSError."""
        path = self.root / f"proc-{os.getpid()}-{next(_names)}"
        path.mkdir()
        try:
            if self.limits.memory_max is not None:
                (path / "memory.max").write_text(str(self.limits.memory_max))
                swap = path / "memory.swap.max"
                if swap.exists():  # the limit is on memory, not memory until swap runs out
                    swap.write_text("0")
            if self.limits.pids_max is not None:
                (path / "pids.max").write_text(str(self.limits.pids_max))
            procs_fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except BaseException:
            path.rmdir()
            raise
        return ProcessCgroup(path, procs_fd)


@attrs.define(eq=False)
class ProcessCgroup:
    """One child's cgroup. `procs_fd` is open from `create` until `spawned()`."""

    path: Path
    procs_fd: int

    def join_in_child(self) -> None:
        """Runs in the child between fork and exec: 0 is the writer itself."""
        os.write(self.procs_fd, b"0")

    def spawned(self) -> None:
        """The spawn is over (done or failed): the fd is not needed any more."""
        if self.procs_fd >= 0:
            os.close(self.procs_fd)
            self.procs_fd = -1

    def kill(self) -> None:
        """SIGKILL every member; a cgroup already gone is no error."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / "cgroup.kill").write_text("1")

    def members(self) -> list[int]:
        """The pids in it (zombies are not listed)."""
        try:
            return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]
        except FileNotFoundError:
            return []

    def cpu_usec(self) -> tuple[int, int] | None:
        """(user, system) CPU time of every process that ran in it, in microseconds."""
        try:
            text = (self.path / "cpu.stat").read_text()
        except FileNotFoundError:
            return None
        stat = dict(line.split() for line in text.splitlines() if line.count(" ") == 1)
        return int(stat["user_usec"]), int(stat["system_usec"])

    async def remove_when_empty(self) -> None:
        """rmdir once the killed members are gone (they exit in microseconds unless stuck in
        the kernel); a cgroup still busy after `REMOVE_TIMEOUT` is left, with a warning."""
        self.spawned()
        delay = _REMOVE_POLL
        with trio.move_on_after(REMOVE_TIMEOUT):
            while True:
                try:
                    self.path.rmdir()
                    return
                except FileNotFoundError:
                    return
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.warning("cannot remove %s: %s", self.path, os.strerror(exc.errno or 0))
                        return
                self.kill()
                await trio.sleep(delay)
                delay = min(delay * 2, 0.5)
        log.warning("%s still has members after its kill; left behind", self.path)
