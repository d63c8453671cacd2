"""`view_image {path}`: an image file from the environment, as an image input for the model.

Rules:
- The file is read through the environment's filesystem (a remote one's files are the
  server's); a relative path is relative to the tool set's working directory.
- The type comes from the bytes (`imageinfo.identify`), never from the name: PNG, JPEG, GIF
  and WebP are accepted, anything else is refused with the reason.
- A file over `MAX_IMAGE_BYTES` is refused before it is read when the server reports sizes,
  and after the read otherwise (the cap is what image inputs accept).
- The result is a data URL with the MIME type and the pixel size; `ToolResult.output()` turns
  it into the `input_image` content item the Responses API takes, as codex sends it.
- Error texts follow codex's: "unable to locate image at `P`: <reason>", "image path `P` is
  not a file", "unable to process image at `P`: <reason>".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pybase64

from trio_exec.environment.base import Environment
from trio_exec.proto.errors import RpcError
from trio_exec.tools.fs_tools import FileTools
from trio_exec.tools.imageinfo import NotAnImage, identify
from trio_exec.tools.spec import FILESYSTEM, Image, Reply, ToolError, require

MAX_IMAGE_BYTES = 20 * 1024 * 1024


def _too_big(path: str, size: int) -> ToolError:
    return ToolError(
        f"image at `{path}` is {size} bytes; view_image accepts at most "
        f"{MAX_IMAGE_BYTES} bytes (20 MiB)"
    )


@attrs.define(eq=False)
class ImageTools:
    env: Environment
    files: FileTools

    async def view_image(self, args: Mapping[str, Any]) -> Reply:
        require(self.env, FILESYSTEM)
        path = self.files.path(args["path"])
        try:
            meta = await self.env.filesystem.get_metadata(path)
        except RpcError as exc:
            raise ToolError(f"unable to locate image at `{path}`: {exc}") from None
        if not meta.is_file:
            raise ToolError(f"image path `{path}` is not a file")
        if meta.size is not None and meta.size > MAX_IMAGE_BYTES:
            raise _too_big(path, meta.size)
        try:
            data = await self.env.filesystem.read_file(path)
        except RpcError as exc:
            raise ToolError(f"unable to read image at `{path}`: {exc}") from None
        if len(data) > MAX_IMAGE_BYTES:
            raise _too_big(path, len(data))
        try:
            info = identify(data)
        except NotAnImage as exc:
            raise ToolError(f"unable to process image at `{path}`: {exc}") from None
        encoded = pybase64.b64encode(data).decode("ascii")
        image = Image(data_url=f"data:{info.mime_type};base64,{encoded}",
                      mime_type=info.mime_type, width=info.width, height=info.height,
                      byte_size=len(data))
        text = f"{path}: {info.mime_type}, {info.width}x{info.height} pixels, {len(data)} bytes"
        return Reply(text=text, image=image)
