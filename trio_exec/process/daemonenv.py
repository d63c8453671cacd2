"""What a child may inherit of the daemon's own environment (0.169 `envPolicy.inherit`).

Rule: the daemon's own secrets never reach a child through inheritance: its `TRIO_EXEC_*`
settings, systemd's credentials directory (`CREDENTIALS_DIRECTORY`, where a `LoadCredential=`
token lives) and the service manager's variables, and any variable whose value contains the
auth token. A client that wants such a variable in a child asks for it by value, in `env` or
`envPolicy.set`, which are never filtered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from trio_exec.process.spawn import SERVICE_MANAGER_VARIABLES

DAEMON_PREFIXES = ("TRIO_EXEC_",)
DAEMON_VARIABLES = frozenset({"CREDENTIALS_DIRECTORY", *SERVICE_MANAGER_VARIABLES})


def inheritable_environment(
    environ: Mapping[str, str], secrets: Iterable[str] = ()
) -> dict[str, str]:
    hidden = [secret for secret in secrets if secret]
    return {
        name: value
        for name, value in environ.items()
        if name not in DAEMON_VARIABLES
        and not name.startswith(DAEMON_PREFIXES)
        and not any(secret in value for secret in hidden)
    }
