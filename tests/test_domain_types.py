"""The services speak domain types; `rpc/` alone makes the wire forms.

- A real process reports `bytes` and typed events (`process/events.py`), never base64 or
  encoded notifications; `rpc/process_methods.read_result` and `rpc/notifications.py` turn
  them into the wire's members (`sandboxDenied` only for a 0.169 process, `signal` only when
  one ended it), and the fast `process/output` path equals the converter's.
- `LocalFilesystem` judges each path it touches once, with the ONE access policy it is given;
  `rpc/fs_methods.access_policy` picks it by the request's dialect.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from trio_exec.fs import LocalFilesystem
from trio_exec.fs.watch import MissingChanged
from trio_exec.process.events import (
    ProcessClosed,
    ProcessEvent,
    ProcessExited,
    ProcessOutput,
    ProcessRead,
)
from trio_exec.process.outputlog import Chunk
from trio_exec.process.spawn import SpawnRequest
from trio_exec.process.table import ProcessTable
from trio_exec.process.usage import ResourceUsage
from trio_exec.proto import b64, dialect, methods
from trio_exec.proto.convert import structure_params, unstructure
from trio_exec.proto.dialect import Dialect
from trio_exec.proto.errors import InternalError, InvalidRequest
from trio_exec.proto.process_messages import ProcessOutputNotification
from trio_exec.proto.sandbox import ReadOnly
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.proto.session_messages import InitializeResult, ServerInfo
from trio_exec.rpc.fs_methods import access_policy
from trio_exec.rpc.host_methods import environment_info
from trio_exec.rpc.notifications import encode_event, output_params
from trio_exec.rpc.process_methods import read_result
from trio_exec.rpc.session_methods import CAPABILITIES, result_wire
from trio_exec.sandbox.access import UNRESTRICTED, ContextAccess, PolicyAccess
from trio_exec.sandbox.policy import Access, ServerPaths

# --- the process service ---------------------------------------------------------------------


async def run_to_close(argv: list[str], dialect: Dialect) -> tuple[list[ProcessEvent], ProcessRead]:
    """Run `argv` through a real `ProcessTable`; every event it emitted, and a read from 0."""
    events: list[ProcessEvent] = []
    closed = trio.Event()

    async def emit(event: ProcessEvent) -> None:
        events.append(event)
        if isinstance(event, ProcessClosed):
            closed.set()

    async with trio.open_nursery() as nursery:
        table = ProcessTable(nursery, emit)
        request = SpawnRequest(argv=argv, cwd="/", env={"PATH": os.environ["PATH"]}, tty=False)
        process = await table.start("p", request, dialect)
        process.publish()
        await closed.wait()
        read = await process.read(0)
        nursery.cancel_scope.cancel()
    return events, read


def without_usage(events: list[Any]) -> list[Any]:
    """The events with the exit's measured `resource_usage` checked for shape, then cleared."""
    out = []
    for event in events:
        if isinstance(event, ProcessExited):
            used = event.resource_usage
            assert used is None or min(used.user_cpu_usec, used.system_cpu_usec,
                                       used.max_rss_bytes) >= 0
            event = attrs.evolve(event, resource_usage=None)
        out.append(event)
    return out


async def test_a_process_reports_bytes_and_typed_events() -> None:
    events, read = await run_to_close(["sh", "-c", "printf 'a\\377b'; exit 3"], Dialect.V0120)
    events = without_usage(events)
    assert events == [
        ProcessOutput(process_id="p", chunk=Chunk(1, "stdout", b"a\xffb")),
        ProcessExited(
            process_id="p", seq=2, exit_code=3, signal=None, sandbox_denied=False,
            dialect=Dialect.V0120,
        ),
        ProcessClosed(process_id="p", seq=3),
    ]
    assert read == ProcessRead(
        after_seq=0, chunks=[Chunk(1, "stdout", b"a\xffb")], next_seq=2,
        first_retained_seq=None, exited=True, exit_code=3, signal=None, sandbox_denied=False,
        closed=True,
    )


