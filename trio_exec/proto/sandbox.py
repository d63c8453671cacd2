"""The `sandboxPolicy` member of the `fs/*` methods: Codex's `SandboxPolicy`, decoded as serde does.

Rules:
- The policy is internally tagged by `"type"` (kebab-case variant names); its members are
  snake_case (`writable_roots`, `exclude_slash_tmp`, …). A camelCase member is an unknown member
  and is ignored, like every unknown member. Every member has a default.
- Decoding refuses bad input with `InvalidParams` carrying the reference's (serde's) text. The
  tag is judged first (``unknown variant `bogus`, expected one of …``, ``missing field `type` ``,
  `invalid type: string "read-only", expected internally tagged enum SandboxPolicy`); then the
  members, in the order the client sent them.
- serde also accepts the sequence form `["workspace-write", [roots], {access}, net, tmpdir, tmp]`
  (tag first, then the members by position); so does this module, with serde's length errors.
- Root paths are `AbsolutePathBuf`s: absolute, lexically normalised.
- `encode` gives the canonical map form (what a client sends).

Pure: no I/O, no trio. What a policy allows is decided in `trio_exec.sandbox.policy`.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.serde import RELATIVE_PATH_TEXT, invalid_type, normalize_abs_path

T = TypeVar("T")

TAG = "type"


class NetworkAccess(enum.Enum):
    """`external-sandbox`'s `network_access` (an externally tagged unit enum in the reference)."""

    RESTRICTED = "restricted"
    ENABLED = "enabled"


@attrs.frozen
class FullAccess:
    """Read access to the whole filesystem (`{"type":"full-access"}`)."""


@attrs.frozen(kw_only=True)
class RestrictedAccess:
    """Read access limited to `readable_roots` (plus what the policy makes writable)."""

    include_platform_defaults: bool = False
    readable_roots: tuple[str, ...] = ()


ReadOnlyAccess = FullAccess | RestrictedAccess


class SandboxPolicy:
    """Base of the four policy variants (the reference's `SandboxPolicy` enum)."""

    __slots__ = ()


@attrs.frozen
class DangerFullAccess(SandboxPolicy):
    """No restrictions."""


@attrs.frozen(kw_only=True)
class ReadOnly(SandboxPolicy):
    """No writes anywhere; reads as `access` says."""

    access: ReadOnlyAccess = FullAccess()
    network_access: bool = False


@attrs.frozen(kw_only=True)
class ExternalSandbox(SandboxPolicy):
    """Someone else sandboxes the process: no filesystem checks here."""

    network_access: NetworkAccess = NetworkAccess.RESTRICTED


@attrs.frozen(kw_only=True)
class WorkspaceWrite(SandboxPolicy):
    """Writes only under the writable roots (plus the implicit ones); reads as
    `read_only_access` says, the writable roots always readable."""

    writable_roots: tuple[str, ...] = ()
    read_only_access: ReadOnlyAccess = FullAccess()
    network_access: bool = False
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False


# --- serde's texts ---------------------------------------------------------------------------


def _one_of(names: Sequence[str]) -> str:
    quoted = [f"`{name}`" for name in names]
    if len(quoted) == 2:
        return f"{quoted[0]} or {quoted[1]}"
    return "one of " + ", ".join(quoted)


def _unknown_variant(name: str, names: Sequence[str]) -> InvalidParams:
    return InvalidParams(f"unknown variant `{name}`, expected {_one_of(names)}")


def _elements(count: int) -> str:
    return f"{count} element" if count == 1 else f"{count} elements"


# --- member decoders -------------------------------------------------------------------------


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise invalid_type(value, "a boolean")
    return value


