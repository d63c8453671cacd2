"""Outbound frames written by the daemon itself: headers, batching, and a real client reading them."""

from __future__ import annotations

import pytest
from wsproto.frame_protocol import FrameProtocol

from trio_exec.frames import JOIN_LIMIT, frame_pieces, text_frame_header


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 5_000_000])
def test_headers_match_wsprotos_own_frames(length: int) -> None:
    payload = b"x" * length
    reference = FrameProtocol(client=False, extensions=[]).send_data(payload.decode(), fin=True)
    assert text_frame_header(length) + payload == bytes(reference)


def test_small_frames_are_joined_and_large_payloads_are_not_copied() -> None:
    small, large = b'{"a":1}', b"y" * (JOIN_LIMIT + 1)
    pieces = frame_pieces([small, small, large, small])
    assert pieces[0] == (text_frame_header(len(small)) + small) * 2
    assert pieces[1] == text_frame_header(len(large))
    assert pieces[2] is large
    assert pieces[3] == text_frame_header(len(small)) + small


def test_a_client_parser_reads_a_batch_back_as_messages() -> None:
    payloads = [b'{"n":%d}' % i for i in range(50)] + [b'"' + b"z" * 70000 + b'"']
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(b"".join(frame_pieces(payloads)))
    got = [frame.payload for frame in client.received_frames()]
    assert got == [p.decode() for p in payloads]
