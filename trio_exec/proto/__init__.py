"""The wire vocabulary, shared by the daemon and the client: messages, the converter, the codec,
error classes, the method table. Pure and synchronous: no trio, no I/O.

Layered inside (pyproject.toml's import-linter contracts): texts and types at the bottom,
messages above them, the one converter above the messages, codec and methods on top. Imports
nothing else of trio_exec.
"""
