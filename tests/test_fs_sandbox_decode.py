"""Decoding `sandboxPolicy` while params are structured: serde's exact texts, as a table.

Every text here was observed on the wire from the codex 0.120.0 reference (`fs/getMetadata`
with the policy below); `tests/test_fs_wire.py` replays a selection against both servers.
"""

from __future__ import annotations

from typing import Any

import pytest

from trio_exec.proto import sandbox
from trio_exec.proto.convert import structure_params, unstructure
from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.fs_messages import FsCopyParams, FsGetMetadataParams
from trio_exec.proto.sandbox import (
    DangerFullAccess,
    ExternalSandbox,
    FullAccess,
    NetworkAccess,
    ReadOnly,
    RestrictedAccess,
    SandboxPolicy,
    WorkspaceWrite,
)

VARIANTS = "`danger-full-access`, `read-only`, `external-sandbox`, `workspace-write`"

BAD: list[tuple[Any, str]] = [
    (
        "read-only",
        'invalid type: string "read-only", expected internally tagged enum SandboxPolicy',
    ),
    ('x"y', 'invalid type: string "x\\"y", expected internally tagged enum SandboxPolicy'),
    (5, "invalid type: integer `5`, expected internally tagged enum SandboxPolicy"),
    (True, "invalid type: boolean `true`, expected internally tagged enum SandboxPolicy"),
    (1.5, "invalid type: floating point `1.5`, expected internally tagged enum SandboxPolicy"),
    ({}, "missing field `type`"),
    ([], "missing field `type`"),
    ({"type": "bogus"}, f"unknown variant `bogus`, expected one of {VARIANTS}"),
    ({"type": "Read-Only"}, f"unknown variant `Read-Only`, expected one of {VARIANTS}"),
    ({"type": 'x"y'}, f'unknown variant `x"y`, expected one of {VARIANTS}'),
    ({"type": 5}, "invalid type: integer `5`, expected variant identifier"),
    ({"type": 0}, "invalid type: integer `0`, expected variant identifier"),
    ({"type": -1}, "invalid type: integer `-1`, expected variant identifier"),
    ({"type": None}, "invalid type: null, expected variant identifier"),
    ({"type": True}, "invalid type: boolean `true`, expected variant identifier"),
    ({"type": 1.5}, "invalid type: floating point `1.5`, expected variant identifier"),
    ({"type": ["read-only"]}, "invalid type: sequence, expected variant identifier"),
    ({"type": {}}, "invalid type: map, expected variant identifier"),
    ([5], "invalid type: integer `5`, expected variant identifier"),
    # the tag is judged before any member
    (
        {"network_access": "x", "type": "bogus"},
        f"unknown variant `bogus`, expected one of {VARIANTS}",
    ),
    # read-only
    (
        {"type": "read-only", "access": None},
        "invalid type: null, expected internally tagged enum ReadOnlyAccess",
    ),
    (
        {"type": "read-only", "access": "full-access"},
        'invalid type: string "full-access", expected internally tagged enum ReadOnlyAccess',
    ),
    (
        {"type": "read-only", "access": True},
        "invalid type: boolean `true`, expected internally tagged enum ReadOnlyAccess",
    ),
    ({"type": "read-only", "access": {}}, "missing field `type`"),
    ({"type": "read-only", "access": []}, "missing field `type`"),
    (
        {"type": "read-only", "access": {"type": "bogus"}},
        "unknown variant `bogus`, expected `restricted` or `full-access`",
    ),
    (
        {"type": "read-only", "access": {"type": 5}},
        "invalid value: integer `5`, expected variant index 0 <= i < 2",
    ),
    (
        {"type": "read-only", "access": {"type": 18446744073709551615}},
        "invalid value: integer `18446744073709551615`, expected variant index 0 <= i < 2",
    ),
    (
        {"type": "read-only", "access": {"type": -1}},
        "invalid type: integer `-1`, expected variant identifier",
    ),
    (
        {"type": "read-only", "access": {"type": None}},
        "invalid type: null, expected variant identifier",
    ),
    (
        {"type": "read-only", "access": [True]},
        "invalid type: boolean `true`, expected variant identifier",
    ),
    (
        {"type": "read-only", "access": {"type": "restricted", "readable_roots": None}},
        "invalid type: null, expected a sequence",
    ),
    (
        {"type": "read-only", "access": {"type": "restricted", "readable_roots": "x"}},
        'invalid type: string "x", expected a sequence',
    ),
    (
        {"type": "read-only", "access": {"type": "restricted", "readable_roots": ["rel"]}},
        "AbsolutePathBuf deserialized without a base path",
    ),
    (
        {"type": "read-only", "access": {"type": "restricted", "readable_roots": [5]}},
        "invalid type: integer `5`, expected path string",
    ),
    (
        {"type": "read-only", "access": {"type": "restricted", "include_platform_defaults": "no"}},
        'invalid type: string "no", expected a boolean',
    ),
    (
        {"type": "read-only", "access": {"type": 0, "readable_roots": 5}},
        "invalid type: integer `5`, expected a sequence",
    ),
    (
        {"type": "read-only", "access": ["restricted", ["/x"], True]},
        "invalid type: sequence, expected a boolean",
    ),
    (
        {"type": "read-only", "access": ["restricted", True, ["/x"], 1]},
        "invalid length 3, expected 2 elements in sequence",
    ),
    (
        {"type": "read-only", "access": ["full-access", 1]},
        "invalid length 1, expected 0 elements in sequence",
    ),
    (
        {"type": "read-only", "access": [1, True]},
        "invalid length 1, expected 0 elements in sequence",
    ),
    (
        {"type": "read-only", "network_access": "yes"},
        'invalid type: string "yes", expected a boolean',
    ),
    ({"type": "read-only", "network_access": None}, "invalid type: null, expected a boolean"),
    ({"type": "read-only", "network_access": -5}, "invalid type: integer `-5`, expected a boolean"),
    ({"type": "read-only", "network_access": "é"}, 'invalid type: string "é", expected a boolean'),
    # external-sandbox
    (
        {"type": "external-sandbox", "network_access": "bogus"},
        "unknown variant `bogus`, expected `restricted` or `enabled`",
    ),
    (
        {"type": "external-sandbox", "network_access": True},
        "invalid type: boolean `true`, expected string or map",
    ),
    (
        {"type": "external-sandbox", "network_access": None},
        "invalid type: null, expected string or map",
    ),
    (
        {"type": "external-sandbox", "network_access": []},
        "invalid type: sequence, expected string or map",
    ),
    (
        {"type": "external-sandbox", "network_access": {"enabled": 1}},
        "invalid type: integer `1`, expected unit",
    ),
    (
        {"type": "external-sandbox", "network_access": {"bogus": None}},
        "unknown variant `bogus`, expected `restricted` or `enabled`",
    ),
    (
        {"type": "external-sandbox", "network_access": {}},
        "invalid value: map, expected map with a single key",
    ),
    (
        {"type": "external-sandbox", "network_access": {"a": None, "b": None}},
        "invalid value: map, expected map with a single key",
    ),
    # workspace-write
    (
        {"type": "workspace-write", "writable_roots": None},
        "invalid type: null, expected a sequence",
    ),
    ({"type": "workspace-write", "writable_roots": {}}, "invalid type: map, expected a sequence"),
    (
        {"type": "workspace-write", "writable_roots": [""]},
        "AbsolutePathBuf deserialized without a base path",
    ),
    (
        {"type": "workspace-write", "writable_roots": ["~/x"]},
        "AbsolutePathBuf deserialized without a base path",
    ),
    (
        {"type": "workspace-write", "writable_roots": [None]},
        "invalid type: null, expected path string",
    ),
    (
        {"type": "workspace-write", "exclude_slash_tmp": 1},
        "invalid type: integer `1`, expected a boolean",
    ),
    (
        {"type": "workspace-write", "exclude_tmpdir_env_var": None},
        "invalid type: null, expected a boolean",
    ),
    (
        {"type": "workspace-write", "read_only_access": None},
        "invalid type: null, expected internally tagged enum ReadOnlyAccess",
    ),
    # members are judged in the client's order
    (
        {"type": "workspace-write", "network_access": "x", "writable_roots": 5},
        'invalid type: string "x", expected a boolean',
    ),
    (
        {"type": "workspace-write", "writable_roots": 5, "network_access": "x"},
        "invalid type: integer `5`, expected a sequence",
    ),
    # the sequence form
    (["danger-full-access", 1], "invalid length 1, expected 0 elements in sequence"),
    (["danger-full-access", 1, 2], "invalid length 2, expected 0 elements in sequence"),
    (
        ["read-only", {"type": "full-access"}, True, 3],
        "invalid length 3, expected 2 elements in sequence",
    ),
    (["read-only", {"type": "full-access"}, 3], "invalid type: integer `3`, expected a boolean"),
    (["read-only", 5], "invalid type: integer `5`, expected internally tagged enum ReadOnlyAccess"),
    (["external-sandbox", "enabled", 7], "invalid length 2, expected 1 element in sequence"),
    (["external-sandbox", "bogus"], "unknown variant `bogus`, expected `restricted` or `enabled`"),
    (
        ["workspace-write", ["/x"], {"type": "full-access"}, True, True, True, 9],
        "invalid length 6, expected 5 elements in sequence",
    ),
    (
        ["workspace-write", ["/x"], {"type": "full-access"}, True, True, "m"],
        'invalid type: string "m", expected a boolean',
    ),
]


