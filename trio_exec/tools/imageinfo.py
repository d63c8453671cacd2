"""The type and pixel size of an image, from its bytes (never from its name).

Rules: four formats, recognised by their signatures and measured from their headers only —
PNG (the IHDR chunk), GIF (the logical screen), JPEG (the first start-of-frame segment) and
WebP (a VP8, VP8L or VP8X chunk). Anything else, or a header cut short, is `NotAnImage` with
the reason. No pixel data is decoded.
"""

from __future__ import annotations

import struct

import attrs


class NotAnImage(ValueError):
    """The bytes are not an image of a supported format; `str(err)` says why."""


@attrs.frozen
class ImageInfo:
    mime_type: str
    width: int
    height: int


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: Markers without a length field.
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xDA)}


def identify(data: bytes) -> ImageInfo:
    if data.startswith(PNG_SIGNATURE):
        return _png(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif(data)
    if data.startswith(b"\xff\xd8\xff"):
        return _jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    raise NotAnImage("not a PNG, JPEG, GIF or WebP image")


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise NotAnImage(f"{what} header is cut short")


def _png(data: bytes) -> ImageInfo:
    _need(data, 24, "PNG")
    if data[12:16] != b"IHDR":
        raise NotAnImage("PNG without an IHDR chunk first")
    width, height = struct.unpack(">II", data[16:24])
    return ImageInfo("image/png", width, height)


def _gif(data: bytes) -> ImageInfo:
    _need(data, 10, "GIF")
    width, height = struct.unpack("<HH", data[6:10])
    return ImageInfo("image/gif", width, height)


def _jpeg(data: bytes) -> ImageInfo:
    pos = 2
    while True:
        while pos < len(data) and data[pos] != 0xFF:
            pos += 1  # stray bytes between segments
        while pos < len(data) and data[pos] == 0xFF:
            pos += 1  # fill bytes
        _need(data, pos + 1, "JPEG")
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker == 0xDA:  # start of scan before any frame header
            raise NotAnImage("JPEG without a frame header")
        _need(data, pos + 2, "JPEG")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if marker in _JPEG_SOF:
            _need(data, pos + 7, "JPEG")
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return ImageInfo("image/jpeg", width, height)
        if length < 2:
            raise NotAnImage("JPEG segment with a bad length")
        pos += length


def _webp(data: bytes) -> ImageInfo:
    _need(data, 16, "WebP")
    chunk = data[12:16]
    if chunk == b"VP8 ":
        _need(data, 30, "WebP")
        if data[23:26] != b"\x9d\x01\x2a":
            raise NotAnImage("WebP VP8 frame without its start code")
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("image/webp", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L":
        _need(data, 25, "WebP")
        if data[20] != 0x2F:
            raise NotAnImage("WebP VP8L without its signature byte")
        (bits,) = struct.unpack("<I", data[21:25])
        return ImageInfo("image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        _need(data, 30, "WebP")
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("image/webp", width, height)
    raise NotAnImage(f"WebP with an unknown first chunk {chunk!r}")
