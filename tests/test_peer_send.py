"""`Peer.send`: one write at a time, in the order given, written at once by the sender when
the writer is idle (jsonrpc/peer.py's rules).

The stream records each write with the task that made it and can hold a write until the test
releases it, so the interleavings are scripted, not timed.
"""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from trio_exec.jsonrpc.peer import Peer
from trio_exec.jsonrpc.stream import StreamClosed
from trio_exec.proto import codec


@attrs.define(eq=False)
class RecordingStream:
    can_ping: bool = False
    writes: list[tuple[str, list[bytes]]] = attrs.field(factory=list)
    hold: trio.Event | None = None
    holding: trio.Event = attrs.field(factory=trio.Event)
    fail: BaseException | None = None
    _closed: trio.Event = attrs.field(factory=trio.Event)

    async def receive(self) -> bytes | str:
        await self._closed.wait()
        raise StreamClosed("closed by the test")

    async def send(self, payloads: list[codec.Encoded]) -> bool:
        if self.fail is not None:
            raise self.fail
        if self.hold is not None:
            hold, self.hold = self.hold, None
            self.holding.set()
            await hold.wait()
        name = trio.lowlevel.current_task().name
        self.writes.append((name, [bytes(p) if isinstance(p, bytes) else b"".join(p.parts)
                                   for p in payloads]))
        return True

    async def ping(self) -> None:
        raise AssertionError("never pinged")

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        self._closed.set()


def _peer(stream: RecordingStream) -> Peer:
    async def bad(_: codec.DecodeError) -> None:
        raise AssertionError("no bad message here")

    return Peer(stream, "peer-test", "client", on_request=lambda _: None,
                on_notification=lambda _: None, on_bad_message=bad, batch_bytes=1 << 20)


def _sent(stream: RecordingStream) -> list[bytes]:
    return [payload for _, payloads in stream.writes for payload in payloads]


async def _sender(peer: Peer, item: bytes, at_once: bool = True) -> None:
    await peer.send(item, at_once)


async def test_an_idle_writer_leaves_the_write_to_the_sender() -> None:
    stream = RecordingStream()
    peer = _peer(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_sender, peer, b"now", name="the sender")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_sender, peer, b"queued", False, name="a queuer")
            await trio.testing.wait_all_tasks_blocked()
            peer.cancel()
    assert [(task.rsplit(".", 1)[-1], payloads) for task, payloads in stream.writes] == [
        ("the sender", [b"now"]), ("_writer", [b"queued"])]


async def test_a_message_given_during_a_write_follows_it() -> None:
    """A sender writing at once is held mid-write; the next message is queued (not written
    beside it) and the writer writes it once the first write is done."""
    stream = RecordingStream(hold=trio.Event())
    peer = _peer(stream)
    release = stream.hold
    assert release is not None
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_sender, peer, b"first")
            await stream.holding.wait()
            nursery.start_soon(_sender, peer, b"second")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(_sender, peer, b"third")
            await trio.testing.wait_all_tasks_blocked()
            assert stream.writes == []
            release.set()
            await trio.testing.wait_all_tasks_blocked()
            peer.cancel()
    assert _sent(stream) == [b"first", b"second", b"third"]


async def test_a_message_given_while_the_writer_holds_others_is_queued_behind_them() -> None:
    stream = RecordingStream(hold=trio.Event())
    peer = _peer(stream)
    release = stream.hold
    assert release is not None
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            await peer.outbox.send(b"via the writer")
            await stream.holding.wait()  # the writer is mid-write, the outbox empty
            nursery.start_soon(_sender, peer, b"after it")
            await trio.testing.wait_all_tasks_blocked()
            assert stream.writes == []
            release.set()
            await trio.testing.wait_all_tasks_blocked()
            peer.cancel()
    assert _sent(stream) == [b"via the writer", b"after it"]


async def test_a_failed_write_at_once_ends_the_peer() -> None:
    stream = RecordingStream(fail=trio.BrokenResourceError("gone"))
    peer = _peer(stream)
    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            await nursery.start(peer.run)
            await trio.testing.wait_all_tasks_blocked()
            with pytest.raises(trio.BrokenResourceError):
                await peer.send(b"lost")
        # run returned by itself: the peer ended
        with pytest.raises(trio.BrokenResourceError):
            await peer.send(b"after the end")


async def test_a_closed_outbox_refuses_at_once() -> None:
    stream = RecordingStream()
    peer = _peer(stream)
    peer.close_outbox()
    with pytest.raises(trio.ClosedResourceError):
        await peer.send(b"late")
