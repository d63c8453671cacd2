"""`initialize`: attach the connection to a new or resumed session.

Rule: one successful `initialize` per connection (`ConnectionState.initializing`); a resume
goes through the registry, whose TTL check at resume time decides (`session/registry.py`). The
result carries the additive `capabilities` and `serverInfo` members (docs/extensions.md).

The result is built in its wire form (`result_wire`: the message class's members, in field
order, omitted when None), equal to the converter's output (tests/test_domain_types.py): its
two JSON objects are already wire values, which the converter would walk member by member
(~110 calls, the largest part of an `initialize`'s own time).
"""

from __future__ import annotations

from typing import Any

import attrs

from trio_exec import __version__
from trio_exec.proto import methods
from trio_exec.proto.convert import unstructure, wire_name
from trio_exec.proto.session_messages import InitializeParams, InitializeResult, ServerInfo
from trio_exec.proto.types import Wire
from trio_exec.rpc import host_methods
from trio_exec.rpc.context import CallContext, Handler
from trio_exec.rpc.notifications import NotificationSink
from trio_exec.session.session import Attachment

CAPABILITIES: dict[str, Any] = {
    "exec": True,
    "filesystem": True,
    "methods": sorted(methods.METHODS),
    "processSignal": True,
    "processResize": True,
    "processList": True,
    "pipeStdin": True,
    "closeStdin": True,
    "retentionGap": True,
    "takeover": True,
}


_RESULT_FIELDS = attrs.fields(InitializeResult)
_SESSION_ID, _ENVIRONMENT_INFO, _CAPABILITIES, _SERVER_INFO = (wire_name(f) for f in _RESULT_FIELDS)
assert [f.name for f in _RESULT_FIELDS] == [
    "session_id", "environment_info", "capabilities", "server_info"]
assert all(f.metadata.get("omit_if_none") for f in _RESULT_FIELDS[1:])


def result_wire(result: InitializeResult) -> Wire[InitializeResult]:
    """`result` in its wire form, as the converter would make it (see the module rule)."""
    out: dict[str, Any] = {_SESSION_ID: result.session_id}
    if result.environment_info is not None:
        out[_ENVIRONMENT_INFO] = result.environment_info
    if result.capabilities is not None:
        out[_CAPABILITIES] = result.capabilities
    if result.server_info is not None:
        out[_SERVER_INFO] = unstructure(result.server_info)
    return Wire(out)


async def initialize(ctx: CallContext, params: InitializeParams) -> Wire[InitializeResult]:
    conn = ctx.conn
    async with conn.initializing():
        attachment = Attachment(conn.label)
        if params.resume_session_id is not None:
            session = conn.registry.resume(params.resume_session_id, attachment)
        else:
            session = await conn.registry.create(attachment)
    conn.attach(session, attachment)
    ctx.after_reply(lambda: session.open_sink(attachment, NotificationSink(conn.sink)))
    return result_wire(InitializeResult(
        session_id=session.session_id,
        environment_info=host_methods.environment_info(),
        capabilities={**CAPABILITIES, "containment": conn.registry.containment is not None},
        server_info=ServerInfo(name="trio-exec", version=__version__),
    ))


SESSION_HANDLERS: dict[str, Handler] = {methods.INITIALIZE: initialize}
