"""Fixtures of the 0.169-dialect tests.

* ``server169``: module-scoped, parametrized over ``trio-exec`` and the references of the
  dialect, ``reference-0.169`` and ``reference-0.171`` (the codex-cli 0.169.0 and 0.171.0
  exec-servers), like ``server`` in ``tests/conftest.py`` is for 0.120.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import servers
from support.servers import REFERENCES_0169_DIALECT, TRIO_EXEC, ServerHandle


@pytest.fixture(
    scope="module",
    params=[TRIO_EXEC,
            *(pytest.param(kind, marks=pytest.mark.reference)
              for kind in REFERENCES_0169_DIALECT)],
)
def server169(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    if request.param != TRIO_EXEC and not servers.reference_binary_of(request.param).exists():
        if servers.skip_reference():
            pytest.skip("reference server skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(f"{request.param} not found at {servers.reference_binary_of(request.param)}")
    handle = servers.launch(request.param)
    try:
        yield handle
    finally:
        handle.stop()
