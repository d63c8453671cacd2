"""The live fuzzer's short run: fuzzed frames and per-method params against a real daemon.

`support/fuzzing.py` states what is drawn and what each case must get back. Here a few dozen
cases run against one daemon on a real socket; afterwards the daemon is healthy (`/readyz`,
a fresh connection served), its log shows no unexpected exception, and its census (processes,
fds, sessions) is back to where it was before the run. `scripts/fuzz` is the long run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from support import fuzzing
from support.census import Census, new_marker
from support.servers import TRIO_EXEC, ServerHandle, launch
from support.wsclient import connect

FLAGS = (
    "--log-level", "INFO", "--session-ttl", "0.3", "--retention", "0.3",
    "--max-message-size", str(fuzzing.MESSAGE_LIMIT),
)


@pytest.fixture(scope="module")
def daemon() -> Iterator[ServerHandle]:
    handle = launch(TRIO_EXEC, *FLAGS)
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-root")


TALLY = fuzzing.Tally()


@settings(max_examples=40, deadline=None, database=None, phases=[Phase.generate])
@given(data=st.data())
async def test_fuzzed_cases_against_a_live_daemon(daemon: ServerHandle, root: Path, data: st.DataObject) -> None:
    handshake, frame_list = data.draw(fuzzing.cases(root))
    await fuzzing.run_case(daemon.host, daemon.port, handshake, frame_list, TALLY)


async def test_the_daemon_is_healthy_after_fuzzing(daemon: ServerHandle) -> None:
    census = Census(daemon.pid, new_marker(), daemon.stderr_text)
    counts = await census.wait_for(lambda c: c.processes == 0 and c.sessions == 0)
    async with connect(daemon.url) as client:
        await client.handshake()
        await client.assert_usable()
    assert await census.settled(counts) == counts
    assert "Traceback" not in daemon.stderr_text()
    assert TALLY.cases > 0
