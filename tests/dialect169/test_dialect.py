"""The 0.169 dialect, differentially: trio-exec against the codex 0.169.0 exec-server
(docs/protocol-dialects.md). Where trio-exec deliberately differs, the test says so."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
import trio
from support.servers import REFERENCE_0169, REFERENCE_0171, ServerHandle
from support.wsclient import WireClient, session, unb64

ENV_POLICY = {
    "inherit": "all", "ignoreDefaultExcludes": True, "exclude": [], "set": {}, "includeOnly": [],
}
THREAD = "01a21234-ec71-7193-af7d-5ca6e5884305"


def uri(path: Path | str) -> str:
    return "file://" + str(path).replace(" ", "%20")


async def call(client: WireClient, method: str, params: Any) -> Any:
    return await client.request(method, params, id=client.next_id())


def strip_id(reply: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in reply.items() if k != "id"}


async def start169(client: WireClient, pid: str, argv: list[str], cwd: str, **extra: Any) -> Any:
    params = {
        "processId": pid, "argv": argv, "cwd": cwd, "env": {}, "tty": False,
        "envPolicy": ENV_POLICY, "metadata": {"threadId": THREAD, "toolCallId": "c1"},
        "pipeStdin": False, "arg0": None, "sandbox": None,
        "enforceManagedNetwork": False, "managedNetwork": None, **extra,
    }
    return await call(client, "process/start", params)


# ------------------------------------------------------------------------------ handshake


async def test_initialize_carries_environment_info(server169: ServerHandle) -> None:
    async with session(server169.url) as client:
        info = await call(client, "environment/info", None)
        keys = set(info["result"])
        assert {"shell", "cwd", "userHomeDir", "tempDir", "capabilities", "platformOs"} <= keys
        assert info["result"]["cwd"].startswith("file:///")
        assert info["result"]["capabilities"]["fsWatchMissing"] is True
        assert info["result"]["capabilities"]["environmentConfigRead"] is True
        status = await call(client, "environment/status", {})
        assert status["result"] == {"status": "ready"}
    async with trio.open_nursery():
        pass


async def test_environment_config_read(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        reply = await call(client, "environmentConfig/read", {
            "cwd": uri(tmp_path), "configPaths": [["mcp_servers"]],
            "requirementsPaths": [["mcp_servers"]],
        })
        result = reply["result"]
        assert list(result) == [
            "userHomeDir", "codexHomeDir", "hostname", "config", "requirements"]
        assert result["config"] == {"layers": [], "cloudInsertionIndex": 0}
        assert result["requirements"] == {"layers": [], "cloudInsertionIndex": 0}
        missing = await call(client, "environmentConfig/read", {"cwd": uri(tmp_path)})
        assert missing["error"] == {"code": -32602, "message": "missing field `configPaths`"}


#: 0.171's capability flags, in its order; 0.169 sends the same without
#: ``networkProxyTransparentTcp`` (probe p12).
CAPABILITIES_0171 = [
    "networkProxyLaunch", "networkProxyReviewDomains", "networkProxyTransparentTcp",
    "credentialMasking", "credentialMaskingCustomProviders", "capabilityDiscoverySandbox",
    "fsWatchMissing", "capabilityDiscoveryV2", "environmentConfigRead", "httpHeaderEnvVars",
    "sandboxedFileStreaming", "fileWriteStreaming", "shellSnapshotV2", "windowsMxc",
    "linuxRootWritePreservesDevices", "linuxApprovedRootWritePreservesRestrictions",
]


async def test_capability_flags(server169: ServerHandle) -> None:
    """trio-exec sends 0.171's flags; only what it serves is true. It runs no network proxy,
    so ``networkProxyTransparentTcp`` (new in 0.171) is false, like the other proxy flags."""
    async with session(server169.url) as client:
        caps = (await call(client, "environment/info", None))["result"]["capabilities"]
    expected = list(CAPABILITIES_0171)
    if server169.kind == REFERENCE_0169:
        expected.remove("networkProxyTransparentTcp")
    assert list(caps) == expected
    if server169.is_reference:
        assert caps["networkProxyTransparentTcp" if server169.kind == REFERENCE_0171
                    else "networkProxyLaunch"] is True
    else:
        assert [flag for flag, on in caps.items() if on] == [
            "fsWatchMissing", "environmentConfigRead", "sandboxedFileStreaming",
            "fileWriteStreaming"]


@pytest.mark.parametrize(("config", "requirements", "message"), [
    ([], [], "at least one config or requirements path is required"),
    ([[]], [], "TOML paths must contain at least one key segment"),
    ([["a"], []], [["b"]], "TOML paths must contain at least one key segment"),
    ([], [[]], "TOML paths must contain at least one key segment"),
    ([["a"]], [], None),
    ([], [["a", ""]], None),
])
async def test_environment_config_read_needs_a_path_with_a_key(
    server169: ServerHandle, tmp_path: Path, config: list[list[str]],
    requirements: list[list[str]], message: str | None
) -> None:
    async with session(server169.url) as client:
        reply = await call(client, "environmentConfig/read", {
            "cwd": uri(tmp_path), "configPaths": config, "requirementsPaths": requirements})
    if message is None:
        assert reply["result"]["config"] == {"layers": [], "cloudInsertionIndex": 0}
    else:
        assert reply["error"] == {"code": -32602, "message": message}


# ------------------------------------------------------------------------------ paths

URI_CASES = [
    "file:///abs/pa%20th", "file://localhost/abs", "file://example.com/abs",
    "file:///f?x=1", "file:///f#x", "http://x/y", "rel", "",
]


@pytest.mark.parametrize("text", URI_CASES)
async def test_uri_parsing_matches(server169: ServerHandle, text: str) -> None:
    async with session(server169.url) as client:
        reply = await call(client, "fs/getMetadata", {"path": text, "sandbox": None})
        expected = {
            "file:///abs/pa%20th": -32004, "file://localhost/abs": -32004,
        }.get(text)
        if expected is not None:
            assert reply["error"]["code"] == expected
            return
        messages = {
            "file://example.com/abs": (-32600, "'file://example.com/abs' is invalid on 'linux'"),
            "file:///f?x=1": (-32602, "query parameters are not allowed in path URIs"),
            "file:///f#x": (-32602, "fragments are not allowed in path URIs"),
            "http://x/y": (-32602, "unsupported path URI scheme `http`"),
            "rel": (-32602, "invalid URI: relative URL without a base"),
            "": (-32602, "invalid URI: relative URL without a base"),
        }
        code, message = messages[text]
        assert reply["error"] == {"code": code, "message": message}


async def test_metadata_of_a_symlink(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f d").write_text("hello\n")
    (tmp_path / "link").symlink_to(tmp_path / "f d")
    async with session(server169.url) as client:
        link = await call(client, "fs/getMetadata", {"path": uri(tmp_path / "link"), "sandbox": None})
        result = link["result"]
        assert list(result) == [
            "isDirectory", "isFile", "isSymlink", "size", "createdAtMs", "modifiedAtMs"]
        assert (result["isFile"], result["isSymlink"], result["size"]) == (True, True, 6)
        plain = await call(client, "fs/getMetadata", {"path": uri(tmp_path / "f d")})
        assert plain["result"]["isSymlink"] is False
        if not server169.is_reference:  # trio-exec also takes 0.120 paths, answering 0.120
            old = await call(client, "fs/getMetadata", {"path": str(tmp_path / "link")})
            assert list(old["result"]) == ["isDirectory", "isFile", "createdAtMs", "modifiedAtMs"]


async def test_read_file_and_directory(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    async with session(server169.url) as client:
        read = await call(client, "fs/readFile", {"path": uri(tmp_path / "f"), "sandbox": None})
        assert unb64(read["result"]["dataBase64"]) == b"abc"
        directory = await call(client, "fs/readFile", {"path": uri(tmp_path), "sandbox": None})
        assert directory["error"] == {"code": -32600, "message": f"path `{tmp_path}` is not a file"}
        listing = await call(client, "fs/readDirectory", {"path": uri(tmp_path), "sandbox": None})
        assert [e["fileName"] for e in listing["result"]["entries"]] == ["f"]


async def test_canonicalize(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "l").symlink_to(tmp_path / "d")
    async with session(server169.url) as client:
        reply = await call(client, "fs/canonicalize", {"path": uri(tmp_path / "l" / ".." / "l")})
        assert reply["result"] == {"path": uri(tmp_path / "d")}
        missing = await call(client, "fs/canonicalize", {"path": uri(tmp_path / "nope")})
        assert missing["error"]["code"] == -32004


async def test_write_and_copy_with_uris(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        target = tmp_path / "a b.txt"
        wrote = await call(client, "fs/writeFile", {
            "path": uri(target), "dataBase64": "aGk=", "sandbox": None})
        assert wrote["result"] == {}
        copied = await call(client, "fs/copy", {
            "sourcePath": uri(target), "destinationPath": uri(tmp_path / "c"),
            "recursive": False, "sandbox": None})
        assert copied["result"] == {}
        assert (tmp_path / "c").read_bytes() == b"hi"


# ------------------------------------------------------------------------------ processes


async def test_process_start_result_and_env_overlay(
    server169: ServerHandle, tmp_path: Path
) -> None:
    async with session(server169.url) as client:
        reply = await start169(
            client, "p1", ["/bin/sh", "-c", "pwd; echo ${HOME:+home} $EXTRA"], uri(tmp_path),
            env={"EXTRA": "x"})
        assert strip_id(reply) == {"result": {"processId": "p1", "sandboxType": "none"}}
        await client.wait_process_closed("p1")
        assert client.output("p1") == f"{tmp_path}\nhome x\n".encode()
        exited = next(n for n in client.events("p1") if n["method"] == "process/exited")
        assert exited["params"]["exitCode"] == 0
        assert exited["params"]["sandboxDenied"] is False


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "tty"])
@pytest.mark.parametrize("signal_name, code", [("TERM", 143), ("KILL", 137), ("SEGV", 139)])
async def test_signal_death_is_128_plus_n(
    server169: ServerHandle, tmp_path: Path, signal_name: str, code: int, tty: bool
) -> None:
    """A tty child's signal death is exit code 1 on the references, the signal lost (the same
    defect as 0.120's, contract §2 #11); trio-exec reports 128+n in both modes
    (docs/protocol-dialects.md, C2)."""
    if tty and server169.is_reference:
        code = 1
    async with session(server169.url) as client:
        await start169(client, "s", ["/bin/sh", "-c", f"kill -{signal_name} $$"], uri(tmp_path),
                       tty=tty)
        await client.wait_process_closed("s")
        exited = next(n for n in client.events("s") if n["method"] == "process/exited")
        assert exited["params"]["exitCode"] == code
        read = await call(client, "process/read", {"processId": "s"})
        assert read["result"]["exitCode"] == code
        assert read["result"]["sandboxDenied"] is False


async def test_terminate_is_137(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        await start169(client, "t", ["/bin/sh", "-c", "echo up; exec /bin/sleep 30"], uri(tmp_path))
        await client.wait_output("t", b"up\n")  # running; no sleep decides that
        reply = await call(client, "process/terminate", {"processId": "t"})
        assert reply["result"] == {"running": True}
        exited = await client.wait_exited("t")
        assert exited["exitCode"] == 137


async def test_write_id_deduplicates(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        await start169(client, "w", ["/bin/sh", "-c", "head -c 3"], uri(tmp_path), pipeStdin=True)
        for chunk, write_id in [("a", "1"), ("b", "2"), ("a", "1"), ("c", "3")]:
            reply = await call(client, "process/write", {
                "processId": "w", "chunk": chunk_b64(chunk), "writeId": write_id})
            assert reply["result"] == {"status": "accepted"}
        await client.wait_process_closed("w")
        assert client.output("w") == b"abc"


def chunk_b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


async def test_signal_interrupt(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        # The shell says when its trap is installed; the signal is sent only then.
        await start169(client, "i", ["/bin/bash", "-c",
                                     "trap 'exit 7' INT; echo trapped; sleep 5 & wait"],
                       uri(tmp_path))
        await client.wait_output("i", b"trapped\n")
        reply = await call(client, "process/signal", {"processId": "i", "signal": "interrupt"})
        assert "result" in reply
        exited = await client.wait_exited("i")
        assert exited["exitCode"] == 7


SPAWN_FAILURES = {  # name: (argv, cwd, message, 0.171's data kind)
    "missing cwd": (["/bin/true"], "file:///nonexistent/dir",
                    "No such file or directory (os error 2)", "spawnNotFound"),
    "missing program": (["/nonexistent/prog"], "file:///",
                        "No such file or directory (os error 2)", "spawnNotFound"),
    "program not on PATH": (["no-such-program-xyz"], "file:///",
                            "No such file or directory (os error 2)", "spawnNotFound"),
    "directory as program": (["/tmp"], "file:///",
                             "Permission denied (os error 13)", "spawnPermissionDenied"),
    "file as cwd": (["/bin/true"], "file:///bin/true",
                    "Not a directory (os error 20)", "spawnFailed"),
}


@pytest.mark.parametrize("case", SPAWN_FAILURES)
async def test_spawn_failure_kinds(server169: ServerHandle, case: str) -> None:
    """codex 0.171 classifies a failed spawn in the error's `data` (`kind`); 0.169 sends code
    and message only. trio-exec sends 0.171's form: an additive member 0.169 clients ignore."""
    argv, cwd, message, kind = SPAWN_FAILURES[case]
    async with session(server169.url) as client:
        reply = await start169(client, "f", argv, cwd)
    error: dict[str, Any] = {"code": -32603, "message": message}
    if server169.kind != REFERENCE_0169:
        error["data"] = {"kind": kind}
    assert reply["error"] == error


