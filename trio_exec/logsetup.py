"""The daemon's log output: one line per event, on stderr (stdout carries only the URL).

Rules:
- `text` (the default): `LEVEL logger: message`, after a timestamp; under journald (stderr is the
  stream `JOURNAL_STREAM` names) without the timestamp, which the journal adds itself, and with
  the syslog priority prefix (`<4>`) so the journal records each line's level.
- `json`: one object per line (`time`, `level`, `logger`, `message`, and `exception` when there
  is one), for collectors.
- What the daemon logs names things by short ids (`conn-7`, `sess-3f2a1b9c`, a process id) and
  never carries file contents, environment values or tokens: the call sites log ids, counts,
  codes and durations only.
- `set_level` changes the level live (a reload).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO

import orjson

#: syslog priorities of the logging levels, for journald's `<N>` line prefix.
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
             logging.CRITICAL: 2}


def under_journald(stream: IO[str], environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `stream` is the journal's stream (`JOURNAL_STREAM` is `device:inode`)."""
    expected = environ.get("JOURNAL_STREAM", "")
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


class JournalFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        priority = _PRIORITY.get(record.levelno, 6)
        # one journal entry per event: a traceback's lines stay in the same entry
        return f"<{priority}>" + super().format(record).replace("\n", "\n ")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def formatter(log_format: str, stream: IO[str], environ: Mapping[str, str] = os.environ) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if under_journald(stream, environ):
        return JournalFormatter()
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure(level: str, log_format: str, stream: IO[str] | None = None) -> None:
    """Send the daemon's records to `stream` (stderr) at `level`, in `log_format`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format, handler.stream))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    set_level(level)


def set_level(level: str) -> None:
    logging.getLogger().setLevel(level)