@pytest.mark.parametrize(("policy", "text"), BAD)
def test_bad_policy_is_invalid_params_with_serde_text(policy: Any, text: str) -> None:
    with pytest.raises(InvalidParams) as info:
        structure_params({"path": "/tmp", "sandboxPolicy": policy}, FsGetMetadataParams)
    assert info.value.message == text
    assert info.value.code == -32602


GOOD: list[tuple[Any, SandboxPolicy | None]] = [
    (None, None),
    ({"type": "danger-full-access"}, DangerFullAccess()),
    ({"type": "danger-full-access", "foo": 1}, DangerFullAccess()),
    ({"x": 1, "type": "danger-full-access"}, DangerFullAccess()),
    ({"type": "read-only"}, ReadOnly()),
    ({"type": "read-only", "access": {"type": "full-access", "x": 1}}, ReadOnly()),
    ({"type": "read-only", "access": {"type": 1, "readable_roots": 5}}, ReadOnly()),
    ({"type": "read-only", "access": {"type": 0}}, ReadOnly(access=RestrictedAccess())),
    ({"type": "read-only", "access": {"type": "restricted"}}, ReadOnly(access=RestrictedAccess())),
    (
        {
            "type": "read-only",
            "network_access": True,
            "access": {
                "type": "restricted",
                "readable_roots": ["/a/./b/../c"],
                "include_platform_defaults": True,
            },
        },
        ReadOnly(
            network_access=True,
            access=RestrictedAccess(readable_roots=("/a/c",), include_platform_defaults=True),
        ),
    ),
    # camelCase members are unknown members: ignored
    (
        {
            "type": "read-only",
            "access": {"type": "restricted", "readable_roots": ["/a"], "readableRoots": []},
        },
        ReadOnly(access=RestrictedAccess(readable_roots=("/a",))),
    ),
    (
        {"type": "workspace-write", "writableRoots": ["/x"], "excludeSlashTmp": True},
        WorkspaceWrite(),
    ),
    ({"type": "external-sandbox"}, ExternalSandbox()),
    (
        {"type": "external-sandbox", "network_access": "enabled"},
        ExternalSandbox(network_access=NetworkAccess.ENABLED),
    ),
    (
        {"type": "external-sandbox", "network_access": {"enabled": None}},
        ExternalSandbox(network_access=NetworkAccess.ENABLED),
    ),
    ({"type": "workspace-write"}, WorkspaceWrite()),
    (
        {
            "type": "workspace-write",
            "writable_roots": ["/w", "/../v"],
            "read_only_access": {"type": "restricted", "readable_roots": []},
            "network_access": True,
            "exclude_tmpdir_env_var": True,
            "exclude_slash_tmp": True,
        },
        WorkspaceWrite(
            writable_roots=("/w", "/v"),
            read_only_access=RestrictedAccess(),
            network_access=True,
            exclude_tmpdir_env_var=True,
            exclude_slash_tmp=True,
        ),
    ),
    # the sequence form: tag first, then the members by position
    (["read-only"], ReadOnly()),
    (["danger-full-access"], DangerFullAccess()),
    (["workspace-write", ["/x"]], WorkspaceWrite(writable_roots=("/x",))),
    (
        ["workspace-write", [], {"type": "full-access"}, False, False, True],
        WorkspaceWrite(exclude_slash_tmp=True),
    ),
    (
        ["workspace-write", [], {"type": "full-access"}, False, True, False],
        WorkspaceWrite(exclude_tmpdir_env_var=True),
    ),
    (["external-sandbox", "enabled"], ExternalSandbox(network_access=NetworkAccess.ENABLED)),
    (
        {"type": "read-only", "access": ["restricted", True, ["/x"]]},
        ReadOnly(access=RestrictedAccess(include_platform_defaults=True, readable_roots=("/x",))),
    ),
    ({"type": "read-only", "access": ["restricted"]}, ReadOnly(access=RestrictedAccess())),
]


