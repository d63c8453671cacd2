"""What a tool is: a name, a description, a JSON schema, the capability it needs, a handler.

Rules:
- A tool whose capability is off in the environment is not offered (`ToolSet.specs()` omits
  it) and calling it anyway raises `ToolRejected` (the runtime backstop); its handler checks
  the capability once more, so a handler reached some other way refuses too.
- Arguments are checked against the schema before the handler runs; a bad one is a
  `ToolArgumentError` whose text starts like codex's ("failed to parse function arguments: ").
- A handler's failure (a wire error, a bad argument, an unavailable service) is returned as a
  `ToolResult` with `ok=False` and the reason, never raised to the agent loop.
- A parameter is {name: (json type, description)}; "number" is what codex declares for its
  integer parameters: an integer is required (1.5 is refused, as codex refuses it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from trio_exec.environment.base import Environment, EnvironmentUnavailable

EXEC = "exec"
FILESYSTEM = "filesystem"
ARGUMENT_ERROR_PREFIX = "failed to parse function arguments: "


class ToolRejected(Exception):
    """The tool is not offered in this environment (or does not exist)."""


class ToolError(Exception):
    """A tool call that cannot be carried out; `str(err)` goes back to the model."""


class ToolArgumentError(ToolError):
    """The arguments do not match the tool's schema."""


@attrs.frozen(kw_only=True)
class Image:
    """An image a tool returns: its data URL, MIME type and pixel size."""

    data_url: str
    mime_type: str
    width: int
    height: int
    byte_size: int


@attrs.frozen(kw_only=True)
class ToolResult:
    """`text` is the output for the model; an image result also has `image`, and `output()`
    is then the content list the Responses API takes for a function call's output."""

    ok: bool
    text: str
    image: Image | None = None

    def output(self) -> str | list[dict[str, Any]]:
        """What goes into `function_call_output.output`."""
        if self.image is None:
            return self.text
        return [{"type": "input_image", "image_url": self.image.data_url, "detail": "high"}]


@attrs.frozen(kw_only=True)
class Reply:
    """What a handler returns when its result is more than text."""

    text: str
    image: Image | None = None


Handler = Callable[[Mapping[str, Any]], Awaitable[str | Reply]]


@attrs.frozen(kw_only=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]
    capability: str
    handler: Handler = attrs.field(repr=False)

    def to_openai(self, style: str = "responses") -> dict[str, Any]:
        """The function-calling declaration: the Responses API's flat shape (what codex
        sends), or with style="chat" the Chat Completions `{"type", "function": {...}}`."""
        body = {"name": self.name, "description": self.description,
                "parameters": self.parameters}
        if style == "chat":
            return {"type": "function", "function": body}
        return {"type": "function", **body, "strict": False}


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


Param = tuple[str, str]


def schema(required: dict[str, Param], optional: dict[str, Param] | None = None) -> dict[str, Any]:
    """A JSON object schema from {name: (json type, description)}."""
    props = {
        name: {"type": kind, "description": text}
        for name, (kind, text) in sorted({**required, **(optional or {})}.items())
    }
    return {"type": "object", "properties": props, "required": sorted(required),
            "additionalProperties": False}


def _type_ok(kind: str, value: object) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("integer", "number"):
        return isinstance(value, int) and not isinstance(value, bool)
    return False


def check_args(spec: ToolSpec, args: Mapping[str, Any]) -> None:
    """Refuse missing, unknown or mistyped arguments with a message the model can act on."""
    def bad(text: str) -> ToolArgumentError:
        return ToolArgumentError(f"{ARGUMENT_ERROR_PREFIX}{spec.name}: {text}")

    if not isinstance(args, Mapping):
        raise bad("the arguments must be a JSON object")
    props: dict[str, Any] = spec.parameters["properties"]
    for name in spec.parameters["required"]:
        if name not in args:
            raise bad(f"missing argument `{name}`")
    for name, value in args.items():
        if name not in props:
            raise bad(f"unknown argument `{name}`")
        kind = props[name]["type"]
        if not _type_ok(kind, value):
            wanted = "an integer" if kind in ("integer", "number") else f"a {kind}"
            raise bad(f"argument `{name}` must be {wanted}, got {value!r}")
