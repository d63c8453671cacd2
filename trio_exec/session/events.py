"""What the session layer tells whoever watches the daemon (its metrics), without knowing them.

Rules: as `process/observer.py`: called at the moment named, cheap, synchronous, never raising;
the base class does nothing. It is also the `ProcessEvents` of the sessions' process tables.
"""

from __future__ import annotations

from trio_exec.process.observer import ProcessEvents


class SessionEvents(ProcessEvents):
    def session_created(self) -> None:
        """A new session was created by `initialize`."""

    def session_resumed(self) -> None:
        """A parked or attached session was resumed by `initialize` with its id."""

    def session_taken_over(self) -> None:
        """A resume took the session from the connection that held it."""

    def session_expired(self) -> None:
        """A parked session was not resumed in time (its processes were killed)."""
