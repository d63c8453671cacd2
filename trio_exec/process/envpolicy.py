"""The 0.169 `envPolicy` of `process/start`: the child's environment built from the server's.

Rule (docs/protocol-dialects.md §4.1, observed order of operations; contract C4: decided by
the presence of `envPolicy`, not by dialect — absent or null, `env` is the whole environment):
1. `inherit`: `all` = every server variable; `core` = `HOME`, `LANG`, `LOGNAME`, `PATH`,
   `SHELL`, `TMPDIR`, `USER` (those set); `none` = nothing.
2. unless `ignoreDefaultExcludes`: drop names containing `KEY`, `SECRET` or `TOKEN`
   (case-insensitive).
3. `exclude`: drop names matching any glob (case-insensitive).
4. `set`: add or overwrite.
5. `includeOnly`, when non-empty: keep only names matching one of its globs.
6. `env` last, unfiltered: it wins over everything.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping

from trio_exec.proto.process_messages import EnvPolicy

CORE_VARIABLES = ("HOME", "LANG", "LOGNAME", "PATH", "SHELL", "TMPDIR", "USER")
DEFAULT_EXCLUDES = ("KEY", "SECRET", "TOKEN")


def _matches(name: str, patterns: Iterable[str]) -> bool:
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern.upper()) for pattern in patterns)


def build_environment(
    policy: EnvPolicy, env: Mapping[str, str], server_env: Mapping[str, str]
) -> dict[str, str]:
    if policy.inherit == "all":
        out = dict(server_env)
    elif policy.inherit == "core":
        out = {name: server_env[name] for name in CORE_VARIABLES if name in server_env}
    else:
        out = {}
    if not policy.ignore_default_excludes:
        out = {k: v for k, v in out.items() if not any(x in k.upper() for x in DEFAULT_EXCLUDES)}
    if policy.exclude:
        out = {k: v for k, v in out.items() if not _matches(k, policy.exclude)}
    out.update(policy.set)
    if policy.include_only:
        out = {k: v for k, v in out.items() if _matches(k, policy.include_only)}
    out.update(env)
    return out
