"""The soak's short run, so its code cannot rot, and its content check shown to catch faults.

`scripts/soak` (benchmarks/soak.py) runs for ten minutes outside the suite; here the same
script runs for a few seconds with ten connections and short timers, and must exit 0 with a
report showing work done of every kind: processes checked by content, drops and resumes, an
abandoned session, and the census back to where it was. The content check itself is fed
deliveries with a chunk lost, a chunk changed, a duplicate and a wrong exit code.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import soak_programs as programs

ROOT = Path(__file__).resolve().parents[1]


def _closed(p: programs.Proc, chunks: list[tuple[str, bytes]], exit_code: int) -> programs.Proc:
    """`p` as a read would leave it: `chunks` at seqs 1.., then the exit and close events."""
    for seq, (stream, data) in enumerate(chunks, 1):
        assert p.add_chunk(seq, stream, data, by_read=True) is None
    p.exit_code = exit_code
    p.final_seq = len(chunks) + 2
    return p


def test_the_content_check_passes_a_whole_delivery() -> None:
    chunks = [("stdout", b"out 1\nout 2\n"), ("stderr", b"err 1\nerr 2\n")]
    assert programs.check(_closed(programs.count("p1", 2), chunks, 0), frozenset({-1})) == []


@pytest.mark.parametrize(
    ("chunks", "exit_code", "fault"),
    [
        ([("stdout", b"out 1\n"), ("stderr", b"err 1\nerr 2\n")], 0, "stdout has 6 bytes"),
        ([("stdout", b"out 1\nout 2\n"), ("stdout", b"out 2\n"), ("stderr", b"err 1\nerr 2\n")],
         0, "stdout has 18 bytes"),
        ([("stdout", b"out 1\nout 3\n"), ("stderr", b"err 1\nerr 2\n")], 0, "stdout has 12"),
        ([("stdout", b"out 1\nout 2\n"), ("stderr", b"err 1\nerr 2\n")], 1, "exit code 1"),
    ],
    ids=["lost", "duplicated", "changed", "exit-code"],
)
def test_the_content_check_catches(chunks: list[tuple[str, bytes]], exit_code: int, fault: str) -> None:
    errors = programs.check(_closed(programs.count("p1", 2), chunks, exit_code), frozenset({-1}))
    assert any(fault in e for e in errors), errors


def test_the_seq_check_catches_a_gap_and_a_conflicting_redelivery() -> None:
    p = _closed(programs.quick("p1", 5), [("stdout", b"quick 5\n")], 1)
    p.final_seq = 4  # one seq neither a chunk nor one of the two events: a chunk lost
    assert any("seqs 1..4" in e for e in programs.check(p, frozenset({-1})))
    assert p.add_chunk(1, "stdout", b"quick 6\n", by_read=False) == (
        "p1: seq 1 delivered twice with different bytes")


def test_a_killed_process_may_have_printed_a_prefix_only() -> None:
    p = programs.count("p1", 3)
    p.ending = programs.KILLED
    _closed(p, [("stdout", b"out 1\n"), ("stderr", b"err 1\n")], -1)
    assert programs.check(p, frozenset({-1})) == []
    p.chunks[1] = ("stdout", b"out 2\n")
    assert programs.check(p, frozenset({-1})) != []


def test_the_pty_check_wants_every_line_answered_and_the_last_size() -> None:
    p = programs.pty("p1", (30, 100))
    p.lines_sent = ["a", "b"]
    p.sizes.append((40, 120))
    good = b"ready\ngot a\nwinch 40 120\ngot b\nfinal 40 120\n"
    assert programs.check(_closed(p, [("pty", good)], 0), frozenset({-1})) == []
    stale = programs.pty("p2", (30, 100))
    stale.lines_sent = ["a", "b"]
    stale.sizes.append((40, 120))
    bad = b"ready\ngot a\ngot b\nfinal 30 100\n"
    assert programs.check(_closed(stale, [("pty", bad)], 0), frozenset({-1})) != []


def test_a_catch_up_read_gets_past_an_exit_between_two_chunks() -> None:
    """Chunks 1 and 3 notified, the exit (2) and close (4) missed during a drop; a read from 1
    returned chunk 3 with nextSeq 4. The next read must start after 3, or it never ends."""
    p = programs.count("p1", 1)
    p.add_chunk(1, "stdout", b"out 1\n", by_read=False)
    p.add_chunk(3, "stderr", b"err 1\n", by_read=False)
    assert p.catch_up_from() == 1
    p.cursor = 3  # nextSeq 4 - 1, from the read
    assert p.catch_up_from() == 3


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_short_soak_passes() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.soak", "--duration", "6", "--connections", "10",
         "--session-ttl", "1.5", "--retention", "3", "--sample-every", "0.5",
         "--table-every", "2", "--seed", "7"],
        cwd=ROOT, capture_output=True, text=True, timeout=170, check=False,
    )
    report = run.stdout
    assert run.returncode == 0, report[-6000:] + run.stderr[-3000:]
    assert "violations: 0" in report
    census = re.search(r"census before: (.*); after: (.*) \(settled", report)
    assert census is not None and census.group(1) == census.group(2), report
    assert "0 processes" in census.group(2) and "0 sessions" in census.group(2)
    counts = dict((name.strip(), int(n)) for n, name in re.findall(r"^\s+(\d+)  (.+)$", report, re.M))
    for kind in ("count", "burst", "quick", "cat", "pty", "sig", "sleep"):
        assert counts.get(f"processes checked by content: {kind}", 0) > 0, (kind, report)
    assert counts["drops (TCP reset) then resume"] > 0, report
    for method in ("process/start", "process/write", "process/resize", "process/signal",
                   "process/terminate", "fs/writeFile", "initialize"):
        assert re.search(rf"^{re.escape(method)} +\d+ ", report, re.M), (method, report)
    assert "RSS (MiB)" in report
