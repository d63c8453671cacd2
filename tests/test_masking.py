"""The C masker is wsproto's masker, byte for byte, however a frame is split into pieces; and
without the C extension the daemon still runs, on wsproto's masker."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import trio
from hypothesis import given
from hypothesis import strategies as st
from wsproto import frame_protocol

from trio_exec.client import open_client
from trio_exec.ws import masking

ORIGINAL = masking.WSPROTO_MASKER


@given(st.binary(min_size=4, max_size=4), st.binary(max_size=300), st.lists(st.integers(0, 40)))
def test_same_bytes_as_wsprotos_masker_across_pieces(
    key: bytes, data: bytes, cuts: list[int]
) -> None:
    assert ORIGINAL is not masking.FastXorMasker
    fast, slow = masking.FastXorMasker(key), ORIGINAL(key)
    pieces, rest = [], data
    for cut in cuts:
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    fast_out = b"".join(fast.process(p) for p in pieces)
    assert fast_out == b"".join(slow.process(bytearray(p)) for p in pieces)


def test_installed_by_the_daemon() -> None:
    import trio_exec.server  # noqa: F401  (the daemon installs it at import)

    assert frame_protocol.XorMaskerSimple is masking.FastXorMasker


#: Run first in a child interpreter: `websockets.speedups` cannot be imported there, as on an
#: install of websockets without its C extension.
HIDE_SPEEDUPS = """
import importlib.abc, sys

class HideSpeedups(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "websockets.speedups":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, HideSpeedups())
"""

MASK_PIECES = """
import json
from wsproto import frame_protocol
import trio_exec.ws.frontdoor  # installs the masker, as the daemon does
from trio_exec.ws import masking

assert not masking.C_MASKING and "websockets.speedups" not in sys.modules
assert frame_protocol.XorMaskerSimple is masking.WSPROTO_MASKER
for key, pieces in json.loads(sys.stdin.read()):
    masker = frame_protocol.XorMaskerSimple(bytes.fromhex(key))
    print(b"".join(masker.process(bytearray.fromhex(p)) for p in pieces).hex())
"""


def test_without_the_c_extension_the_pure_masker_gives_the_same_bytes() -> None:
    """A pure-Python install of websockets still imports and runs the daemon's transport, and
    the masker then in effect (wsproto's) masks byte-equal to the C one used here."""
    rng = random.Random(11)
    vectors = []
    for size in (0, 1, 3, 4, 5, 64, 1000, 70_000):
        data = rng.randbytes(size)
        cuts = sorted(rng.sample(range(size + 1), min(size + 1, 3)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, size], strict=True)]
        vectors.append((rng.randbytes(4).hex(), [p.hex() for p in pieces]))
    assert masking.C_MASKING
    expected = []
    for key, pieces in vectors:
        fast = masking.FastXorMasker(bytes.fromhex(key))
        expected.append(b"".join(fast.process(bytes.fromhex(p)) for p in pieces).hex())
    done = subprocess.run(
        [sys.executable, "-c", HIDE_SPEEDUPS + MASK_PIECES],
        input=json.dumps(vectors), capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == expected


async def test_a_daemon_without_the_c_extension_serves_big_masked_messages(tmp_path: Path) -> None:
    """The daemon, started where `websockets.speedups` is missing, unmasks a 1 MiB upload
    (client frames masked by the C masker here) into the same bytes on disk."""
    serve = "sys.argv = ['trio-exec', 'serve', '--listen', 'ws://127.0.0.1:0']\n" \
            "import runpy; runpy.run_module('trio_exec', run_name='__main__')\n"
    proc = await trio.lowlevel.open_process(
        [sys.executable, "-c", HIDE_SPEEDUPS + serve], stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        data = random.Random(5).randbytes(1024 * 1024)
        target = tmp_path / "upload"
        with trio.fail_after(20):
            printed = b""
            while not printed.endswith(b"\n"):
                chunk = await proc.stdout.receive_some(4096)
                assert chunk, "the daemon exited without printing its URL"
                printed += chunk
            async with open_client(printed.decode().strip(), reconnect=None) as client:
                await client.fs_write_file(str(target), data)
                assert await client.fs_read_file(str(target)) == data
        assert target.read_bytes() == data
    finally:
        proc.terminate()
        with trio.fail_after(10):
            assert await proc.wait() == 0
        if proc.stdout is not None:
            await proc.stdout.aclose()
