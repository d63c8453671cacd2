"""The `fs/*` service: the local filesystem behind the wire methods, with sandbox policy checks.

`local.LocalFilesystem` is the service (async, thread-offloaded); `policy` decides what a
`sandboxPolicy` allows; `blocking` holds the operations themselves; `handlers` adapts the wire
params and results.
"""

from .local import LocalFilesystem

__all__ = ["LocalFilesystem"]
