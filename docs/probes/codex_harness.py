"""End-to-end harness: run the real `codex exec` CLI against an exec-server.

The harness lives in `tests/support/codex_harness.py` (fake Responses-API model, logging
WebSocket proxy with `cut_when`, `run_codex_exec`); this file re-exports it for the probes in
this directory and keeps the command line:

    python codex_harness.py --version 0.169 [--server ws://...] 'echo hi'
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests"))

from support.codex_harness import (  # noqa: F401
    CodexRun,
    CodexTimeout,
    FakeModel,
    Frame,
    LoggingProxy,
    Say,
    ToolCall,
    apply_patch,
    codex_binary,
    main,
    run_codex_exec,
    shell,
    write_stdin,
)

if __name__ == "__main__":
    main()
