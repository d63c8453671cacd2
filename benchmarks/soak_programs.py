"""The programs a soak worker starts, and the rule each one's output must follow.

Rule: every program's output is fully determined by what the soak did to it (the lines it
wrote, the signals and terminal sizes it sent), so a finished process is checked by content.
Its bytes per stream, joined in seq order, must equal what the program had to print: every
byte exactly once, however many times the connection was dropped and resumed meanwhile. A
process the soak killed (`process/terminate`) must have printed a prefix of that.

Seqs are checked too: once a read reports the process closed, the seqs 1 .. last must be the
output chunks plus exactly two events (exit, then close, the close last); a seq seen twice
(notification and read) must carry the same bytes both times.

The kinds:

* `count`: a shell loop printing `out i` to stdout and `err i` to stderr, one pair every 0.1 s;
* `burst`: `seq 1 n`, up to a few hundred KiB at once;
* `quick`: prints one line and exits with a chosen code;
* `cat`: a pipe child with a stdin pipe (`pipeStdin`); its stdout is what the soak wrote;
* `pty`: a terminal child in raw mode that answers each line written to it with `got <line>`,
  reports each SIGWINCH as `winch <rows> <cols>` and, on the line `end`, prints
  `final <rows> <cols>` (the size of the last `process/resize`) and exits 0;
* `sig`: a shell that prints `ready`, then a line per trapped signal (`usr1`; `int` and exit 3;
  `term` and exit 4);
* `sleep`: prints nothing, ended only by `process/terminate` or its session's end.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field

PYTHON3 = shutil.which("python3", path="/usr/bin:/bin") or "/usr/bin/python3"
KILLED = "terminate"

_PTY_PROGRAM = r"""
import os, signal, sys, tty
tty.setraw(0)
def say(text):
    os.write(1, text.encode())
def size():
    s = os.get_terminal_size(0)
    return f"{s.lines} {s.columns}"
signal.signal(signal.SIGWINCH, lambda *_: say(f"winch {size()}\n"))
say("ready\n")
pending = b""
while True:
    data = os.read(0, 65536)
    if not data:
        sys.exit(2)
    pending += data
    while b"\n" in pending:
        line, _, pending = pending.partition(b"\n")
        if line == b"end":
            say(f"final {size()}\n")
            sys.exit(0)
        say("got " + line.decode() + "\n")
