"""The `Environment` seam: local, remote and disabled implementations of exec and fs."""

from trio_exec.environment.base import (
    Capabilities,
    Environment,
    EnvironmentUnavailable,
    ExecBackend,
    ExecProcess,
    FileSystem,
)
from trio_exec.environment.disabled import disabled_environment
from trio_exec.environment.local import open_local_environment
from trio_exec.environment.manager import (
    EnvironmentConfigError,
    EnvironmentManager,
    EnvironmentSpec,
    spec_from_environ,
)
from trio_exec.environment.remote import open_remote_environment, remote_environment

__all__ = [
    "Capabilities",
    "Environment",
    "EnvironmentConfigError",
    "EnvironmentManager",
    "EnvironmentSpec",
    "EnvironmentUnavailable",
    "ExecBackend",
    "ExecProcess",
    "FileSystem",
    "disabled_environment",
    "open_local_environment",
    "open_remote_environment",
    "remote_environment",
    "spec_from_environ",
]
