"""The environment manager: decides once, at start-up, where commands run.

Rule: the choice comes from `TRIO_EXEC_SERVER_URL`, or `CODEX_EXEC_SERVER_URL` when that is
unset or empty, read once when the manager is created:

    unset or empty      → local (this machine)
    none                → disabled (no exec, no filesystem)
    ws://… or wss://…   → remote (an exec-server)
    anything else       → EnvironmentConfigError, naming the variable and the value

With a remote environment a working directory is a path on the remote machine: nothing here
checks it locally (`resolve_cwd` hands it through). Only a local one is checked and made
absolute.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import attrs

from trio_exec.client.connect import BadUrl, check_url
from trio_exec.environment.base import Environment
from trio_exec.environment.disabled import disabled_environment
from trio_exec.environment.local import open_local_environment
from trio_exec.environment.remote import open_remote_environment

VARIABLES = ("TRIO_EXEC_SERVER_URL", "CODEX_EXEC_SERVER_URL")
LOCAL, REMOTE, DISABLED = "local", "remote", "disabled"


class EnvironmentConfigError(ValueError):
    """The configured environment cannot work; `str(err)` is the one-line reason."""


@attrs.frozen(kw_only=True)
class EnvironmentSpec:
    kind: str
    url: str | None = None
    #: The variable the choice came from (None: none was set).
    variable: str | None = None


def spec_from_environ(environ: Mapping[str, str] | None = None) -> EnvironmentSpec:
    environ = os.environ if environ is None else environ
    for variable in VARIABLES:
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if value.lower() == "none":
            return EnvironmentSpec(kind=DISABLED, variable=variable)
        if value.startswith(("ws://", "wss://")):
            try:
                check_url(value)
            except BadUrl as exc:
                raise EnvironmentConfigError(f"{variable}: {exc}") from None
            return EnvironmentSpec(kind=REMOTE, url=value, variable=variable)
        raise EnvironmentConfigError(
            f"{variable}={value!r} is not understood: expected ws://HOST:PORT, wss://HOST:PORT, "
            "none, or nothing (local)"
        )
    return EnvironmentSpec(kind=LOCAL)


@attrs.define(eq=False)
class EnvironmentManager:
    """Created once per program; `open()` yields the one environment for its lifetime."""

    spec: EnvironmentSpec
    client_name: str = "trio-exec-environment"
    auth_token: str | None = None

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, **options: str | None
    ) -> EnvironmentManager:
        return cls(spec_from_environ(environ), **options)  # type: ignore[arg-type]

    @asynccontextmanager
    async def open(self) -> AsyncIterator[Environment]:
        """Cancellation: leaving the block ends the environment (local processes are killed;
        a remote session is left to the server's TTL)."""
        if self.spec.kind == DISABLED:
            yield disabled_environment(
                f"the execution environment is disabled ({self.spec.variable}=none)"
            )
        elif self.spec.kind == REMOTE:
            assert self.spec.url is not None
            async with open_remote_environment(
                self.spec.url, client_name=self.client_name, auth_token=self.auth_token
            ) as env:
                yield env
        else:
            async with open_local_environment() as env:
                yield env

    def resolve_cwd(self, cwd: str | None = None) -> str:
        """The working directory for commands: a remote one is used as given (it names a
        directory on the server), default the caller's; a local one must exist here."""
        if self.spec.kind != LOCAL:
            return cwd if cwd is not None else os.getcwd()
        path = os.path.abspath(cwd if cwd is not None else os.getcwd())
        if not os.path.isdir(path):
            raise EnvironmentConfigError(f"working directory {path} does not exist")
        return path
