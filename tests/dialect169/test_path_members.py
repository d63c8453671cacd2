"""The refusal text of a relative path member is that of the dialect as known when the member
is parsed (`proto/dialect.py`): after a `file:` URI member of the same request it is the 0.169
text, before it the dialect of the method and member names. Differential: trio-exec against
the 0.169-dialect references here, against the 0.120 reference in tests/test_dialect_form.py."""

from __future__ import annotations

from pathlib import Path

from support.servers import ServerHandle
from support.wsclient import session

NO_BASE = {"code": -32602, "message": "invalid URI: relative URL without a base"}


async def test_relative_path_after_a_uri_member(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    async with session(server169.url) as client:
        reply = await client.request("fs/copy", {
            "sourcePath": f"file://{tmp_path}/f", "destinationPath": "rel", "recursive": False,
        }, id=client.next_id())
        assert reply["error"] == NO_BASE
