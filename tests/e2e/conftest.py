"""Fixtures of the end-to-end tests: the real codex CLIs (0.120.0, 0.169.0 and 0.171.0,
installed by ``scripts/install-reference``) against one trio-exec daemon.

* ``daemon``: one trio-exec process, started without flags, shared by every test of a module,
  so the clients of both dialects are served by the same process on the same port.
* ``codex_clients`` (autouse): fails loudly when a codex binary is missing, or skips when
  ``TRIO_EXEC_SKIP_REFERENCE=1`` (as the reference servers do).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import servers
from support.codex_harness import CODEX_VERSIONS, codex_binary
from support.servers import TRIO_EXEC, ServerHandle


@pytest.fixture(scope="session", autouse=True)
def codex_clients() -> None:
    missing = [f"codex {v} at {codex_binary(v)}" for v in CODEX_VERSIONS
               if not codex_binary(v).exists()]
    if not missing:
        return
    if servers.skip_reference():
        pytest.skip("codex clients skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
    pytest.fail(f"missing {', '.join(missing)}; run ./scripts/install-reference "
                "or set TRIO_EXEC_SKIP_REFERENCE=1", pytrace=False)


@pytest.fixture(scope="module")
def daemon() -> Iterator[ServerHandle]:
    """One trio-exec daemon, no flags, for both clients."""
    try:
        handle = servers.launch(TRIO_EXEC)
    except servers.ServerStartError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield handle
    finally:
        handle.stop()
