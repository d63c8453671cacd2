"""`initialize`: attach the connection to a new or resumed session.

Rule: one successful `initialize` per connection (`ConnectionState.initializing`); a resume
goes through the registry, whose TTL check at resume time decides (`session/registry.py`). The
result carries the additive `capabilities` and `serverInfo` members (docs/extensions.md).
"""

from __future__ import annotations

from typing import Any

from trio_exec import __version__
from trio_exec.proto import methods
from trio_exec.proto.session_messages import InitializeParams, InitializeResult, ServerInfo
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


async def initialize(ctx: CallContext, params: InitializeParams) -> InitializeResult:
    conn = ctx.conn
    async with conn.initializing():
        attachment = Attachment(conn.label)
        if params.resume_session_id is not None:
            session = conn.registry.resume(params.resume_session_id, attachment)
        else:
            session = await conn.registry.create(attachment)
    conn.attach(session, attachment)
    ctx.after_reply(lambda: session.open_sink(attachment, NotificationSink(conn.sink)))
    return InitializeResult(
        session_id=session.session_id,
        environment_info=host_methods.environment_info(),
        capabilities={**CAPABILITIES, "containment": conn.registry.containment is not None},
        server_info=ServerInfo(name="trio-exec", version=__version__),
    )


SESSION_HANDLERS: dict[str, Handler] = {methods.INITIALIZE: initialize}
