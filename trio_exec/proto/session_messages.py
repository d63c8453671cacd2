"""Handshake messages: `initialize` and its result."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from trio_exec.proto.types import omit_if_none


@attrs.frozen(kw_only=True)
class InitializeParams:
    __rust_name__: ClassVar[str] = "InitializeParams"
    __rust_len__: ClassVar[int] = 2

    client_name: str
    resume_session_id: str | None = None


@attrs.frozen(kw_only=True)
class ServerInfo:
    name: str
    version: str


@attrs.frozen(kw_only=True)
class InitializeResult:
    session_id: str
    #: Additive (the 0.169 dialect's member; the 0.120 client ignores it).
    environment_info: dict[str, Any] | None = attrs.field(default=None, metadata=omit_if_none())
    #: Additive: which optional services and extension methods this server offers.
    capabilities: dict[str, Any] | None = attrs.field(default=None, metadata=omit_if_none())
    server_info: ServerInfo | None = attrs.field(default=None, metadata=omit_if_none())
