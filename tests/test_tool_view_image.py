"""`view_image` and the header parser under it: the type from the bytes, the pixel size from
the header, the data URL in the Responses API's image content shape; non-images, directories,
missing and oversized files refused with the reason — on a local and a remote environment.

The images are written byte by byte here (a PNG that zlib can decode, a complete 1x1 GIF,
and JPEG and WebP files whose headers follow their specifications); no image library is used.
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from support.daemon import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Environment
from trio_exec.tools import open_toolset
from trio_exec.tools.image_tools import MAX_IMAGE_BYTES
from trio_exec.tools.imageinfo import ImageInfo, NotAnImage, identify

TIMEOUT = 20


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))
    rows = b"".join(b"\x00" + b"\x00\x80\xff" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
            + chunk(b"IEND", b""))


def gif(width: int, height: int) -> bytes:
    """A complete GIF89a: two-colour table, one image of colour 0 (LZW, code size 2)."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    image = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x44\x01\x00"
    return b"GIF89a" + screen + image + b"\x3b"


def jpeg(width: int, height: int) -> bytes:
    """SOI, a JFIF APP0, a quantisation table, a padded marker, the baseline frame header."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    dqt = b"\xff\xdb" + struct.pack(">H", 67) + b"\x00" + bytes(range(1, 65))
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + dqt + b"\xff" + sof0 + b"\xff\xd9"


def riff(chunk: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def webp_vp8(width: int, height: int) -> bytes:
    frame = b"\x30\x01\x00\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 8
    return riff(b"VP8 " + struct.pack("<I", len(frame)) + frame)


def webp_vp8l(width: int, height: int) -> bytes:
    bits = (width - 1) | ((height - 1) << 14)
    body = b"\x2f" + struct.pack("<I", bits) + b"\x00\x00\x00"
    return riff(b"VP8L" + struct.pack("<I", len(body)) + body)


def webp_vp8x(width: int, height: int) -> bytes:
    body = b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(
        3, "little")
    return riff(b"VP8X" + struct.pack("<I", len(body)) + body)


@pytest.mark.parametrize(("data", "expected"), [
    (png(3, 2), ImageInfo("image/png", 3, 2)),
    (gif(5, 7), ImageInfo("image/gif", 5, 7)),
    (jpeg(640, 480), ImageInfo("image/jpeg", 640, 480)),
    (webp_vp8(300, 200), ImageInfo("image/webp", 300, 200)),
    (webp_vp8l(16384, 1), ImageInfo("image/webp", 16384, 1)),
    (webp_vp8x(5000, 4000), ImageInfo("image/webp", 5000, 4000)),
])
def test_type_and_size_come_from_the_header(data: bytes, expected: ImageInfo) -> None:
    assert identify(data) == expected


def test_the_png_written_here_is_a_real_image() -> None:
    data = png(3, 2)
    idat = data.index(b"IDAT")
    (length,) = struct.unpack(">I", data[idat - 4 : idat])
    assert len(zlib.decompress(data[idat + 4 : idat + 4 + length])) == 2 * (1 + 3 * 3)


@pytest.mark.parametrize(("data", "reason"), [
    (b"hello, world", "not a PNG, JPEG, GIF or WebP image"),
    (b"", "not a PNG, JPEG, GIF or WebP image"),
    (png(1, 1)[:20], "PNG header is cut short"),
    (jpeg(1, 1)[:30], "JPEG header is cut short"),
    (b"\xff\xd8\xff\xda\x00\x02", "JPEG without a frame header"),
    (riff(b"VP8X\x00\x00"), "WebP header is cut short"),
    (riff(b"ABCD" + b"\x00" * 20), "WebP with an unknown first chunk"),
])
def test_anything_else_is_not_an_image(data: bytes, reason: str) -> None:
    with pytest.raises(NotAnImage, match=reason):
        identify(data)


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


async def test_view_image(env: Environment, tmp_path: Path) -> None:
    (tmp_path / "photo.txt").write_bytes(jpeg(64, 48))  # the name says nothing
    (tmp_path / "notes.png").write_text("not an image")
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "huge.png").write_bytes(png(1, 1))
    os.truncate(tmp_path / "huge.png", MAX_IMAGE_BYTES + 1)  # sparse: the cap is checked first
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path)) as tools:
            seen = await tools.call("view_image", {"path": "photo.txt"})
            assert seen.ok and seen.image is not None
            assert (seen.image.mime_type, seen.image.width, seen.image.height) == (
                "image/jpeg", 64, 48)
            prefix = "data:image/jpeg;base64,"
            assert seen.image.data_url.startswith(prefix)
            assert base64.b64decode(seen.image.data_url[len(prefix):]) == jpeg(64, 48)
            assert seen.output() == [{"type": "input_image", "image_url": seen.image.data_url,
                                      "detail": "high"}]
            assert seen.text == (f"{tmp_path}/photo.txt: image/jpeg, 64x48 pixels, "
                                 f"{len(jpeg(64, 48))} bytes")

            refusals = {
                "notes.png": f"unable to process image at `{tmp_path}/notes.png`: not a PNG, "
                             "JPEG, GIF or WebP image",
                "dir.png": f"image path `{tmp_path}/dir.png` is not a file",
                "gone.png": f"unable to locate image at `{tmp_path}/gone.png`: No such file or "
                            "directory (os error 2)",
                "huge.png": f"image at `{tmp_path}/huge.png` is {MAX_IMAGE_BYTES + 1} bytes; "
                            f"view_image accepts at most {MAX_IMAGE_BYTES} bytes (20 MiB)",
            }
            for name, text in refusals.items():
                result = await tools.call("view_image", {"path": name})
                assert (result.ok, result.text, result.image) == (False, text, None), name
