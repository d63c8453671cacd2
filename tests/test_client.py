"""The client library against the real daemon: typed calls, wire errors, concurrency,
per-process channels, and what happens to pending calls when the connection dies."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing
from support.daemon import alive, in_memory_daemon, tcp_daemon, wait_dead

from trio_exec.client import (
    ConnectFailed,
    ConnectionLost,
    open_client,
    open_client_over_stream,
)
from trio_exec.proto import codec
from trio_exec.proto.errors import InternalError, InvalidRequest, NotFound

TIMEOUT = 10
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}


async def output_of(process: object) -> bytes:
    data = b""
    async for chunk in process.output():  # type: ignore[attr-defined]
        data += chunk.data
    return data


async def test_typed_calls_over_tcp(tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon() as served, open_client(served.url, client_name="test") as client:
            assert client.session_id is not None
            assert client.capabilities.get("exec") is True
            process = await client.process_start(["/bin/echo", "hi"], cwd="/", env=ENV)
            assert await output_of(process) == b"hi\n"
            assert await process.wait() == 0
            result = await client.process_read(process.process_id)
            assert result.exited and result.closed and result.exit_code == 0
            [info] = [p for p in await client.process_list() if p.process_id == process.process_id]
            assert info.argv == ["/bin/echo", "hi"]
            await client.fs_write_file(f"{tmp_path}/f", b"data")
            assert await client.fs_read_file(f"{tmp_path}/f") == b"data"
            assert (await client.fs_get_metadata(f"{tmp_path}/f")).is_file
            await client.fs_create_directory(f"{tmp_path}/d/e")
            await client.fs_copy(f"{tmp_path}/f", f"{tmp_path}/d/g", recursive=False)
            names = sorted(e.file_name for e in await client.fs_read_directory(f"{tmp_path}/d"))
            assert names == ["e", "g"]
            await client.fs_remove(f"{tmp_path}/d")
            with pytest.raises(NotFound, match=r"No such file or directory \(os error 2\)"):
                await client.fs_read_file(f"{tmp_path}/d/g")


async def test_wire_errors_are_the_proto_classes() -> None:
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect) as client:
            with pytest.raises(InvalidRequest, match=r"^unknown process id nope$"):
                await client.process_read("nope")
            with pytest.raises(InternalError, match=r"^No such file or directory \(os error 2\)$"):
                await client.process_start(["/no/such"], cwd="/", env=ENV, process_id="x")
            assert await client.process_write("nope", b"x") == "unknownProcess"
            assert await client.process_terminate("nope") is False


async def test_failed_start_unregisters_its_channel() -> None:
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect) as client:
            with pytest.raises(InternalError):
                await client.process_start(["/no/such"], cwd="/", env=ENV, process_id="same")
            process = await client.process_start(["/bin/echo", "ok"], cwd="/", env=ENV,
                                                 process_id="same")
            assert await output_of(process) == b"ok\n"


async def test_duplicate_live_id_is_refused_locally() -> None:
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect) as client:
            process = await client.process_start(["sleep", "10"], cwd="/", env=ENV, process_id="p")
            with pytest.raises(InvalidRequest, match=r"^process p already exists$"):
                await client.process_start(["true"], cwd="/", env=ENV, process_id="p")
            await process.terminate()
            assert await process.wait() == -1


async def test_concurrent_calls_and_processes_do_not_cross() -> None:
    outputs: dict[int, bytes] = {}

    async def one(client: object, i: int) -> None:
        process = await client.process_start(  # type: ignore[attr-defined]
            ["/bin/sh", "-c", f"for j in 1 2 3; do echo {i}-$j; done"], cwd="/", env=ENV
        )
        outputs[i] = await output_of(process)

    with trio.fail_after(TIMEOUT):
        async with (
            in_memory_daemon() as daemon,
            open_client_over_stream(daemon.connect) as client,
            trio.open_nursery() as nursery,
        ):
            for i in range(25):
                nursery.start_soon(one, client, i)
                nursery.start_soon(client.fs_get_metadata, "/")
    assert outputs == {i: f"{i}-1\n{i}-2\n{i}-3\n".encode() for i in range(25)}


async def test_long_poll_does_not_block_other_calls() -> None:
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect) as client:
            process = await client.process_start(["sleep", "10"], cwd="/", env=ENV)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: client.process_read(process.process_id, wait_ms=5000))
                await client.fs_get_metadata("/")  # answered while the long-poll waits
                assert await process.terminate()
            assert await process.wait() == -1


async def test_without_reconnect_every_pending_call_fails_when_the_socket_dies() -> None:
    """A long-poll and a process output wait are in flight when the stream breaks: both
    fail at once with ConnectionLost, and so does any later call."""
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect) as client:
            process = await client.process_start(["sleep", "10"], cwd="/", env=ENV)
            failures: list[BaseException] = []

            async def long_poll() -> None:
                try:
                    await client.process_read(process.process_id, after_seq=0, wait_ms=60_000)
                except ConnectionLost as exc:
                    failures.append(exc)

            async def consume() -> None:
                try:
                    await output_of(process)
                except ConnectionLost as exc:
                    failures.append(exc)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(long_poll)
                nursery.start_soon(consume)
                await trio.testing.wait_all_tasks_blocked()
                daemon.break_current()
            assert len(failures) == 2
            assert any(isinstance(f, ConnectionLost) and f.maybe_applied for f in failures)
            with pytest.raises(ConnectionLost):
                await client.fs_get_metadata("/")
            assert process.failure is not None and "lost" in process.failure


async def test_connect_failure_is_clear() -> None:
    with trio.fail_after(TIMEOUT):
        listener = (await trio.open_tcp_listeners(0, host="127.0.0.1"))[0]
        port = listener.socket.getsockname()[1]
        await listener.aclose()
        with pytest.raises(ConnectFailed, match=f"ws://127.0.0.1:{port}.*refused"):
            async with open_client(f"ws://127.0.0.1:{port}"):
                pass


async def test_auth_token_is_sent() -> None:
    with trio.fail_after(TIMEOUT):
        async with tcp_daemon(auth_token="s3cret") as served:
            async with open_client(served.url, auth_token="s3cret") as client:
                assert client.session_id
            with pytest.raises(ConnectFailed, match=r"401"):
                async with open_client(served.url, auth_token="wrong"):
                    pass


async def test_tap_sees_messages_before_dispatch() -> None:
    seen: list[str] = []

    def tap(message: codec.Message) -> bool:
        if isinstance(message, codec.Notification):
            seen.append(message.method)
        return False

    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon, open_client_over_stream(daemon.connect, tap=tap) as client:
            process = await client.process_start(["/bin/true"], cwd="/", env=ENV)
            await output_of(process)
    assert seen[-2:] == ["process/exited", "process/closed"]


async def test_a_reply_filed_before_the_link_is_killed_is_still_returned() -> None:
    """Race: the reader files a call's reply, and the link is killed (break_connection, a
    closing client) before the caller has run. The caller must get its reply, not a
    LinkLost claiming the call may or may not have been applied."""
    import json

    from trio_exec.client.link import Link

    link: Link | None = None
    inbound_send, inbound_receive = trio.open_memory_channel[str](1)
    sent_frames: list[str] = []
    replies_given: list[str] = []

    class FakeWebSocket:
        async def get_message(self) -> str:
            if replies_given and link is not None:  # the reply was just filed: kill, no yield
                link.kill("killed right after the reply was filed")
                await trio.sleep_forever()
            frame = await inbound_receive.receive()
            replies_given.append(frame)
            return frame

        async def send_message(self, frame: str) -> None:
            sent_frames.append(frame)
            request_id = json.loads(frame)["id"]
            inbound_send.send_nowait(json.dumps({"id": request_id, "result": {"ok": True}}))

        async def aclose(self) -> None:
            pass

    link = Link(FakeWebSocket(), lambda method, params: None)  # type: ignore[arg-type]
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(link.run)
            assert await link.request("fs/remove", {}) == {"ok": True}


async def test_an_exception_from_the_block_keeps_its_own_cause() -> None:
    """The block's exception comes out as itself, not in a group, and unchanged: its
    `__cause__` (raise ... from ...) is the caller's, not erased by the unwrapping."""

    class Mine(Exception):
        pass

    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            with pytest.raises(Mine) as raised:
                async with open_client_over_stream(daemon.connect):
                    try:
                        raise KeyError("original")
                    except KeyError as original:
                        raise Mine("wrapped") from original
            assert isinstance(raised.value.__cause__, KeyError)


