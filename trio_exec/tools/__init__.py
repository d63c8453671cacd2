"""Agent tools built on an `Environment`, offered according to its capabilities."""

from .registry import ToolSet, open_toolset
from .spec import ToolError, ToolRejected, ToolResult, ToolSpec

__all__ = ["ToolError", "ToolRejected", "ToolResult", "ToolSet", "ToolSpec", "open_toolset"]
