"""Where the log goes and in which form: human lines (the default) or one JSON object per line,
on stderr, stdout or a file that a SIGHUP reopens (so that logrotate can move it away).

Log calls that matter to operators carry their facts as ``extra`` fields (``event``,
``client_id``, ``peer``, ``reason``); the JSON form writes them as keys, the human form only
the sentence. A call without an ``event`` gets the word its message starts with ("refused:
..." is event "refused").
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

FIELDS = ("client_id", "peer", "reason")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(message)s"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": _iso_time(record.created),
            "level": record.levelname.lower(),
            "event": getattr(record, "event", None) or _event_of(message),
            "message": message,
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _iso_time(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def _event_of(message: str) -> str:
    head, sep, _ = message.partition(": ")
    if sep and len(head) <= 32:
        return head.lower().replace(" ", "_")
    return "log"


class ReopenableFileHandler(logging.FileHandler):
    """A log file that ``reopen()`` closes and opens again by name (after logrotate moved
    it, the new file is written)."""

    def reopen(self) -> None:
        self.acquire()
        try:
            if self.stream is not None:
                self.stream.close()
            self.stream = self._open()
        finally:
            self.release()


def parse_dest(dest: str) -> tuple[str, str | None]:
    """("stderr" | "stdout" | "file" | "none", the file's path); ValueError if not one."""
    kind, _, path = dest.strip().partition(" ")
    if kind in ("stderr", "stdout", "none") and not path:
        return kind, None
    if kind == "file" and path.strip():
        return kind, path.strip()
    raise ValueError(f"log_dest {dest!r}: expected stderr, stdout, none or 'file PATH'")


def configure_logging(level: str, form: str, dest: str) -> None:
    """Set the root logger's one handler; OSError if a log file cannot be opened."""
    kind, path = parse_dest(dest)
    handler: logging.Handler
    if kind == "file":
        assert path is not None
        handler = ReopenableFileHandler(path, encoding="utf-8")
    elif kind == "none":
        handler = logging.NullHandler()
    else:
        stream: TextIO = sys.stdout if kind == "stdout" else sys.stderr
        handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())


def reopen_logs() -> None:
    """SIGHUP: log files are opened again by name."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, ReopenableFileHandler):
            handler.reopen()
