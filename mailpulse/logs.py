"""Logging: plain text for people, JSON lines for log pipelines (MAILPULSE_LOG_FORMAT=json). Every line,
mailpulse's or a library's, goes out with the passwords of the URLs in it redacted."""

from __future__ import annotations

import logging
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType

import orjson

from mailpulse.redact import redact_dsn


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_dsn(record.getMessage()),
        }
        if record.exc_info:
            line["exception"] = redact_dsn(self.formatException(record.exc_info))
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return redact_dsn(super().format(record))


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def redacted_excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
    """An uncaught exception's traceback, printed as Python does but redacted like the log lines."""
    sys.stderr.write(redact_dsn("".join(traceback.format_exception(kind, value, tb))))


def configure(level: int, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    sys.excepthook = redacted_excepthook