async def test_a_non_executable_file_is_permission_denied(
    server169: ServerHandle, tmp_path: Path
) -> None:
    program = tmp_path / "not-executable"
    program.write_text("#!/bin/sh\n")
    async with session(server169.url) as client:
        reply = await start169(client, "f", [str(program)], "file:///")
    error: dict[str, Any] = {"code": -32603, "message": "Permission denied (os error 13)"}
    if server169.kind != REFERENCE_0169:
        error["data"] = {"kind": "spawnPermissionDenied"}
    assert reply["error"] == error


# ------------------------------------------------------------------------------ watches


async def test_watch_missing_fires_once(server169: ServerHandle, tmp_path: Path) -> None:
    async with session(server169.url) as client:
        deep = uri(tmp_path / "a" / "b" / "c")
        reply = await call(client, "fs/watchMissing", {
            "watchId": 7, "missing": [deep], "present": None})
        assert reply["result"] == {"watching": True}
        again = await call(client, "fs/watchMissing", {
            "watchId": 7, "missing": [deep], "present": None})
        assert again["result"] == {"watching": False}
        (tmp_path / "unrelated").mkdir()  # fires nothing: test_watch_missing.py proves that
        started = time.monotonic()
        os.mkdir(tmp_path / "a")

        def fired() -> list[Any]:
            return [n for n in client.notifications if n["method"] == "fs/missingChanged"]

        notes = await client.wait_for(fired, within=5)
        latency = time.monotonic() - started
        assert notes == [{"method": "fs/missingChanged", "params": {"watchId": 7}}]
        assert latency < 1.0, latency
        # that creating a/b afterwards fires nothing more: test_watch_missing.py


