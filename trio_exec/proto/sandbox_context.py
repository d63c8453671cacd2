"""The 0.169 dialect's `sandbox` member: a `FileSystemSandboxContext`.

Shape (docs/protocol-dialects.md §5.3): a camelCase envelope `{permissions, cwd?,
workspaceRoots?, windowsSandboxLevel, …}` around snake_case `permissions`
`{type: managed|disabled|external, file_system?: {type, entries?}, network?}`.

Rules: decoded while the params are structured, so a bad context is -32602 with serde's text
(``missing field `permissions` ``, ``unknown variant `bogus`, expected one of `managed`,
`disabled`, `external` ``). The members the 0.169 and 0.171 references require are required
here too, with their texts (probe p12): `permissions` and `windowsSandboxLevel` in the envelope
(`disabled`, `restricted-token`, `elevated` or `mxc`); in a `managed` profile `file_system`
(`restricted`, which needs `entries`, or `unrestricted`) and `network` (`restricted` or
`enabled`); in an `external` one `network`. An error inside `permissions` is reported before a
missing envelope member, as serde does (it checks missing fields last). `cwd` and
`workspaceRoots` are optional path members (URIs, per member, like every other path). The
rest of `permissions` is kept as sent; `sandbox/context_policy.py` reads it.
Nothing here imports trio.
"""

from __future__ import annotations

from typing import Any

import attrs
import cattrs

from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.serde import invalid_type
from trio_exec.proto.types import AbsPath

PERMISSION_TYPES = ("managed", "disabled", "external")
FILE_SYSTEM_TYPES = ("restricted", "unrestricted")
NETWORK_POLICIES = ("restricted", "enabled")
WINDOWS_SANDBOX_LEVELS = ("disabled", "restricted-token", "elevated", "mxc")


@attrs.frozen(kw_only=True)
class SandboxContext:
    permissions: dict[str, Any]
    cwd: AbsPath | None = None
    workspace_roots: list[AbsPath] = attrs.field(factory=list)
    windows_sandbox_level: str = "disabled"

    @property
    def kind(self) -> str:
        return str(self.permissions["type"])


def _list(value: object) -> list[object]:
    if not isinstance(value, list):
        raise invalid_type(value, "a sequence")
    return value


def _variant(value: object, variants: tuple[str, ...], *, tagged: bool = False) -> str:
    """`value` if it names one of `variants`, else serde's error. A unit-variant enum takes a
    string (a non-string is ``expected string or map``); an internal tag is shown as it is."""
    if not isinstance(value, str):
        if not tagged:
            raise invalid_type(value, "string or map")
        value = str(value)
    if value in variants:
        return value
    if len(variants) == 2:
        expected = f"`{variants[0]}` or `{variants[1]}`"
    else:
        expected = "one of " + ", ".join(f"`{name}`" for name in variants)
    raise InvalidParams(f"unknown variant `{value}`, expected {expected}")


def _required(mapping: dict[str, Any], name: str) -> object:
    if name not in mapping:
        raise InvalidParams(f"missing field `{name}`")
    return mapping[name]


def _check_file_system(value: object) -> None:
    if not isinstance(value, dict):
        raise invalid_type(value, "internally tagged enum FileSystemSandboxPolicy")
    kind = _variant(_required(value, "type"), FILE_SYSTEM_TYPES, tagged=True)
    if kind == "restricted":
        _list(_required(value, "entries"))


def _check_permissions(permissions: object) -> None:
    if not isinstance(permissions, dict):
        raise invalid_type(permissions, "internally tagged enum PermissionProfile")
    kind = _variant(_required(permissions, "type"), PERMISSION_TYPES, tagged=True)
    if kind == "managed":
        _check_file_system(_required(permissions, "file_system"))
    if kind in ("managed", "external"):
        _variant(_required(permissions, "network"), NETWORK_POLICIES)


def decode(conv: cattrs.Converter, value: object) -> SandboxContext:
    if not isinstance(value, dict):
        raise invalid_type(value, "struct FileSystemSandboxContext")
    if "permissions" in value:
        _check_permissions(value["permissions"])
    if "windowsSandboxLevel" in value:
        _variant(value["windowsSandboxLevel"], WINDOWS_SANDBOX_LEVELS)
    permissions = _required(value, "permissions")
    level = _required(value, "windowsSandboxLevel")
    assert isinstance(permissions, dict) and isinstance(level, str)  # checked above
    cwd = value.get("cwd")
    roots = value.get("workspaceRoots")
    return SandboxContext(
        permissions=permissions,
        cwd=None if cwd is None else conv.structure(cwd, AbsPath),
        workspace_roots=[] if roots is None else [conv.structure(root, AbsPath) for root in _list(roots)],
        windows_sandbox_level=level,
    )


def encode(context: SandboxContext) -> dict[str, Any]:
    out: dict[str, Any] = {"permissions": context.permissions}
    if context.cwd is not None:
        out["cwd"] = context.cwd
    out["workspaceRoots"] = list(context.workspace_roots)
    out["windowsSandboxLevel"] = context.windows_sandbox_level
    return out


def register_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(SandboxContext, lambda value, _: decode(conv, value))
    conv.register_unstructure_hook(SandboxContext, encode)
