"""The exec-server client: typed calls, per-process output channels, automatic recovery.

    async with open_client("ws://127.0.0.1:8765") as client:
        process = await client.process_start(["echo", "hi"], cwd="/", env={})
        async for chunk in process.output():
            ...
"""

from .client import ExecClient, open_client, open_client_over_stream, open_client_with
from .connect import BadUrl, Connector, stream_connector, url_connector
from .cursor import Output
from .errors import (
    ClientError,
    ConnectFailed,
    ConnectionLost,
    OutputLost,
    ProcessLost,
    RequestTooLarge,
)
from .process import RemoteProcess
from .session import ReconnectPolicy

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
    "open_client_with",
    "stream_connector",
    "url_connector",
]
