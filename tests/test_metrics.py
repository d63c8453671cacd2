"""`GET /metrics`: the Prometheus text a real daemon serves on its port, scraped over TCP and
parsed with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from prometheus_client.parser import text_string_to_metric_families
from support.wsclient import connect

from trio_exec.config import Config, ListenAddress
from trio_exec.server import Daemon, open_listeners


@asynccontextmanager
async def tcp_daemon(**settings: object) -> AsyncIterator[tuple[Daemon, str]]:
    config = Config(listen=ListenAddress(host="127.0.0.1", port=0), ping_interval=None, **settings)  # type: ignore[arg-type]
    daemon = Daemon(config)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(daemon.run, await open_listeners(config))
        try:
            yield daemon, address.url
        finally:
            daemon.stop()


async def http_get(url: str, path: str, token: str | None = None) -> tuple[bytes, bytes]:
    """(the response head, the body) of one plain HTTP GET."""
    host, port = url.removeprefix("ws://").rsplit(":", 1)
    stream = await trio.open_tcp_stream(host, int(port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    async with stream:
        await stream.send_all(f"GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\n".encode())
        data = b""
        with trio.fail_after(10):
            while chunk := await stream.receive_some(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


async def scrape(url: str, token: str | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    head, body = await http_get(url, "/metrics", token)
    assert head.startswith(b"HTTP/1.1 200 "), head
    assert b"content-type: text/plain; version=0.0.4; charset=utf-8" in head
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_what_the_daemon_did() -> None:
    async with tcp_daemon() as (daemon, url):
        async with connect(url) as client:
            sid = await client.handshake()
            output, _ = await client.run("ok", ["echo", "hello"])
            assert output == b"hello\n"
            await client.run("bad", ["sh", "-c", "exit 3"])
            await client.run("killed", ["sh", "-c", "kill -9 $$"])
            await client.start_ok("sleeper", ["sleep", "100"])
            missing = await client.request("fs/getMetadata", {"path": "/definitely/not/here"})
            assert missing["error"]["code"] == -32004
            unknown = await client.request("no/suchMethod", {})
            assert unknown["error"]["code"] == -32601
            samples = await scrape(url)
            assert value(samples, "trio_exec_connections_open") == 1
            assert value(samples, "trio_exec_connections_accepted_total") == 1
            assert value(samples, "trio_exec_sessions", state="attached") == 1
            assert value(samples, "trio_exec_sessions", state="parked") == 0
            assert value(samples, "trio_exec_sessions_created_total") == 1
            assert value(samples, "trio_exec_processes_started_total") == 4
            assert value(samples, "trio_exec_processes_running") == 1
            assert value(samples, "trio_exec_process_exits_total", kind="success") == 1
            assert value(samples, "trio_exec_process_exits_total", kind="failure") == 1
            assert value(samples, "trio_exec_process_exits_total", kind="signal") == 1
            assert value(samples, "trio_exec_output_bytes_total") == len(b"hello\n")
            assert value(samples, "trio_exec_output_retained_bytes") == len(b"hello\n")
            assert value(samples, "trio_exec_requests_total", method="process/start") == 4
            assert value(samples, "trio_exec_requests_total", method="initialize") == 1
            assert value(samples, "trio_exec_request_errors_total",
                         method="fs/getMetadata", code="-32004") == 1
            # a method no protocol has is counted as `other`: a peer cannot grow the labels
            assert value(samples, "trio_exec_request_errors_total", method="other", code="-32601") == 1
            assert not any("no/suchMethod" in str(key) for key in samples)
            assert value(samples, "trio_exec_request_duration_seconds_count", method="initialize") == 1
            assert value(samples, "trio_exec_request_duration_seconds_bucket",
                         method="initialize", le="+Inf") == 1
        # the drop parks the session; a resume from two connections is a resume and a takeover
        with trio.fail_after(10):
            while daemon.registry.sessions()[0].attachment is not None:  # noqa: ASYNC110
                await trio.sleep(0.005)
        samples = await scrape(url)
        assert value(samples, "trio_exec_connections_open") == 0
        assert value(samples, "trio_exec_sessions", state="parked") == 1
        async with connect(url) as first, connect(url) as second:
            assert await first.handshake(resumeSessionId=sid) == sid
            assert await second.handshake(resumeSessionId=sid) == sid
            samples = await scrape(url)
        assert value(samples, "trio_exec_session_resumes_total") == 2
        assert value(samples, "trio_exec_session_takeovers_total") == 1
        # a second daemon in the same process has its own registry: nothing shared
        async with tcp_daemon() as (_, other_url):
            fresh = await scrape(other_url)
        assert value(fresh, "trio_exec_processes_started_total") == 0
        assert value(fresh, "trio_exec_sessions_created_total") == 0


async def test_metrics_are_behind_the_token_when_auth_is_on() -> None:
    async with tcp_daemon(auth_token="s3cret") as (_, url):
        head, body = await http_get(url, "/metrics")
        assert head.startswith(b"HTTP/1.1 401 ") and b"trio_exec" not in body
        head, _ = await http_get(url, "/metrics", "wrong")
        assert head.startswith(b"HTTP/1.1 401 ")
        samples = await scrape(url, "s3cret")
        assert value(samples, "trio_exec_connections_open") == 0
        head, _ = await http_get(url, "/readyz")  # health stays open
        assert head.startswith(b"HTTP/1.1 200 ")


async def test_a_message_over_the_limit_is_counted() -> None:
    async with tcp_daemon(max_message_size=1024) as (_, url):
        async with connect(url) as client:
            await client.send_raw("x" * 4096, may_close=True)
            reason = await client.wait_closed()
        assert reason.code == 1009
        samples = await scrape(url)
        assert value(samples, "trio_exec_messages_too_big_total") == 1
