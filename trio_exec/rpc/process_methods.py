"""`process/*` handlers: thin adapters from wire params to the session's process table.

Rule: each handler validates what serde would not (argv empty, base64, signal names), makes one
call on the table or the process, and returns the result object. The process speaks bytes and
domain values (`process/events.py`); the wire result is made here (`read_result`: base64, the
dialect's members). A long-poll read runs under
the attachment's guard, so a takeover answers it `session has been resumed by another
connection`.

0.169 (`proto/dialect.py`): a process started by a 0.169-dialect request remembers it; its
`envPolicy` builds the environment from the daemon's own without its secrets (`process/envpolicy.py`,
`process/daemonenv.py`; without one `env` is the whole environment, in both dialects); `metadata` is checked and otherwise informational;
the network members are accepted (trio-exec runs no network proxy). A `sandbox` context that
restricts the filesystem or the network confines the child (`confine.py`: Landlock, seccomp,
read-only binds) and the result says `sandboxType: "linuxSeccomp"`, as the reference's does;
if this host cannot build that confinement the start is refused (-32603 naming the reason) —
a child is never run unconfined when confinement was asked for. Otherwise 0.169 requests get
`sandboxType: "none"`.
"""

from __future__ import annotations

from typing import Any

import trio

from trio_exec.process.envpolicy import build_environment
from trio_exec.process.events import ProcessRead
from trio_exec.process.managed import parse_signal
from trio_exec.process.spawn import DEFAULT_COLS, DEFAULT_ROWS, SpawnRequest
from trio_exec.proto import b64, errors, methods
from trio_exec.proto import process_messages as m
from trio_exec.proto.dialect import Dialect
from trio_exec.rpc.context import CallContext, Handler
from trio_exec.sandbox import confine
from trio_exec.sandbox.policy import ServerPaths


async def start(ctx: CallContext, params: m.ProcessStartParams) -> m.ProcessStartResult:
    if params.metadata is not None and params.metadata.thread_id is not None:
        m.check_thread_id(params.metadata.thread_id)
    if not params.argv:
        raise errors.InvalidParams("argv must not be empty")
    form = ctx.form
    plan = None
    if form.is_v0169 and params.sandbox is not None:
        context = params.sandbox
        try:
            plan = await trio.to_thread.run_sync(
                lambda: confine.plan(context, ServerPaths.from_process()))
        except confine.Unenforceable as exc:
            raise errors.cannot_confine(str(exc)) from None
    env = params.env
    if params.env_policy is not None:
        env = build_environment(
            params.env_policy, params.env, ctx.session.processes.quota.inheritable_env
        )
    size = params.size
    request = SpawnRequest(
        argv=params.argv,
        cwd=params.cwd,
        env=env,
        tty=params.tty,
        arg0=params.arg0,
        pipe_stdin=bool(params.pipe_stdin),
        rows=size.rows if size else DEFAULT_ROWS,
        cols=size.cols if size else DEFAULT_COLS,
        confinement=plan,
    )
    process = await ctx.session.processes.start(params.process_id, request, form.dialect)
    ctx.after_reply(process.publish)
    sandbox_type = None
    if form.is_v0169:
        sandbox_type = confine.SANDBOX_TYPE if plan is not None else "none"
    return m.ProcessStartResult(process_id=params.process_id, sandbox_type=sandbox_type)


def read_result(read: ProcessRead, dialect: Dialect) -> m.ProcessReadResult:
    """The wire result of a read of a process of `dialect`: chunks in base64, `sandboxDenied`
    for a 0.169 process, `retentionGap` when output asked for was dropped."""
    gap = None
    if read.first_retained_seq is not None:
        gap = m.RetentionGap(after_seq=read.after_seq, first_retained_seq=read.first_retained_seq)
    return m.ProcessReadResult(
        chunks=[
            m.OutputChunk(seq=c.seq, stream=c.stream, chunk=b64.encode(c.data))
            for c in read.chunks
        ],
        next_seq=read.next_seq,
        exited=read.exited,
        exit_code=read.exit_code,
        closed=read.closed,
        failure=None,
        sandbox_denied=read.sandbox_denied if dialect is Dialect.V0169 else None,
        signal=read.signal,
        retention_gap=gap,
    )


async def read(ctx: CallContext, params: m.ProcessReadParams) -> m.ProcessReadResult:
    process = await ctx.session.processes.require(params.process_id)
    after_seq = params.after_seq or 0
    wait_ms = params.wait_ms or 0
    if not wait_ms:
        return read_result(await process.read(after_seq, params.max_bytes), process.dialect)
    attachment = ctx.attachment
    scope = attachment.guard()
    result = None
    try:
        with scope:
            result = await process.read(after_seq, params.max_bytes, wait_ms)
    finally:
        attachment.unguard(scope)
    if result is None:
        raise errors.session_resumed_elsewhere()
    return read_result(result, process.dialect)


async def write(ctx: CallContext, params: m.ProcessWriteParams) -> m.ProcessWriteResult:
    data = b64.decode_chunk(params.chunk)
    process = await ctx.session.processes.get(params.process_id)
    if process is None:
        return m.ProcessWriteResult(status="unknownProcess")
    status = await process.write(
        data, close_stdin=bool(params.close_stdin), write_id=params.write_id
    )
    return m.ProcessWriteResult(status=status)


async def terminate(ctx: CallContext, params: m.ProcessTerminateParams) -> m.ProcessRunningResult:
    process = await ctx.session.processes.get(params.process_id)
    return m.ProcessRunningResult(running=process is not None and process.terminate())


async def signal(ctx: CallContext, params: m.ProcessSignalParams) -> m.ProcessRunningResult:
    sig = parse_signal(params.signal)
    if sig is None:
        raise errors.unknown_signal(params.signal)
    process = await ctx.session.processes.get(params.process_id)
    return m.ProcessRunningResult(running=process is not None and process.send_signal(sig))


async def resize(ctx: CallContext, params: m.ProcessResizeParams) -> m.EmptyResult:
    process = await ctx.session.processes.require(params.process_id)
    if not process.resize(params.rows, params.cols):
        raise errors.no_terminal(params.process_id)
    return m.EmptyResult()


async def list_processes(ctx: CallContext, params: m.ProcessListParams) -> m.ProcessListResult:
    del params
    return m.ProcessListResult(
        processes=[
            m.ProcessInfo(
                process_id=p.process_id,
                argv=p.argv,
                pid=p.pid,
                tty=p.tty,
                state=p.state,
                exit_code=p.exit_code,  # type: ignore[arg-type]
                signal=p.signal_name,
            )
            for p in ctx.session.list_processes()
        ]
    )


PROCESS_HANDLERS: dict[str, Handler] = {
    methods.PROCESS_START: start,
    methods.PROCESS_READ: read,
    methods.PROCESS_WRITE: write,
    methods.PROCESS_TERMINATE: terminate,
    methods.PROCESS_SIGNAL: signal,
    methods.PROCESS_RESIZE: resize,
    methods.PROCESS_LIST: list_processes,
}

__all__: list[Any] = ["PROCESS_HANDLERS"]
