"""WebSocket masking in C: wsproto's masker replaced by one built on `websockets.speedups`.

Every frame a client sends is masked. wsproto unmasks in Python, which on this machine takes
3.2 ms for the 1.4 MB message of a 1 MiB `fs/writeFile`: more than everything else the daemon
does with that request. The websockets library ships the same XOR in C (0.25 ms). wsproto has
no hook for its masker, so `install()` replaces the class it instantiates,
`wsproto.frame_protocol.XorMaskerSimple`, with one of the same interface (a key that rotates
across calls so a frame may arrive in pieces). It is idempotent and process-wide: the
daemon's reader and the client library's writer both use it.

Rule: the C extension is optional. Where `websockets.speedups` cannot be imported (a
pure-Python install of websockets), `C_MASKING` is False and `install()` leaves wsproto's own
masker in place: slower on big messages, the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable

from wsproto import frame_protocol

ApplyMask = Callable[[bytes | bytearray, bytes], bytes]


def _c_apply_mask() -> ApplyMask | None:
    try:
        from websockets.speedups import apply_mask
    except ImportError:
        return None
    return apply_mask


_apply_mask = _c_apply_mask()
#: Whether the C masker is available (and so what `install()` puts in place).
C_MASKING = _apply_mask is not None

#: wsproto's own masker, kept for comparison (captured before `install()` can replace it).
WSPROTO_MASKER = frame_protocol.XorMaskerSimple


class FastXorMasker:
    """Invariant: `_key` is the mask for the next byte of the frame, rotated past what was
    already processed. Only usable when `C_MASKING`."""

    def __init__(self, masking_key: bytes | bytearray) -> None:
        self._key = bytes(masking_key)

    def process(self, data: bytes | bytearray) -> bytes:
        """The unmasked bytes, as the C function returns them: wsproto takes `bytes` as well as
        its own `bytearray` (it decodes text, or joins binary payloads; a copy into a bytearray
        would be one more pass over every byte of a large message)."""
        if not data:
            return b""
        assert _apply_mask is not None, "the C masker is not installed"
        unmasked = _apply_mask(data, self._key)
        rotation = len(data) % 4
        self._key = self._key[rotation:] + self._key[:rotation]
        return unmasked


def install() -> None:
    if C_MASKING:
        frame_protocol.XorMaskerSimple = FastXorMasker  # type: ignore[misc,assignment]