async def test_watch_present_disappearing(server169: ServerHandle, tmp_path: Path) -> None:
    (tmp_path / "git").mkdir()
    async with session(server169.url) as client:
        reply = await call(client, "fs/watchMissing", {
            "watchId": 1, "missing": [uri(tmp_path / "x")], "present": uri(tmp_path / "git")})
        assert reply["result"] == {"watching": True}
        (tmp_path / "git").rmdir()
        notes = await client.wait_for(
            lambda: [n for n in client.notifications if n["method"] == "fs/missingChanged"],
            within=5)
        assert notes[0]["params"] == {"watchId": 1}


async def test_a_new_watch_replaces_the_current_one(
    server169: ServerHandle, tmp_path: Path
) -> None:
    """One watch per session: another id replaces it, even when the new one is refused because
    its path exists; an empty `missing` leaves the current watch alone."""
    async with session(server169.url) as client:
        for first_id, second in (
            (1, {"watchId": 2, "missing": [uri(tmp_path)], "present": None}),
            (11, {"watchId": 3, "missing": [], "present": None}),
        ):
            first = await call(client, "fs/watchMissing", {
                "watchId": first_id, "missing": [uri(tmp_path / "a")], "present": None})
            assert first["result"] == {"watching": True}
            reply = await call(client, "fs/watchMissing", second)
            assert reply["result"] == {"watching": False}
            (tmp_path / "a").mkdir()
            (tmp_path / "q").mkdir()
            if second["watchId"] == 3:  # the watch left alone fires
                notes = await client.wait_for(
                    lambda: [n for n in client.notifications
                             if n["method"] == "fs/missingChanged"], within=5)
                assert [n["params"]["watchId"] for n in notes] == [first_id]
            # that the replaced watch never fires: test_watch_missing.py
            (tmp_path / "a").rmdir()
            (tmp_path / "q").rmdir()
            client.notifications.clear()
