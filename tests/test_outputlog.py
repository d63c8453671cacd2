"""The output log, pure: seq numbering, retention cap, and the read rules of the contract."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_exec.process.outputlog import SEGMENT_BYTES, NextSeqRule, OutputLog
from trio_exec.process.segments import PAGE

UNLESS_LIMITED = NextSeqRule.UNALLOCATED_UNLESS_LIMITED


def log_with(*sizes: int, limit: int = 1 << 20) -> OutputLog:
    log = OutputLog(limit=limit)
    for size in sizes:
        log.append_output("stdout", b"x" * size)
    return log


def test_seq_is_shared_by_output_exit_and_close() -> None:
    log = OutputLog()
    assert log.append_output("stdout", b"a").seq == 1
    assert log.append_output("stderr", b"b").seq == 2
    assert log.record_exit() == 3
    assert log.record_close() == 4
    assert log.next_seq == 5


def test_next_seq_rule_of_the_0120_reference() -> None:
    log = OutputLog()
    log.append_output("stdout", b"out")
    log.append_output("stderr", b"err")
    log.record_exit()
    log.record_close()
    view = log.read(0)
    assert [c.seq for c in view.chunks] == [1, 2]
    assert view.next_seq == 3
    for after in (2, 3, 100):
        view = log.read(after)
        assert view.chunks == []
        assert view.next_seq == 5


def test_next_seq_rule_of_the_0169_references() -> None:
    """out 1-3, exited 4, closed 5 (probe p11): without max_bytes the next unallocated seq,
    with it the seq after the last returned chunk."""
    log = log_with(10, 10, 10)
    log.record_exit()
    assert log.read(0, None, UNLESS_LIMITED).next_seq == 5
    log.record_close()
    for after in (0, 1, 2, 3, 100):
        assert log.read(after, None, UNLESS_LIMITED).next_seq == 6
    for max_bytes, next_seq in [(0, 2), (20, 3), (30, 4), (1000, 4)]:
        assert log.read(0, max_bytes, UNLESS_LIMITED).next_seq == next_seq
    assert log.read(3, 10, UNLESS_LIMITED).next_seq == 6


@pytest.mark.parametrize(
    ("max_bytes", "count"),
    [(0, 1), (1, 1), (5, 1), (10, 1), (11, 1), (19, 1), (20, 2), (21, 2), (1000, 3), (None, 3)],
)
def test_max_bytes_table_of_the_reference(max_bytes: int | None, count: int) -> None:
    assert len(log_with(10, 10, 10).read(0, max_bytes).chunks) == count


def test_retention_drops_whole_chunks_from_the_front_and_reports_the_gap() -> None:
    log = log_with(*([100] * 30), limit=1000)
    assert log.retained_bytes == 1000
    view = log.read(0)
    assert [c.seq for c in view.chunks] == list(range(21, 31))
    assert view.first_retained_seq == 21
    assert log.read(20).first_retained_seq is None
    assert log.read(19).first_retained_seq == 21


def test_a_single_chunk_larger_than_the_limit_is_kept() -> None:
    log = log_with(10, 5000, limit=1000)
    assert [c.seq for c in log.read(0).chunks] == [2]


def test_events_are_recorded_once() -> None:
    log = OutputLog()
    log.record_exit()
    with pytest.raises(ValueError):
        log.record_exit()
    log.record_close()
    with pytest.raises(ValueError):
        log.record_close()
    with pytest.raises(ValueError):
        log.append_output("stdout", b"late")


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=60), st.integers(0, 70),
       st.one_of(st.none(), st.integers(0, 3000)), st.sampled_from(NextSeqRule),
       st.integers(0, 2))
def test_reads_are_ascending_and_never_exceed_the_cap(
    sizes: list[int], after: int, max_bytes: int | None, rule: NextSeqRule, ended: int
) -> None:
    log = log_with(*sizes, limit=2000)
    if ended:
        log.record_exit()
    if ended == 2:
        log.record_close()
    assert log.retained_bytes <= max(2000, max(sizes, default=0))
    view = log.read(after, max_bytes, rule)
    seqs = [c.seq for c in view.chunks]
    assert seqs == sorted(seqs)
    assert all(seq > after for seq in seqs)
    if seqs and (max_bytes is not None or rule is NextSeqRule.AFTER_LAST_CHUNK):
        assert view.next_seq == seqs[-1] + 1
    else:
        assert view.next_seq == log.next_seq


class ModelLog:
    """The log's rules written the plain way (one list of chunks), to compare reads with."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.chunks: list[tuple[int, str, bytes]] = []
        self.next_seq = 1
        self.dropped_through = 0

    def append(self, stream: str, data: bytes) -> None:
        self.chunks.append((self.next_seq, stream, data))
        self.next_seq += 1
        while sum(len(c[2]) for c in self.chunks) > self.limit and len(self.chunks) > 1:
            self.dropped_through = self.chunks.pop(0)[0]

    def read(self, after: int, max_bytes: int | None, rule: NextSeqRule) -> tuple[object, ...]:
        selected: list[tuple[int, str, bytes]] = []
        total = 0
        for chunk in self.chunks:
            if chunk[0] <= after:
                continue
            if selected and max_bytes is not None and total + len(chunk[2]) > max_bytes:
                break
            selected.append(chunk)
            total += len(chunk[2])
            if max_bytes is not None and total >= max_bytes:
                break
        next_seq = self.next_seq
        if selected and (max_bytes is not None or rule is NextSeqRule.AFTER_LAST_CHUNK):
            next_seq = selected[-1][0] + 1
        gap = None
        if self.dropped_through > after:
            gap = self.chunks[0][0] if self.chunks else self.dropped_through + 1
        return selected, next_seq, gap


