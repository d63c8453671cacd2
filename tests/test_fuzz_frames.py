"""Fuzzed frames never crash the daemon nor end the connection.

Every frame (arbitrary bytes, arbitrary JSON, requests for every method with arbitrary params)
gets at most one reply, and the connection stays usable. The
daemon runs in-process over the in-memory transport, so a crash would surface here as an
exception, not as a silent child death. After the handshake only methods without side effects
are fuzzed (no random program is ever run, no random path written).
"""

from __future__ import annotations

import json

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.daemon import in_memory_daemon

from trio_exec.proto import methods

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=8,
)
param_keys = st.sampled_from(
    ["processId", "afterSeq", "maxBytes", "waitMs", "chunk", "signal", "rows", "cols", "path",
     "clientName", "resumeSessionId", "sandboxPolicy", "closeStdin", "argv", "env", "tty"]
)
params = st.one_of(json_values, st.dictionaries(param_keys, json_values, max_size=5))
ids = st.one_of(st.integers(), st.text(max_size=8), st.none(), st.floats(allow_nan=False), st.booleans())
SIDE_EFFECT_FREE = [
    methods.PROCESS_READ, methods.PROCESS_WRITE, methods.PROCESS_TERMINATE,
    methods.PROCESS_SIGNAL, methods.PROCESS_RESIZE, methods.PROCESS_LIST,
    methods.FS_GET_METADATA, methods.FS_READ_DIRECTORY, "bogus/x", methods.INITIALIZE,
]


def encode(value: object) -> bytes:
    """Stdlib JSON: clients may send integers no 64-bit type holds."""
    return json.dumps(value).encode()


def request(method_names: list[str]) -> st.SearchStrategy[bytes]:
    return st.builds(
        lambda i, m, p: encode({"id": i, "method": m, "params": p}),
        ids, st.sampled_from(method_names), params,
    )


frames = st.one_of(
    st.binary(max_size=40),
    json_values.map(encode),
    # never `initialized`: the gates stay shut, so no fuzzed `process/start` ever runs
    request([*sorted(methods.METHODS), "x/y"]),
)


async def _exchange(frame_list: list[bytes], *, initialized: bool) -> None:
    async with in_memory_daemon() as daemon, daemon.wire_link() as link:
        client = link.client
        if initialized:
            await client.handshake()
        with trio.fail_after(20):
            for frame in frame_list:
                await client.send_raw(frame)
            # an id no fuzzed frame carries (their text ids are at most 8 characters)
            probe = await client.request("bogus/probe", {}, id="usable-after-fuzzing")
            assert probe["error"]["code"] == -32601, probe
        for reply in client.pending_replies():
            assert set(reply) in ({"id", "result"}, {"id", "error"}), reply
            if "error" in reply:
                assert isinstance(reply["error"]["code"], int) and reply["error"]["message"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(frames, max_size=6))
async def test_fuzzed_frames_before_the_handshake(frame_list: list[bytes]) -> None:
    await _exchange(frame_list, initialized=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(request(SIDE_EFFECT_FREE), max_size=6))
async def test_fuzzed_requests_after_the_handshake(frame_list: list[bytes]) -> None:
    await _exchange(frame_list, initialized=True)