def _abs_paths(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise invalid_type(value, "a sequence")
    roots: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise invalid_type(item, "path string")
        if not posixpath.isabs(item):
            raise InvalidParams(RELATIVE_PATH_TEXT)
        roots.append(normalize_abs_path(item))
    return tuple(roots)


_NETWORK_NAMES = [member.value for member in NetworkAccess]


def _network_access(value: object) -> NetworkAccess:
    if isinstance(value, str):
        name = value
    elif isinstance(value, dict):
        if len(value) != 1:
            raise InvalidParams("invalid value: map, expected map with a single key")
        ((name, unit),) = value.items()
        if name not in _NETWORK_NAMES:
            raise _unknown_variant(name, _NETWORK_NAMES)
        if unit is not None:
            raise invalid_type(unit, "unit")
    else:
        raise invalid_type(value, "string or map")
    if name not in _NETWORK_NAMES:
        raise _unknown_variant(name, _NETWORK_NAMES)
    return NetworkAccess(name)


# --- internally tagged enums -----------------------------------------------------------------

Member = tuple[str, Callable[[object], object]]


def _split_tagged(value: object, enum_name: str) -> tuple[object, dict[str, Any] | list[Any]]:
    """The tag and the rest of an internally tagged value (a map, or serde's sequence form)."""
    if isinstance(value, dict):
        if TAG not in value:
            raise InvalidParams(f"missing field `{TAG}`")
        return value[TAG], {key: item for key, item in value.items() if key != TAG}
    if isinstance(value, list):
        if not value:
            raise InvalidParams(f"missing field `{TAG}`")
        return value[0], value[1:]
    raise invalid_type(value, f"internally tagged enum {enum_name}")


def _variant_name(tag: object, names: Sequence[str], *, by_index: bool) -> str:
    """serde's variant identifier: a name, or (for enums that allow it) a u64 index."""
    if isinstance(tag, str):
        if tag not in names:
            raise _unknown_variant(tag, names)
        return tag
    if by_index and isinstance(tag, int) and not isinstance(tag, bool) and 0 <= tag < 2**64:
        if tag >= len(names):
            raise InvalidParams(
                f"invalid value: integer `{tag}`, expected variant index 0 <= i < {len(names)}"
            )
        return names[tag]
    raise invalid_type(tag, "variant identifier")


def _members(content: dict[str, Any] | list[Any], members: Sequence[Member]) -> dict[str, Any]:
    """Decode a variant's members: a map in the client's order, or a sequence by position.
    Absent members are left out (the attrs defaults apply)."""
    decoded: dict[str, Any] = {}
    if isinstance(content, dict):
        decoders = dict(members)
        for key, item in content.items():
            decoder = decoders.get(key)
            if decoder is not None:
                decoded[key] = decoder(item)
        return decoded
    for (name, decoder), item in zip(members, content, strict=False):
        decoded[name] = decoder(item)
    if len(content) > len(members):
        raise InvalidParams(
            f"invalid length {len(content)}, expected {_elements(len(members))} in sequence"
        )
    return decoded


def _build(cls: Callable[..., T], members: Sequence[Member]) -> Callable[[Any], T]:
    return lambda content: cls(**_members(content, members))


_ACCESS_VARIANTS: dict[str, Callable[[Any], ReadOnlyAccess]] = {
    "restricted": _build(
        RestrictedAccess,
        [("include_platform_defaults", _bool), ("readable_roots", _abs_paths)],
    ),
    "full-access": _build(FullAccess, []),
}
_ACCESS_NAMES = list(_ACCESS_VARIANTS)


def decode_access(value: object) -> ReadOnlyAccess:
    """A `ReadOnlyAccess` (`read_only_access` / `access`) from its wire JSON."""
    tag, content = _split_tagged(value, "ReadOnlyAccess")
    return _ACCESS_VARIANTS[_variant_name(tag, _ACCESS_NAMES, by_index=True)](content)


_POLICY_VARIANTS: dict[str, Callable[[Any], SandboxPolicy]] = {
    "danger-full-access": _build(DangerFullAccess, []),
    "read-only": _build(ReadOnly, [("access", decode_access), ("network_access", _bool)]),
    "external-sandbox": _build(ExternalSandbox, [("network_access", _network_access)]),
    "workspace-write": _build(
        WorkspaceWrite,
        [
            ("writable_roots", _abs_paths),
            ("read_only_access", decode_access),
            ("network_access", _bool),
            ("exclude_tmpdir_env_var", _bool),
            ("exclude_slash_tmp", _bool),
        ],
    ),
}
_POLICY_NAMES = list(_POLICY_VARIANTS)


def decode(value: object) -> SandboxPolicy:
    """A `SandboxPolicy` from its wire JSON, or `InvalidParams` with serde's text."""
    tag, content = _split_tagged(value, "SandboxPolicy")
    return _POLICY_VARIANTS[_variant_name(tag, _POLICY_NAMES, by_index=False)](content)


# --- encoding --------------------------------------------------------------------------------


def encode_access(access: ReadOnlyAccess) -> dict[str, Any]:
    if isinstance(access, FullAccess):
        return {TAG: "full-access"}
    return {
        TAG: "restricted",
        "include_platform_defaults": access.include_platform_defaults,
        "readable_roots": list(access.readable_roots),
    }


def encode(policy: SandboxPolicy) -> dict[str, Any]:
    """The canonical wire form of a policy."""
    if isinstance(policy, DangerFullAccess):
        return {TAG: "danger-full-access"}
    if isinstance(policy, ReadOnly):
        return {
            TAG: "read-only",
            "access": encode_access(policy.access),
            "network_access": policy.network_access,
        }
    if isinstance(policy, ExternalSandbox):
        return {TAG: "external-sandbox", "network_access": policy.network_access.value}
    if isinstance(policy, WorkspaceWrite):
        return {
            TAG: "workspace-write",
            "writable_roots": list(policy.writable_roots),
            "read_only_access": encode_access(policy.read_only_access),
            "network_access": policy.network_access,
            "exclude_tmpdir_env_var": policy.exclude_tmpdir_env_var,
            "exclude_slash_tmp": policy.exclude_slash_tmp,
        }
    raise TypeError(f"not a sandbox policy: {policy!r}")