@pytest.mark.parametrize(("policy", "expected"), GOOD)
def test_good_policy_decodes(policy: Any, expected: SandboxPolicy | None) -> None:
    params = structure_params({"path": "/tmp", "sandboxPolicy": policy}, FsGetMetadataParams)
    assert params.sandbox_policy == expected


def test_absent_policy_is_none() -> None:
    assert structure_params({"path": "/"}, FsGetMetadataParams).sandbox_policy is None


def test_param_errors_follow_member_order() -> None:
    """serde walks the params map in the client's order: the first bad member wins."""
    with pytest.raises(InvalidParams, match=r"^unknown variant `bogus`"):
        structure_params({"sandboxPolicy": {"type": "bogus"}, "path": "rel"}, FsGetMetadataParams)
    with pytest.raises(InvalidParams, match=r"^AbsolutePathBuf deserialized without a base path$"):
        structure_params({"path": "rel", "sandboxPolicy": {"type": "bogus"}}, FsGetMetadataParams)
    with pytest.raises(InvalidParams, match=r"^unknown variant `bogus`"):
        structure_params({"sandboxPolicy": {"type": "bogus"}}, FsGetMetadataParams)


POLICIES: list[SandboxPolicy] = [
    DangerFullAccess(),
    ReadOnly(),
    ReadOnly(network_access=True, access=RestrictedAccess(readable_roots=("/a", "/b"))),
    ExternalSandbox(network_access=NetworkAccess.ENABLED),
    WorkspaceWrite(
        writable_roots=("/w",),
        read_only_access=RestrictedAccess(include_platform_defaults=True),
        exclude_slash_tmp=True,
    ),
]


@pytest.mark.parametrize("policy", POLICIES)
def test_encode_round_trips_through_params(policy: SandboxPolicy) -> None:
    params = FsCopyParams(
        source_path="/a", destination_path="/b", recursive=True, sandbox_policy=policy
    )  # type: ignore[arg-type]
    wire = unstructure(params)
    assert wire["sandboxPolicy"] == sandbox.encode(policy)
    assert list(wire) == ["sourcePath", "destinationPath", "recursive", "sandboxPolicy"]
    assert structure_params(wire, FsCopyParams) == params


def test_encoded_members_are_snake_case() -> None:
    wire = sandbox.encode(WorkspaceWrite())
    assert wire == {
        "type": "workspace-write",
        "writable_roots": [],
        "read_only_access": {"type": "full-access"},
        "network_access": False,
        "exclude_tmpdir_env_var": False,
        "exclude_slash_tmp": False,
    }
    assert sandbox.encode_access(FullAccess()) == {"type": "full-access"}