async def test_a_0169_process_keeps_its_dialect_on_its_exit_event() -> None:
    events, read = await run_to_close(["sh", "-c", "kill -TERM $$"], Dialect.V0169)
    events = without_usage(events)
    assert events[-2:] == [
        ProcessExited(
            process_id="p", seq=1, exit_code=143, signal="SIGTERM", sandbox_denied=False,
            dialect=Dialect.V0169,
        ),
        ProcessClosed(process_id="p", seq=2),
    ]
    assert read.next_seq == 3  # the 0.169 rule: the exit and close events are counted


def wire(event: ProcessEvent | MissingChanged) -> object:
    return orjson.loads(encode_event(event))


def test_notifications_carry_the_members_of_their_dialect() -> None:
    assert wire(ProcessOutput(process_id="p", chunk=Chunk(4, "stderr", b"\x00\xff"))) == {
        "method": "process/output",
        "params": {"processId": "p", "seq": 4, "stream": "stderr", "chunk": "AP8="},
    }
    exited = ProcessExited(
        process_id="p", seq=5, exit_code=137, signal="SIGKILL", sandbox_denied=True,
        dialect=Dialect.V0169,
    )
    assert encode_event(exited) == (
        b'{"method":"process/exited","params":{"processId":"p","seq":5,"exitCode":137,'
        b'"sandboxDenied":true,"signal":"SIGKILL"}}'
    )
    assert encode_event(attrs.evolve(exited, dialect=Dialect.V0120, exit_code=-1)) == (
        b'{"method":"process/exited","params":{"processId":"p","seq":5,"exitCode":-1,'
        b'"signal":"SIGKILL"}}'
    )
    assert encode_event(attrs.evolve(exited, signal=None, sandbox_denied=False, exit_code=0)) == (
        b'{"method":"process/exited","params":{"processId":"p","seq":5,"exitCode":0,'
        b'"sandboxDenied":false}}'
    )
    assert encode_event(ProcessClosed(process_id="p", seq=6)) == (
        b'{"method":"process/closed","params":{"processId":"p","seq":6}}'
    )
    assert encode_event(MissingChanged(watch_id=7)) == (
        b'{"method":"fs/missingChanged","params":{"watchId":7}}'
    )


@given(
    process_id=st.text(max_size=40),
    seq=st.integers(1, 2**63 - 1),
    stream=st.sampled_from(["stdout", "stderr", "pty"]),
    data=st.binary(max_size=300),
)
def test_the_fast_output_path_equals_the_converter(
    process_id: str, seq: int, stream: str, data: bytes
) -> None:
    event = ProcessOutput(process_id=process_id, chunk=Chunk(seq, stream, data))
    message = ProcessOutputNotification(
        process_id=process_id, seq=seq, stream=stream, chunk=b64.encode(data)
    )
    params = output_params(event)
    assert list(params.items()) == list(unstructure(message).items())  # member order too
    assert orjson.loads(encode_event(event)) == {"method": methods.PROCESS_OUTPUT, "params": params}


def test_the_read_result_gets_its_wire_members_from_the_process_dialect() -> None:
    read = ProcessRead(
        after_seq=1, chunks=[Chunk(3, "stdout", b"hi")], next_seq=4, first_retained_seq=3,
        exited=True, exit_code=1, signal=None, sandbox_denied=True, closed=False,
    )
    assert unstructure(read_result(read, Dialect.V0169)) == {
        "chunks": [{"seq": 3, "stream": "stdout", "chunk": "aGk="}],
        "nextSeq": 4, "exited": True, "exitCode": 1, "closed": False, "failure": None,
        "sandboxDenied": True, "retentionGap": {"afterSeq": 1, "firstRetainedSeq": 3},
    }
    plain = unstructure(read_result(attrs.evolve(read, first_retained_seq=None), Dialect.V0120))
    assert "sandboxDenied" not in plain
    assert "retentionGap" not in plain


