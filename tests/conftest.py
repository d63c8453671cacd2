"""Fixtures shared by the test suite: servers under test, launched as child processes.

* ``server``: module-scoped, parametrized over ``trio-exec`` and ``reference`` (the codex-cli
  0.120.0 exec-server). Tests that use it run against both; ``server.kind`` says which one is
  answering, so a test can pin the reference's bug and trio-exec's fix side by side.
* ``trio_exec_server``: module-scoped trio-exec only.
* ``launch_server``: a function-scoped factory for a fresh server with extra CLI flags.

A missing reference binary makes every reference-parametrized test fail loudly (see
``tests/support/servers.py``), unless ``TRIO_EXEC_SKIP_REFERENCE=1``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from support import servers
from support.gates import Gates
from support.servers import REFERENCE, TRIO_EXEC, ServerHandle

# Property tests run on a shared 2-core machine beside real child processes: a per-example
# deadline would measure the machine's load, not the code.
settings.register_profile(
    "trio-exec", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("trio-exec")


@pytest.fixture(scope="session")
def nobody_pythonpath() -> Iterator[str]:
    """PYTHONPATH for a child running as nobody (`support.nobody`)."""
    from support.nobody import importable_snapshot

    with importable_snapshot() as root:
        yield str(root)


def _start(kind: str, *flags: str, env: dict[str, str] | None = None) -> ServerHandle:
    if kind == REFERENCE and not servers.reference_binary().exists():
        if servers.skip_reference():
            pytest.skip("reference server skipped (TRIO_EXEC_SKIP_REFERENCE=1)")
        pytest.fail(servers.missing_reference_message(), pytrace=False)
    try:
        return servers.launch(kind, *flags, env=env)
    except servers.ServerStartError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(
    scope="module",
    params=[TRIO_EXEC, pytest.param(REFERENCE, marks=pytest.mark.reference)],
)
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    """A running server of each kind (shared by the tests of one module)."""
    handle = _start(request.param)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def trio_exec_server() -> Iterator[ServerHandle]:
    """A running trio-exec server (shared by the tests of one module)."""
    handle = _start(TRIO_EXEC)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture
def launch_server() -> Iterator[Callable[..., ServerHandle]]:
    """Factory: ``launch_server(kind, *flags, env=None)`` starts a fresh server (``env``
    replaces its environment), stopped at teardown."""
    started: list[ServerHandle] = []

    def launch(kind: str, *flags: str, env: dict[str, str] | None = None) -> ServerHandle:
        handle = _start(kind, *flags, env=env)
        started.append(handle)
        return handle

    try:
        yield launch
    finally:
        for handle in started:
            handle.stop()


@pytest.fixture
def gates(tmp_path: Path) -> Gates:
    """File gates in a fresh directory (see ``tests/support/gates.py``)."""
    directory = tmp_path / "gates"
    directory.mkdir()
    return Gates(directory)
