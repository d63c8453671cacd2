"""Outbound frames written by the daemon itself: headers, batching, and a real client reading them."""

from __future__ import annotations

import orjson
import pytest
import trio
import trio.testing
from wsproto.frame_protocol import FrameProtocol

from trio_exec.proto import codec
from trio_exec.ws.frames import JOIN_LIMIT, FrameStream, frame_pieces, text_frame_header


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


def test_a_pieced_message_is_one_frame_of_its_parts_uncopied() -> None:
    text = b"QUFB" * (JOIN_LIMIT // 2)
    big = codec.encode_result(7, {"dataBase64": codec.Spliced(text)})
    small = codec.encode_result(8, {"dataBase64": codec.Spliced(b"QQ==")})
    assert isinstance(big, codec.Pieces) and isinstance(small, codec.Pieces)
    pieces = frame_pieces([small, big, b'{"n":1}'])
    assert text in pieces and any(piece is text for piece in pieces)
    client = FrameProtocol(client=True, extensions=[])
    client.receive_bytes(b"".join(pieces))
    got = [orjson.loads(frame.payload) for frame in client.received_frames()]
    assert got == [
        {"id": 8, "result": {"dataBase64": "QQ=="}},
        {"id": 7, "result": {"dataBase64": text.decode()}},
        {"n": 1},
    ]


async def test_a_write_cut_short_mid_frame_lets_nothing_follow_it() -> None:
    """The writer is cancelled in the middle of a large frame (daemon shutdown, ping timeout)
    → trio-websocket then sends its Close through the same stream → the Close must not land
    inside the torn frame's payload: the write is refused, and the peer's bytes end with the
    partial frame (it sees an abnormal end, not a frame stream with garbage spliced in).

    Without the rule, the lockstep stream trips over the Close it is handed while the torn
    frame is still in it; a socket would append it to the torn frame's payload."""
    ours, peer = trio.testing.lockstep_stream_pair()
    frames = FrameStream(ours)
    large = b"x" * (JOIN_LIMIT * 4)
    received = bytearray()
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            async def write() -> None:
                await frames.send_text_frames([large], still_open=lambda: True)

            nursery.start_soon(write)
            while len(received) < len(large) // 2:
                received += await peer.receive_some(JOIN_LIMIT)
            nursery.cancel_scope.cancel()
        close = bytes(FrameProtocol(client=False, extensions=[]).close(1001, "server shutting down"))

        async def drain() -> None:
            while True:
                data = await peer.receive_some()
                if not data:
                    return
                received.extend(data)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(drain)
            with pytest.raises(trio.BrokenResourceError):
                await frames.send_all(close)
            with pytest.raises(trio.BrokenResourceError):
                await frames.send_text_frames([b"{}"], still_open=lambda: True)
            await ours.aclose()
    assert close not in bytes(received)


async def test_a_write_cancelled_before_it_starts_leaves_the_stream_whole() -> None:
    """A cancellation already pending when a write is called is raised before any byte
    leaves: the stream is not torn, so the Close frame can still follow."""
    left, right = trio.testing.memory_stream_pair()
    frames = FrameStream(left)
    with trio.CancelScope() as scope:
        scope.cancel()
        await frames.send_text_frames([b"{}"], still_open=lambda: True)
    assert scope.cancelled_caught
    assert not frames.torn
    await frames.send_all(b"close")
    assert await right.receive_some() == b"close"