# --- the fs service -------------------------------------------------------------------------


@attrs.define
class Counted:
    """A real access policy, with every judgement it makes recorded."""

    inner: PolicyAccess | ContextAccess
    judged: list[tuple[str, Access]] = attrs.field(factory=list)

    def judge(
        self, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
    ) -> str | None:
        self.judged.append((path, access))
        return self.inner.judge(path, access, server, follow_leaf=follow_leaf)


async def test_the_filesystem_judges_each_path_once_with_its_one_policy(tmp_path: Path) -> None:
    fs = LocalFilesystem(cwd=str(tmp_path), tmpdir=None)
    source, destination = tmp_path / "a", tmp_path / "b"
    source.write_bytes(b"x")
    policy = Counted(PolicyAccess(ReadOnly()))
    assert await fs.read_file(str(source), policy=policy) == b"x"
    assert policy.judged == [(str(source), Access.READ)]
    policy.judged.clear()
    with pytest.raises(InvalidRequest, match="fs/write is not permitted"):
        await fs.copy(str(source), str(destination), recursive=False, policy=policy)
    assert policy.judged == [(str(source), Access.READ), (str(destination), Access.WRITE)]
    assert not destination.exists()


async def test_a_context_policy_refuses_as_the_os_would(tmp_path: Path) -> None:
    fs = LocalFilesystem(cwd=str(tmp_path), tmpdir=None)
    readable = {"path": {"type": "path", "path": str(tmp_path)}, "access": "read"}
    context = SandboxContext(permissions={
        "type": "managed", "file_system": {"type": "restricted", "entries": [readable]},
    })
    policy = ContextAccess(context)
    assert await fs.get_metadata(str(tmp_path), policy=policy)
    with pytest.raises(InternalError, match=os.strerror(errno.EROFS)):
        await fs.create_directory(str(tmp_path / "d"), policy=policy)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"path": "/x"}, UNRESTRICTED),
        ({"path": "/x", "sandboxPolicy": {"type": "read-only"}}, PolicyAccess(ReadOnly())),
        # 0.169: the sandbox context decides, the 0.120 member is ignored
        ({"path": "/x", "sandboxPolicy": {"type": "read-only"}, "sandbox": None}, UNRESTRICTED),
    ],
)
def test_the_request_dialect_picks_the_access_policy(
    raw: dict[str, object], expected: object
) -> None:
    spec = methods.METHODS[methods.FS_READ_FILE]
    spoken = dialect.detect(raw, method_is_v0169=spec.v0169_only)
    params = structure_params(raw, spec.params, spoken)
    assert access_policy(params, dialect.form(spoken, params)) == expected


def test_the_exit_event_carries_its_resource_usage_last() -> None:
    exited = ProcessExited(
        process_id="p", seq=2, exit_code=0, signal=None, sandbox_denied=False,
        dialect=Dialect.V0120,
        resource_usage=ResourceUsage(user_cpu_usec=1, system_cpu_usec=2, max_rss_bytes=3),
    )
    assert encode_event(exited) == (
        b'{"method":"process/exited","params":{"processId":"p","seq":2,"exitCode":0,'
        b'"resourceUsage":{"userCpuUsec":1,"systemCpuUsec":2,"maxRssBytes":3}}}'
    )


def test_the_initialize_result_wire_form_equals_the_converters() -> None:
    environment = environment_info()
    for result in (
        InitializeResult(
            session_id="s-1", environment_info=environment,
            capabilities={**CAPABILITIES, "containment": False},
            server_info=ServerInfo(name="trio-exec", version="1.2.3"),
        ),
        InitializeResult(session_id="s-2"),
    ):
        wire = result_wire(result).value
        assert isinstance(wire, dict)
        assert list(wire.items()) == list(unstructure(result).items())  # member order too
