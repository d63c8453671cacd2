"""What the process layer tells whoever watches the daemon (its metrics), without knowing them.

Rules: the layer calls these at the moments they name, from the task where the thing happens;
every call is cheap, synchronous and never raises. The base class does nothing: a table made
without an observer (tests, the local environment) pays one method call per event.
"""

from __future__ import annotations

#: `ProcessEvents.exited` kinds.
EXIT_SUCCESS = "success"  # exit code 0
EXIT_FAILURE = "failure"  # a non-zero exit code
EXIT_SIGNAL = "signal"  # killed by a signal


class ProcessEvents:
    def process_started(self) -> None:
        """A child was spawned and is supervised."""

    def process_output(self, size: int) -> None:
        """`size` bytes of a child's output were recorded."""

    def process_exited(self, kind: str) -> None:
        """A child's exit was recorded; `kind` is one of the `EXIT_*` names."""