@given(st.lists(st.tuples(st.sampled_from(["stdout", "stderr", "pty"]),
                          st.integers(min_value=1, max_value=70_000)), max_size=40),
       st.integers(0, 45), st.one_of(st.none(), st.integers(0, 300_000)),
       st.sampled_from(NextSeqRule), st.integers(1_000, 600_000))
def test_reads_from_segments_match_the_plain_model(
    appends: list[tuple[str, int]], after: int, max_bytes: int | None, rule: NextSeqRule,
    limit: int,
) -> None:
    log = OutputLog(limit=limit)
    model = ModelLog(limit)
    for i, (stream, size) in enumerate(appends):
        data = bytes([i % 251]) * size
        log.append_output(stream, data)
        model.append(stream, data)
    view = log.read(after, max_bytes, rule)
    chunks, next_seq, gap = model.read(after, max_bytes, rule)
    assert [(c.seq, c.stream, c.data) for c in view.chunks] == chunks
    assert (view.next_seq, view.first_retained_seq) == (next_seq, gap)
    assert log.retained_bytes == sum(len(c[2]) for c in model.chunks)


def test_dropped_output_gives_its_segments_back() -> None:
    """A few large segments per log, unmapped as the cap drops their chunks; none after the
    process is forgotten, and a late read is told of the gap."""
    log = OutputLog(limit=1 << 20)
    for _ in range(200):
        log.append_output("stdout", b"y" * 65536)
    assert log.retained_bytes == 1 << 20
    assert log.mapped_bytes <= (1 << 20) + 3 * SEGMENT_BYTES  # the open ones and one spare
    log.record_exit()
    log.record_close()
    log.discard()
    assert log.mapped_bytes == 0
    view = log.read(0)
    assert view.chunks == []
    assert view.first_retained_seq == 201
    assert log.written_bytes == 200 * 65536


def test_a_short_output_maps_one_page() -> None:
    log = log_with(10, 20)
    assert log.mapped_bytes == PAGE


def test_a_chunk_larger_than_a_segment_stays_whole() -> None:
    big = bytes(range(256)) * 4096  # 1 MiB
    log = OutputLog(limit=4 << 20)
    log.append_output("stderr", b"a")
    log.append_output("stdout", big)
    log.append_output("pty", b"b")
    assert [(c.seq, c.stream, c.data) for c in log.read(0).chunks] == [
        (1, "stderr", b"a"), (2, "stdout", big), (3, "pty", b"b")]
    assert [c.seq for c in log.read(1, max_bytes=10).chunks] == [2]


def test_an_unknown_stream_is_refused() -> None:
    log = OutputLog()
    with pytest.raises(ValueError, match="unknown output stream 'stdin'"):
        log.append_output("stdin", b"x")
    assert (log.next_seq, log.mapped_bytes) == (1, 0)
