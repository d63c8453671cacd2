"""Fixtures of the 0.169-dialect tests.

* ``server169``: module-scoped, parametrized over ``trio-exec`` and ``reference-0.169`` (the
  codex-cli 0.169.0 exec-server), like ``server`` in ``tests/conftest.py`` is for 0.120.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import servers
from support.servers import REFERENCE_0169, TRIO_EXEC, ServerHandle


@pytest.fixture(
    scope="module",
    params=[TRIO_EXEC, pytest.param(REFERENCE_0169, marks=pytest.mark.reference)],
)
def server169(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    if request.param == REFERENCE_0169 and not servers.reference_0169_binary().exists():
        if servers.skip_reference():
            pytest.skip("reference server skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(f"codex 0.169.0 not found at {servers.reference_0169_binary()}")
    handle = servers.launch(request.param)
    try:
        yield handle
    finally:
        handle.stop()
