"""The host as the 0.169 dialect describes it: `environmentInfo`, `environment/*` and
`environmentConfig/read`.

Rules (docs/protocol-dialects.md §3.2, §6):
- `environmentInfo` (the `environment/info` result, also carried by every `initialize`
  result, which the 0.120 client ignores) holds real values of this daemon: its user's login
  shell, its version, its working directory, the user's home, `$TMPDIR` (else the system
  temporary directory), paths as `file://` URIs.
- `capabilities` steer the 0.169 client: only what trio-exec really serves is `true`
  (`fsWatchMissing`, `environmentConfigRead`, `fileWriteStreaming`, `sandboxedFileStreaming`);
  every other flag the references send is `false` (trio-exec runs no network proxy, so the
  `networkProxy*` flags, 0.171's `networkProxyTransparentTcp` among them, are `false`). The
  flags are those of 0.171, in its order; 0.169 sends the same without
  `networkProxyTransparentTcp`, and its client ignores the extra flag.
- `providerId` identifies this executor: `sha256:` of `trio-exec`, the host name and the uid.
- `environmentConfig/read`: trio-exec has no codex configuration of its own, so both layer
  lists are empty; `codexHomeDir` is `$CODEX_HOME`, else `~/.codex` (codex's default). Its
  params are checked as the references check them (probe p12): at least one path in
  `configPaths` and `requirementsPaths` together, and no path without a key segment.
- `environment/status` is `{"status": "ready"}` once the daemon answers at all.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pwd
import socket
import tempfile
from typing import Any, NamedTuple

from trio_exec import __version__
from trio_exec.proto import methods
from trio_exec.proto.env_messages import EnvironmentConfigReadParams, IgnoredParams
from trio_exec.proto.errors import InvalidParams
from trio_exec.proto.uri import to_uri
from trio_exec.rpc.context import CallContext, Handler

CAPABILITY_FLAGS = (
    "networkProxyLaunch",
    "networkProxyReviewDomains",
    "networkProxyTransparentTcp",  # 0.171
    "credentialMasking",
    "credentialMaskingCustomProviders",
    "capabilityDiscoverySandbox",
    "fsWatchMissing",
    "capabilityDiscoveryV2",
    "environmentConfigRead",
    "httpHeaderEnvVars",
    "sandboxedFileStreaming",
    "fileWriteStreaming",
    "shellSnapshotV2",
    "windowsMxc",
    "linuxRootWritePreservesDevices",
    "linuxApprovedRootWritePreservesRestrictions",
)
SERVED = frozenset({
    "fsWatchMissing",
    "environmentConfigRead",
    # fs/open + fs/readBlock/writeBlock/close, `replace` mode and `sandbox` contexts
    # (tests/dialect169/test_fs_handles.py)
    "fileWriteStreaming",
    "sandboxedFileStreaming",
})


def _user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(os.getuid())
    except KeyError:
        return None


class _Identity(NamedTuple):
    shell_path: str
    provider_id: str
    #: The home directory from the user database, for when `$HOME` is unset.
    looked_up_home: str


@functools.cache
def _identity() -> _Identity:
    """Looked up once per process: `getpwuid` may ask a directory service (sssd, LDAP), which
    must not happen on the event loop at every `initialize`."""
    user = _user()
    shell_path = (user.pw_shell if user else "") or os.environ.get("SHELL") or "/bin/sh"
    identity = f"trio-exec:{socket.gethostname()}:{os.getuid()}"
    return _Identity(
        shell_path,
        "sha256:" + hashlib.sha256(identity.encode()).hexdigest(),
        user.pw_dir if user is not None else "~",  # as `expanduser` leaves an unknown user
    )


def home_dir() -> str:
    """`$HOME`, else the user database's entry (looked up once)."""
    if "HOME" in os.environ:
        return os.path.expanduser("~")
    return _identity().looked_up_home


def environment_info() -> dict[str, Any]:
    shell_path, provider_id, _ = _identity()
    return {
        "shell": {"name": os.path.basename(shell_path), "path": shell_path},
        "executorVersion": __version__,
        "providerId": provider_id,
        "cwd": to_uri(os.getcwd()),
        "userHomeDir": to_uri(home_dir()),
        "platformOs": "linux",
        "prependPathDirs": [],
        "temporaryDirectories": [],
        "tempDir": to_uri(tempfile.gettempdir()),
        "capabilities": {flag: flag in SERVED for flag in CAPABILITY_FLAGS},
    }


async def info(ctx: CallContext, params: IgnoredParams) -> dict[str, Any]:
    del ctx, params
    return environment_info()


async def status(ctx: CallContext, params: IgnoredParams) -> dict[str, Any]:
    del ctx, params
    return {"status": "ready"}


def environment_config() -> dict[str, Any]:
    codex_home = os.environ.get("CODEX_HOME") or os.path.join(home_dir(), ".codex")
    empty = {"layers": [], "cloudInsertionIndex": 0}
    return {
        "userHomeDir": to_uri(home_dir()),
        "codexHomeDir": to_uri(os.path.abspath(codex_home)),
        "hostname": socket.gethostname(),
        "config": dict(empty),
        "requirements": dict(empty),
    }


async def config_read(ctx: CallContext, params: EnvironmentConfigReadParams) -> dict[str, Any]:
    del ctx
    paths = [*params.config_paths, *params.requirements_paths]
    if not paths:
        raise InvalidParams("at least one config or requirements path is required")
    if not all(paths):
        raise InvalidParams("TOML paths must contain at least one key segment")
    return environment_config()


HOSTENV_HANDLERS: dict[str, Handler] = {
    methods.ENVIRONMENT_INFO: info,
    methods.ENVIRONMENT_STATUS: status,
    methods.ENVIRONMENT_CONFIG_READ: config_read,
}
