"""The C masker is wsproto's masker, byte for byte, however a frame is split into pieces."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from wsproto import frame_protocol

from trio_exec import masking

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
