"""The filesystem service: the local filesystem behind the `fs/*` methods.

`local.LocalFilesystem` is the service (async, thread-offloaded on its own limiter); `blocking`
holds the operations themselves; `target` resolves a path race-free when a sandbox restricts
it; `streams` moves FIFOs and devices without holding a thread; `handles` owns `fs/open`
handles; `walk` and `watch` serve `fs/walk` and `fs/watchMissing`. What a policy allows is
decided in `sandbox/`; the wire params and results are adapted in `rpc/fs_methods.py`.
May import: `proto/`, `sandbox/`; never `rpc/`, `ws/`, the consumer side or the daemon shell.
"""

from trio_exec.fs.local import LocalFilesystem

__all__ = ["LocalFilesystem"]
