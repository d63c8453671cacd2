"""The one question the fs service asks of every path: may it be read, or written?

Rules:
- An `AccessPolicy` judges one absolute, normalised path for one `Access`. It raises the
  refusal of its kind when the access is not allowed; otherwise it returns the resolved path it
  judged when it restricts that access (the operation must act exactly there, without
  following symlinks: `fs/target.py`), or None when it allows everything. `follow_leaf` says
  whether the operation follows a symlink in the last component (`remove` and the copy source
  act on the link itself). Judging blocks (it examines the filesystem): call it from a worker
  thread.
- There are three: `UNRESTRICTED`; `PolicyAccess`, a 0.120 `sandboxPolicy` (`policy.py`:
  -32600 ``fs/<access> is not permitted for path <path>``); `ContextAccess`, a 0.169 `sandbox`
  context (`context_policy.py`: the OS error the reference's sandbox would give). Which one a
  request gets is decided by `rpc/fs_methods.py` from its dialect and members (`for_policy`,
  `for_context`); the fs service never sees a dialect.
- The server's own paths (`ServerPaths`: cwd, `$TMPDIR`) are the filesystem's, given at each
  judgement, so one policy object means the same thing to every filesystem.
"""

from __future__ import annotations

from typing import Protocol

import attrs

from trio_exec.proto.sandbox import SandboxPolicy
from trio_exec.proto.sandbox_context import SandboxContext
from trio_exec.sandbox import context_policy, policy
from trio_exec.sandbox.policy import Access, ServerPaths


class AccessPolicy(Protocol):
    def judge(
        self, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
    ) -> str | None:
        """Raise unless `access` to `path` is allowed; the resolved path judged when this
        policy restricts the access, else None. Blocks."""
        ...


@attrs.frozen
class Unrestricted:
    """No sandbox: every path may be read and written."""

    def judge(
        self, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
    ) -> str | None:
        del path, access, server, follow_leaf
        return None


UNRESTRICTED = Unrestricted()


@attrs.frozen
class PolicyAccess:
    """A 0.120 `sandboxPolicy` (`policy.py` states its rules)."""

    sandbox_policy: SandboxPolicy

    def judge(
        self, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
    ) -> str | None:
        return policy.check(self.sandbox_policy, path, access, server, follow_leaf=follow_leaf)


@attrs.frozen
class ContextAccess:
    """A 0.169 `sandbox` context (`context_policy.py` states its rules)."""

    context: SandboxContext

    def judge(
        self, path: str, access: Access, server: ServerPaths, *, follow_leaf: bool
    ) -> str | None:
        return context_policy.check(self.context, path, access, server, follow_leaf=follow_leaf)


def for_policy(sandbox_policy: SandboxPolicy | None) -> AccessPolicy:
    """The access policy of a 0.120 `sandboxPolicy` member (absent: unrestricted)."""
    return UNRESTRICTED if sandbox_policy is None else PolicyAccess(sandbox_policy)


def for_context(context: SandboxContext | None) -> AccessPolicy:
    """The access policy of a 0.169 `sandbox` member (absent: unrestricted)."""
    return UNRESTRICTED if context is None else ContextAccess(context)
