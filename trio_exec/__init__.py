"""trio-exec: a remote-execution daemon for coding agents (the Codex exec-server protocol)."""

__version__ = "0.1.0"