@attrs.define(eq=False)
class HoldableStream(trio.abc.Stream):
    """While `held`, what the daemon sends reaches the client only once `released` is set:
    a reply can be kept from the client at a scripted point."""

    inner: trio.abc.Stream
    held: bool = False
    released: trio.Event = attrs.field(factory=trio.Event)

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        data = await self.inner.receive_some(max_bytes)
        if self.held:
            await self.released.wait()
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_a_cancelled_start_terminates_the_process_it_left_running() -> None:
    """The start reaches the daemon and the child runs, but its answer is held back and the
    caller gives up (cancels): the client terminates that child in the background instead of
    leaving it to run, unreachable, for the session's whole life."""
    with trio.fail_after(TIMEOUT):
        async with in_memory_daemon() as daemon:
            streams: list[HoldableStream] = []

            async def connect() -> trio.abc.Stream:
                streams.append(HoldableStream(await daemon.connect()))
                return streams[-1]

            async with open_client_over_stream(connect) as client:
                [session] = daemon.daemon.registry.sessions()
                streams[-1].held = True
                registered = session.processes._for_testing_registered
                with trio.CancelScope() as giving_up:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(functools.partial(
                            client.process_start, ["/bin/sleep", "1000"], cwd="/", env=ENV,
                            process_id="s"))
                        await registered.wait()
                        [started] = session.list_processes()
                        giving_up.cancel()
                assert alive(started.pid)
                streams[-1].released.set()
                await wait_dead(started.pid)  # the kill is the daemon's, on real time
