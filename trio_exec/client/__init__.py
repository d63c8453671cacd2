"""The exec-server client: typed calls, per-process output channels, automatic recovery.

    async with open_client("ws://127.0.0.1:8765") as client:
        process = await client.process_start(["echo", "hi"], cwd="/", env={})
        async for chunk in process.output():
            ...
"""

from trio_exec.client.client import (
    ExecClient,
    open_client,
    open_client_over_stream,
    open_client_via,
    open_client_with,
)
from trio_exec.client.connect import BadUrl, Connector, stream_connector, url_connector
from trio_exec.client.cursor import Output
from trio_exec.client.errors import (
    ClientError,
    ConnectFailed,
    ConnectionLost,
    OutputLost,
    ProcessLost,
    RequestTooLarge,
)
from trio_exec.client.process import RemoteProcess
from trio_exec.client.session import ReconnectPolicy

__all__ = [
    "BadUrl",
    "ClientError",
    "ConnectFailed",
    "ConnectionLost",
    "Connector",
    "ExecClient",
    "Output",
    "OutputLost",
    "ProcessLost",
    "ReconnectPolicy",
    "RemoteProcess",
    "RequestTooLarge",
    "open_client",
    "open_client_over_stream",
    "open_client_via",
    "open_client_with",
    "stream_connector",
    "url_connector",
]
