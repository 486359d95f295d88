"""JSON-lines logging to stdout: one object per record, for log shippers."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson


class JSONFormatter(logging.Formatter):
    def __init__(self, color: str) -> None:
        super().__init__()
        self.color = color

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "color": self.color,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry).decode()


def configure_logging(color: str, level: int = logging.INFO) -> None:
    """Send every logger (uvicorn's included) through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JSONFormatter(color))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
