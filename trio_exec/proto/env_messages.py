"""0.169 environment messages: `environment/info`, `environment/status`,
`environmentConfig/read` params (their results are plain maps built by `trio_exec/rpc/host_methods.py`).

Rule: `environment/info` and `environment/status` ignore their params (`{}`, `null`, absent
and anything else all work), as the reference does.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import cattrs

from trio_exec.proto.types import AbsPath


@attrs.frozen
class IgnoredParams:
    """Params that are ignored."""


@attrs.frozen(kw_only=True)
class EnvironmentConfigReadParams:
    __rust_name__: ClassVar[str] = "EnvironmentConfigReadParams"
    cwd: AbsPath
    config_paths: list[list[str]]
    requirements_paths: list[list[str]]


def register_hooks(conv: cattrs.Converter) -> None:
    conv.register_structure_hook(IgnoredParams, lambda value, _: IgnoredParams())
