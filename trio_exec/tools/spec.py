"""What a tool is: a name, a description, a JSON schema, the capability it needs, a handler.

Rules:
- A tool whose capability is off in the environment is not offered (`ToolSet.specs()` omits
  it) and calling it anyway raises `ToolRejected` (the runtime backstop); its handler checks
  the capability once more, so a handler reached some other way refuses too.
- A handler's failure (a wire error, a bad argument, an unavailable service) is returned as a
  `ToolResult` with `ok=False` and the reason, never raised to the agent loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from ..environment.base import Environment, EnvironmentUnavailable

EXEC = "exec"
FILESYSTEM = "filesystem"


class ToolRejected(Exception):
    """The tool is not offered in this environment (or does not exist)."""


class ToolError(Exception):
    """A tool call that cannot be carried out; `str(err)` goes back to the model."""


@attrs.frozen(kw_only=True)
class ToolResult:
    ok: bool
    text: str


Handler = Callable[[Mapping[str, Any]], Awaitable[str]]


@attrs.frozen(kw_only=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    capability: str
    handler: Handler = attrs.field(repr=False)


def capability_enabled(env: Environment, capability: str) -> bool:
    if capability == EXEC:
        return env.capabilities.exec_enabled
    if capability == FILESYSTEM:
        return env.capabilities.filesystem_enabled
    return False


def require(env: Environment, capability: str) -> None:
    """The handlers' backstop."""
    if not capability_enabled(env, capability):
        raise EnvironmentUnavailable(f"{capability} is not available in the {env.kind} environment")


def schema(required: dict[str, str], optional: dict[str, str] | None = None) -> dict[str, Any]:
    """A JSON object schema from {name: json type}."""
    props = {name: {"type": kind} for name, kind in {**required, **(optional or {})}.items()}
    return {"type": "object", "properties": props, "required": sorted(required),
            "additionalProperties": False}


_TYPES: dict[str, type | tuple[type, ...]] = {"string": str, "integer": int, "boolean": bool}


def check_args(spec: ToolSpec, args: Mapping[str, Any]) -> None:
    """Refuse missing, unknown or mistyped arguments with a message the model can act on."""
    props: dict[str, Any] = spec.parameters["properties"]
    for name in spec.parameters["required"]:
        if name not in args:
            raise ToolError(f"{spec.name}: missing argument `{name}`")
    for name, value in args.items():
        if name not in props:
            raise ToolError(f"{spec.name}: unknown argument `{name}`")
        kind = props[name]["type"]
        expected = _TYPES[kind]
        if not isinstance(value, expected) or (kind == "integer" and isinstance(value, bool)):
            raise ToolError(f"{spec.name}: argument `{name}` must be a {kind}")
