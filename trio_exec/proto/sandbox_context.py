"""The 0.169 dialect's `sandbox` member: a `FileSystemSandboxContext`.

Shape (docs/protocol-dialects.md §5.3): a camelCase envelope `{permissions, cwd?,
workspaceRoots?, windowsSandboxLevel?, …}` around snake_case `permissions`
`{type: managed|disabled|external, file_system?: {type, entries?}, network?}`.

Rules: decoded while the params are structured, so a bad context is -32602 with serde's text
(``missing field `permissions` ``, ``unknown variant `bogus`, expected one of `managed`,
`disabled`, `external` ``); `cwd` and `workspaceRoots` are path members (URIs, per member, like
every other path). The rest of `permissions` is kept as sent; `fs/context_policy.py` reads it.
Nothing here imports trio.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from .errors import InvalidParams
from .serde import invalid_type
from .types import AbsPath

PERMISSION_TYPES = ("managed", "disabled", "external")


@attrs.frozen(kw_only=True)
class SandboxContext:
    permissions: dict[str, Any]
    cwd: AbsPath | None = None
    workspace_roots: list[AbsPath] = attrs.field(factory=list)

    @property
    def kind(self) -> str:
        return str(self.permissions["type"])


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise invalid_type(value, "a sequence")
    return value


def decode(conv: cattrs.Converter, value: object) -> SandboxContext:
    if not isinstance(value, dict):
        raise invalid_type(value, "struct FileSystemSandboxContext")
    if "permissions" not in value:
        raise InvalidParams("missing field `permissions`")
    permissions = value["permissions"]
    if not isinstance(permissions, dict):
        raise invalid_type(permissions, "internally tagged enum PermissionProfile")
    kind = permissions.get("type")
    if kind is None:
        raise InvalidParams("missing field `type`")
    if kind not in PERMISSION_TYPES:
        expected = ", ".join(f"`{name}`" for name in PERMISSION_TYPES)
        shown = kind if isinstance(kind, str) else str(kind)
        raise InvalidParams(f"unknown variant `{shown}`, expected one of {expected}")
    cwd = value.get("cwd")
    roots = value.get("workspaceRoots")
    return SandboxContext(
        permissions=permissions,
        cwd=None if cwd is None else conv.structure(cwd, AbsPath),
        workspace_roots=[] if roots is None else [conv.structure(root, AbsPath) for root in _list(roots)],
    )


def encode(context: SandboxContext) -> dict[str, Any]:
    out: dict[str, Any] = {"permissions": context.permissions}
    if context.cwd is not None:
        out["cwd"] = context.cwd
    out["workspaceRoots"] = list(context.workspace_roots)
    return out


def register_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(SandboxContext, lambda value, _: decode(conv, value))
    conv.register_unstructure_hook(SandboxContext, encode)
