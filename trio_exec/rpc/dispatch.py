"""Request dispatch: method table → params → handshake gate → handler → result.

Rules:
- Order of checks, as the reference: unknown method (-32601, also before `initialize`), then
  params (-32602), then the handshake gate (-32600), then the handler.
- `initialize` succeeds once per connection; a failed one may be retried. `initialized`
  opens the gate for `process/*` and `fs/*`; before a successful `initialize` it is ignored.
- Handlers are thin: they get a `CallContext` (`rpc/context.py`) and the params, and return a
  result object. `HANDLERS` is the one table from method name to handler; its entries come from
  the method adapters (`session_methods`, `process_methods`, `fs_methods`, `host_methods`).
- Each request's form (`proto/dialect.py` states the rule): its dialect is detected from the
  method and the raw params' member names before structuring, the params are structured by the
  converter of that dialect, and the form is read from the detected dialect and the structured
  params' path members. It is put on the `CallContext` (`ctx.form`) before the handler runs.
"""

from __future__ import annotations

import logging
from typing import Any

from trio_exec.proto import dialect, errors, methods
from trio_exec.proto.convert import structure_params, unstructure
from trio_exec.rpc.context import CallContext, ConnectionState, Handler
from trio_exec.rpc.fs_methods import CONTEXT_HANDLERS as FS_HANDLERS
from trio_exec.rpc.host_methods import HOSTENV_HANDLERS
from trio_exec.rpc.process_methods import PROCESS_HANDLERS
from trio_exec.rpc.session_methods import SESSION_HANDLERS

log = logging.getLogger(__name__)

HANDLERS: dict[str, Handler] = {
    **SESSION_HANDLERS,
    **PROCESS_HANDLERS,
    **HOSTENV_HANDLERS,
    **FS_HANDLERS,
}


def check_gate(conn: ConnectionState, service: str) -> None:
    if conn.session is None:
        raise errors.not_initialized(service)
    if not conn.acknowledged:
        raise errors.not_acknowledged(service)


async def call(ctx: CallContext, method: str, raw_params: Any) -> Any:
    """The JSON result of one request, or an `RpcError`."""
    spec = methods.METHODS.get(method)
    handler = HANDLERS.get(method)
    if spec is None or handler is None:
        raise errors.method_not_found(method)
    spoken = dialect.detect(raw_params, method_is_v0169=spec.v0169_only)
    params: Any = structure_params(raw_params, spec.params, spoken)
    ctx.form = dialect.form(spoken, params)
    if spec.service is not None:
        check_gate(ctx.conn, spec.service)
    result = await handler(ctx, params)
    return unstructure(result)


def handle_notification(conn: ConnectionState, method: str) -> None:
    if method == methods.INITIALIZED:
        if conn.session is None:
            log.info("%s: `initialized` before `initialize`, ignored", conn.label)
            return
        conn.acknowledged = True
        return
    log.info("%s: unknown notification %r ignored", conn.label, method)
