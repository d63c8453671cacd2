"""The `Environment` seam: local, remote and disabled implementations of exec and fs."""

from .base import (
    Capabilities,
    Environment,
    EnvironmentUnavailable,
    ExecBackend,
    ExecProcess,
    FileSystem,
)
from .disabled import disabled_environment
from .local import open_local_environment
from .manager import EnvironmentConfigError, EnvironmentManager, EnvironmentSpec, spec_from_environ
from .remote import open_remote_environment, remote_environment

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
