"""Agent tools built on an `Environment`, offered according to its capabilities."""

from trio_exec.tools.registry import ToolSet, open_toolset
from trio_exec.tools.spec import (
    EXEC,
    FILESYSTEM,
    Image,
    ToolArgumentError,
    ToolError,
    ToolRejected,
    ToolResult,
    ToolSpec,
)

__all__ = [
    "EXEC",
    "FILESYSTEM",
    "Image",
    "ToolArgumentError",
    "ToolError",
    "ToolRejected",
    "ToolResult",
    "ToolSet",
    "ToolSpec",
    "open_toolset",
]
