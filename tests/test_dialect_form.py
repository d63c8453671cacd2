"""A request's form (`proto/dialect.py`): computed from the dialect known before structuring and
the structured params' path members, with no state; the method table's result types."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from support.servers import ServerHandle
from support.wsclient import session

from trio_exec.proto import dialect, methods
from trio_exec.proto import messages as m
from trio_exec.proto.convert import structure_params
from trio_exec.proto.dialect import Dialect, RequestForm
from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.types import UriPath
from trio_exec.rpc.dispatch import HANDLERS
from trio_exec.rpc.fs_methods import FS_HANDLERS

RELATIVE = "AbsolutePathBuf deserialized without a base path"
NO_BASE = "invalid URI: relative URL without a base"
SANDBOX = {"permissions": {"type": "disabled"}, "windowsSandboxLevel": "disabled"}


def form_of(method: str, raw: dict[str, Any]) -> RequestForm:
    """What the dispatcher computes for a request."""
    spec = methods.METHODS[method]
    spoken = dialect.detect(raw, method_is_v0169=spec.v0169_only)
    return dialect.form(spoken, structure_params(raw, spec.params, spoken))


@pytest.mark.parametrize(("method", "raw", "expected"), [
    ("initialize", {"clientName": "c"}, RequestForm(Dialect.V0120)),
    ("process/read", {"processId": "p", "writeId": None}, RequestForm(Dialect.V0169)),
    ("process/read", {"processId": "p"}, RequestForm(Dialect.V0120)),
    ("environment/info", {}, RequestForm(Dialect.V0169)),
    ("fs/getMetadata", {"path": "/a"}, RequestForm(Dialect.V0120, plain_paths=True)),
    ("fs/getMetadata", {"path": "file:///a"}, RequestForm(Dialect.V0169, uri_paths=True)),
    ("fs/getMetadata", {"path": "/a", "sandbox": None},
     RequestForm(Dialect.V0169, plain_paths=True)),
    ("fs/copy", {"sourcePath": "/a", "destinationPath": "file:///b", "recursive": True},
     RequestForm(Dialect.V0169, uri_paths=True, plain_paths=True)),
    # nested: the sandbox context's cwd and roots are path members too
    ("fs/canonicalize", {"path": "/a", "sandbox": {**SANDBOX, "cwd": "file:///w"}},
     RequestForm(Dialect.V0169, uri_paths=True, plain_paths=True)),
    ("fs/canonicalize", {"path": "file:///a", "sandbox": {**SANDBOX, "workspaceRoots": ["/r"]}},
     RequestForm(Dialect.V0169, uri_paths=True, plain_paths=True)),
    # lists of paths
    ("fs/watchMissing", {"watchId": 1, "missing": ["file:///m"]},
     RequestForm(Dialect.V0169, uri_paths=True)),
    ("fs/watchMissing", {"watchId": 1, "missing": ["/m", "/n"], "present": None},
     RequestForm(Dialect.V0169, plain_paths=True)),
    # a relative cwd is a plain (0.120) path member
    ("process/start", {"processId": "p", "argv": ["x"], "cwd": "rel", "env": {}, "tty": False},
     RequestForm(Dialect.V0120, plain_paths=True)),
])
def test_form(method: str, raw: dict[str, Any], expected: RequestForm) -> None:
    assert form_of(method, raw) == expected


def test_path_out_follows_the_form() -> None:
    assert form_of("fs/canonicalize", {"path": "/a b"}).path_out("/x y") == "/x y"
    assert form_of("fs/canonicalize", {"path": "file:///a"}).path_out("/x y") == "file:///x%20y"
    signal_only = form_of("fs/canonicalize", {"path": "/a", "sandbox": None})
    assert signal_only.path_out("/x") == "/x"
    assert form_of("environment/info", {}).path_out("/x") == "file:///x"


def test_structuring_is_pure() -> None:
    """The same params structure to the same object (no state carried between calls), and a
    URI member is a `UriPath`: a plain `str` to the services, marked for the form."""
    raw = {"sourcePath": "file:///a/../b", "destinationPath": "/c//d", "recursive": False}
    first = structure_params(raw, m.FsCopyParams)
    assert first == structure_params(raw, m.FsCopyParams)
    assert type(first.source_path) is UriPath and first.source_path == "/b"
    assert type(str(first.source_path)) is str
    assert type(first.destination_path) is str and first.destination_path == "/c/d"
    assert dialect.path_members(first) == ["/b", "/c/d"]


@pytest.mark.parametrize(("raw", "text"), [
    # the dialect as known when the member is parsed: a URI member before it makes it 0.169
    ({"sourcePath": "file:///a", "destinationPath": "rel", "recursive": True}, NO_BASE),
    ({"sourcePath": "rel", "destinationPath": "file:///a", "recursive": True}, RELATIVE),
    ({"sourcePath": "/a", "destinationPath": "rel", "recursive": True}, RELATIVE),
    ({"sandbox": None, "sourcePath": "/a", "destinationPath": "rel", "recursive": True}, NO_BASE),
    ({"sourcePath": "rel", "sandbox": None, "destinationPath": "/a", "recursive": True}, NO_BASE),
])
def test_relative_path_text(raw: dict[str, Any], text: str) -> None:
    with pytest.raises(InvalidParams) as caught:
        form_of("fs/copy", raw)
    assert caught.value.message == text


async def test_relative_path_before_a_uri_member(server: ServerHandle, tmp_path: Path) -> None:
    """0.120 (trio-exec and the 0.120 reference): the first member is refused with its text."""
    async with session(server.url) as client:
        reply = await client.request("fs/copy", {
            "sourcePath": "rel", "destinationPath": f"file://{tmp_path}/f", "recursive": False,
        }, id=client.next_id())
        assert reply["error"] == {"code": -32602, "message": RELATIVE}


def _handler_result(method: str) -> Any:
    handler = FS_HANDLERS.get(method) or HANDLERS[method]
    module = sys.modules[handler.__module__]
    return eval(handler.__annotations__["return"], vars(module))


@pytest.mark.parametrize("method", sorted(methods.METHODS))
def test_method_table_result_is_what_the_handler_returns(method: str) -> None:
    declared = methods.METHODS[method].result
    returned = _handler_result(method)
    assert declared == returned or declared in getattr(returned, "__args__", ())