"""

_SIG_PROGRAM = (
    'exec 2>/dev/null; '  # the shell's own notes on the jobs the signals kill
    'trap \'echo usr1\' USR1; '
    'trap \'echo int; kill $! 2>/dev/null; exit 3\' INT; '
    'trap \'echo term; kill $! 2>/dev/null; exit 4\' TERM; '
    'echo ready; while :; do sleep 30 & wait $!; done'
)

_COUNT_PROGRAM = (
    'i=1; while [ $i -le "$1" ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done'
)

#: Signals a `sig` process answers with a line of its own, by the name the soak sends.
SIGNAL_LINES = {"SIGUSR1": "usr1", "interrupt": "int", "terminate": "term"}
SIGNAL_EXITS = {"interrupt": 3, "terminate": 4}


@dataclass
class Proc:
    """One process a worker started: what the soak did to it and what came back."""

    id: str
    kind: str
    argv: list[str]
    tty: bool = False
    pipe_stdin: bool = False
    n: int = 0
    # what the soak did
    written: bytearray = field(default_factory=bytearray)
    lines_sent: list[str] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    ending: str | None = None
    # what came back
    chunks: dict[int, tuple[str, bytes]] = field(default_factory=dict)
    exit_seq: int | None = None
    closed_seq: int | None = None
    exit_code: int | None = None
    signal: str | None = None
    cursor: int = 0
    final_seq: int | None = None
    by_notification: int = 0
    by_read: int = 0
    done: bool = False
    #: What happened to it, timed (printed with a violation about it).
    history: list[str] = field(default_factory=list)

    def stream(self, name: str) -> bytes:
        return b"".join(data for seq, (s, data) in sorted(self.chunks.items()) if s == name)

    def text(self) -> str:
        return self.stream("pty" if self.tty else "stdout").decode(errors="replace")

    def frontier(self) -> int:
        """The largest k such that every seq 1..k is known (chunk, exit or close event)."""
        known = set(self.chunks)
        known.update(s for s in (self.exit_seq, self.closed_seq) if s is not None)
        k = 0
        while k + 1 in known:
            k += 1
        return k

    def catch_up_from(self) -> int:
        """The `afterSeq` of a catch-up read: past the gap-free seqs seen, or past what a read
        already returned, whichever is later (a read names no event seqs, and the exit may sit
        between two chunks: from the gap-free seqs alone the read would never get past it)."""
        return max(self.frontier(), self.cursor)

    def add_chunk(self, seq: int, stream: str, data: bytes, *, by_read: bool) -> str | None:
        """File one output chunk; a violation text if `seq` came before with other bytes."""
        seen = self.chunks.get(seq)
        if seen is not None:
            if seen != (stream, data):
                return f"{self.id}: seq {seq} delivered twice with different bytes"
            return None
        self.chunks[seq] = (stream, data)
        if by_read:
            self.by_read += 1
        else:
            self.by_notification += 1
        return None

    def ready(self) -> bool:
        """The program has printed its first line (its traps or raw mode are in place)."""
        return self.text().startswith("ready\n")

    def signal_answered(self) -> bool:
        """Every signal sent so far has its line in the output (standard signals coalesce)."""
        lines = self.text().splitlines()
        return lines[1 : 1 + len(self.signals)] == [SIGNAL_LINES[s] for s in self.signals]


def count(pid: str, n: int) -> Proc:
    return Proc(pid, "count", ["/bin/sh", "-c", _COUNT_PROGRAM, "sh", str(n)], n=n)


def burst(pid: str, n: int) -> Proc:
    return Proc(pid, "burst", ["/usr/bin/seq", "1", str(n)], n=n)


def quick(pid: str, n: int) -> Proc:
    return Proc(pid, "quick", ["/bin/sh", "-c", 'echo "quick $1"; exit $(($1 % 4))', "sh", str(n)], n=n)


def cat(pid: str) -> Proc:
    return Proc(pid, "cat", ["/bin/cat"], pipe_stdin=True)


def pty(pid: str, size: tuple[int, int]) -> Proc:
    return Proc(pid, "pty", [PYTHON3, "-c", _PTY_PROGRAM], tty=True, sizes=[size])


def sig(pid: str) -> Proc:
    return Proc(pid, "sig", ["/bin/sh", "-c", _SIG_PROGRAM])


def sleep(pid: str) -> Proc:
    return Proc(pid, "sleep", ["/bin/sleep", "1000"])


def _expected(p: Proc) -> dict[str, bytes]:
    """The whole output of a program that ended the way the soak ended it, per stream."""
    if p.kind == "count":
        return {"stdout": "".join(f"out {i}\n" for i in range(1, p.n + 1)).encode(),
                "stderr": "".join(f"err {i}\n" for i in range(1, p.n + 1)).encode()}
    if p.kind == "burst":
        return {"stdout": "".join(f"{i}\n" for i in range(1, p.n + 1)).encode(), "stderr": b""}
    if p.kind == "quick":
        return {"stdout": f"quick {p.n}\n".encode(), "stderr": b""}
    if p.kind == "cat":
        return {"stdout": bytes(p.written), "stderr": b""}
    if p.kind == "sig":
        lines = ["ready", *(SIGNAL_LINES[s] for s in p.signals)]
        if p.ending in SIGNAL_EXITS:
            lines.append(SIGNAL_LINES[p.ending])
        return {"stdout": "".join(f"{line}\n" for line in lines).encode(), "stderr": b""}
    if p.kind == "sleep":
        return {"stdout": b"", "stderr": b""}
    raise ValueError(p.kind)


def _expected_exit(p: Proc) -> int | None:
    """The exit code of a normal end, or None where only a kill can end it."""
    return {"count": 0, "burst": 0, "quick": p.n % 4, "cat": 0, "pty": 0,
            "sig": SIGNAL_EXITS.get(p.ending or ""), "sleep": None}[p.kind]


def _check_pty(p: Proc, killed: bool) -> list[str]:
    text = p.text()
    lines = text.split("\n")
    complete, partial = lines[:-1], lines[-1]
    winches = [line for line in complete if line.startswith("winch ")]
    body = [line for line in complete if not line.startswith("winch ")]
    sizes = {f"winch {r} {c}" for r, c in p.sizes}
    errors = [f"{p.id}: `{w}` is no size the soak set" for w in winches if w not in sizes]
    want = ["ready", *(f"got {line}" for line in p.lines_sent)]
    if killed:
        if body != want[: len(body)]:
            errors.append(f"{p.id}: killed pty printed {text[-300:]!r}, not a prefix of its lines")
        return errors
    rows, cols = p.sizes[-1]
    want.append(f"final {rows} {cols}")
    if body != want or partial:
        errors.append(f"{p.id}: pty printed {text[-300:]!r}; expected {len(want)} lines ending "
                      f"{want[-1]!r}")
    return errors


def check(p: Proc, killed_codes: frozenset[int]) -> list[str]:
    """The violations of a closed process (`killed_codes`: the dialect's codes of a SIGKILL)."""
    errors: list[str] = []
    assert p.final_seq is not None
    last = p.final_seq
    missing = set(range(1, last + 1)) - set(p.chunks)
    beyond = [s for s in p.chunks if s > last]
    if beyond or len(missing) != 2 or last not in missing:
        errors.append(f"{p.id}: seqs 1..{last} hold {len(p.chunks)} chunks; not chunks: "
                      f"{sorted(missing)[:6]}, beyond the end: {beyond[:6]}")
    for name, seq in (("exited", p.exit_seq), ("closed", p.closed_seq)):
        if seq is not None and seq not in missing:
            errors.append(f"{p.id}: process/{name} notified with seq {seq}, a chunk's seq")
    killed = p.exit_code in killed_codes and p.ending == KILLED
    if not killed and p.exit_code != _expected_exit(p):
        errors.append(f"{p.id} ({p.kind}, ended by {p.ending or 'itself'}): exit code "
                      f"{p.exit_code}, signal {p.signal}")
    if p.kind == "pty":
        return errors + _check_pty(p, killed)
    for stream, want in _expected(p).items():
        got = p.stream(stream)
        if got != want and not (killed and want.startswith(got)):
            errors.append(f"{p.id} ({p.kind}): {stream} has {len(got)} bytes, expected "
                          f"{len(want)}{' or a prefix' if killed else ''}: {got[-120:]!r}")
    return errors
