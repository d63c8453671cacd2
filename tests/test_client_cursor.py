"""The output cursor (pure): exactly-once, in-order output from notifications and reads."""

from __future__ import annotations

import base64

import pytest

from trio_exec.client.cursor import OutputCursor
from trio_exec.client.errors import OutputLost
from trio_exec.proto.process_messages import OutputChunk, ProcessReadResult, RetentionGap


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def drain(cursor: OutputCursor) -> list[tuple[int, bytes]]:
    out = []
    while (item := cursor.pop()) is not None:
        out.append((item.seq, item.data))
    return out


def read(chunks: list[tuple[int, bytes]], next_seq: int, *, exited: bool = False,
         closed: bool = False, code: int | None = None,
         gap: RetentionGap | None = None) -> ProcessReadResult:
    return ProcessReadResult(
        chunks=[OutputChunk(seq=s, stream="stdout", chunk=b64(d)) for s, d in chunks],
        next_seq=next_seq, exited=exited, exit_code=code, closed=closed, failure=None,
        retention_gap=gap,
    )


def test_in_order_notifications_flow_through() -> None:
    cursor = OutputCursor("p")
    assert cursor.on_output(1, "stdout", b64(b"a"))
    assert cursor.on_output(2, "stderr", b64(b"b"))
    cursor.on_exited(3, 0, None)
    cursor.on_closed(4)
    assert drain(cursor) == [(1, b"a"), (2, b"b")]
    assert cursor.finished and cursor.exit_code == 0 and not cursor.stale


def test_duplicates_are_dropped() -> None:
    cursor = OutputCursor("p")
    cursor.on_output(1, "stdout", b64(b"a"))
    assert not cursor.on_output(1, "stdout", b64(b"a"))
    assert drain(cursor) == [(1, b"a")]


def test_a_hole_marks_stale_and_a_read_fills_it_in_order() -> None:
    cursor = OutputCursor("p")
    cursor.on_output(1, "stdout", b64(b"a"))
    assert not cursor.on_output(4, "stdout", b64(b"d"))  # 2, 3 missed (a reconnect)
    assert cursor.stale
    cursor.apply_read(1, read([(2, b"b"), (3, b"c"), (4, b"d")], 5))
    assert cursor.stale  # exit/close after the last chunk are not listed: read again
    cursor.apply_read(4, read([], 7, exited=True, closed=True, code=3))
    assert drain(cursor) == [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d")]
    assert cursor.finished and cursor.exit_code == 3 and cursor.cursor == 6


def test_exit_between_chunks_is_skipped_by_the_read() -> None:
    cursor = OutputCursor("p")
    cursor.stale = True
    cursor.apply_read(0, read([(1, b"a"), (3, b"c")], 4, exited=True, code=0))  # 2 = exit
    cursor.on_closed(4)
    assert drain(cursor) == [(1, b"a"), (3, b"c")]
    assert cursor.finished


def test_notifications_racing_a_read_are_not_duplicated() -> None:
    cursor = OutputCursor("p")
    cursor.stale = True
    sent_at = cursor.cursor
    cursor.on_output(1, "stdout", b64(b"a"))  # arrives while the read is in flight
    cursor.apply_read(sent_at, read([(1, b"a"), (2, b"b")], 3))
    assert drain(cursor) == [(1, b"a"), (2, b"b")]


def test_retention_gap_is_an_error_not_a_skip() -> None:
    cursor = OutputCursor("p")
    cursor.on_output(1, "stdout", b64(b"a"))
    cursor.stale = True
    with pytest.raises(OutputLost, match=r"seq 2..9 was dropped"):
        cursor.apply_read(1, read([(10, b"j")], 11, gap=RetentionGap(after_seq=1, first_retained_seq=10)))


def test_exit_state_is_taken_out_of_order() -> None:
    cursor = OutputCursor("p")
    cursor.on_exited(5, 9, "SIGKILL")
    assert cursor.exited and cursor.exit_code == 9 and cursor.signal == "SIGKILL"
    assert cursor.stale and cursor.cursor == 0


def test_a_full_queue_leaves_the_rest_on_the_server() -> None:
    cursor = OutputCursor("p", queue_limit=2)
    cursor.on_output(1, "stdout", b64(b"ab"))
    assert not cursor.on_output(2, "stdout", b64(b"cd"))
    assert cursor.stale and cursor.cursor == 1
    assert drain(cursor) == [(1, b"ab")]
    cursor.apply_read(1, read([(2, b"cd")], 3))
    assert drain(cursor) == [(2, b"cd")]
