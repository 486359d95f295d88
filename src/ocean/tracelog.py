"""Following one request through the logs: `invoke logs --trace ID`.

nginx gives every request an id (``$request_id``), sends it to the shop as
X-Request-ID and logs it (``request_id=…``, and ``trace_id=…``: the id the shop
answered with, which differs only when the client sent a W3C traceparent). The shop
logs that id on every line it writes while handling the request (``"trace_id": …``)
and echoes it in the response's X-Request-ID header: the id an operator pastes.

This gathers nginx's access line(s) and every line of both shop colors carrying the
id, in time order. nginx's access log is a file in the state dir on every runtime
(compose mounts the state dir at its own path); the shops' lines come through the
runtime's ``log_lines``, so on compose they are the containers' output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ocean.errors import OceanError
from ocean.limits import MAX_LOG_LINES
from ocean.services import get

SHOP_SERVICES = ("shop-blue", "shop-green")
SCAN_LINES = MAX_LOG_LINES  # of each shop's log, newest first: a recent request's lines
ACCESS_LOG = "nginx-access.log"

_HEX_ID = re.compile(r"[0-9a-fA-F]{32}")
_UUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_NGINX_TIME = re.compile(r"\[(\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4})\]")


@dataclass(frozen=True)
class TraceLine:
    at: datetime | None
    source: str  # nginx, shop-blue, shop-green
    line: str

    def as_dict(self) -> dict:
        return {
            "at": self.at.isoformat() if self.at else None,
            "source": self.source,
            "line": self.line,
        }


def normalise(trace_id: str) -> str:
    """The id as nginx and the shop log it: 32 lower-case hex digits (a UUID's dashes
    dropped, as the shop drops them)."""
    value = trace_id.strip()
    if _UUID.fullmatch(value):
        value = value.replace("-", "")
    if not _HEX_ID.fullmatch(value):
        raise OceanError(
            f"trace id {trace_id!r}: 32 hex digits, as in a response's X-Request-ID header"
        )
    return value.lower()


def is_trace_id(text: str) -> bool:
    """Whether ``text`` is a trace id as ``normalise`` takes it (the console's filter)."""
    value = text.strip()
    return bool(_HEX_ID.fullmatch(value) or _UUID.fullmatch(value))


def nginx_time(line: str) -> datetime | None:
    match = _NGINX_TIME.search(line)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%d/%b/%Y:%H:%M:%S %z")


def shop_time(line: str) -> datetime | None:
    try:
        stamp = json.loads(line).get("ts")
        return datetime.fromisoformat(stamp) if stamp else None
    except (ValueError, AttributeError):
        return None


def access_log_files(logs: Path) -> list[Path]:
    """nginx's access log and any uncompressed rotations of it, oldest first."""
    rotated = sorted(
        (p for p in logs.glob(f"{ACCESS_LOG}.*") if p.suffix != ".gz"),
        key=lambda p: p.name,
        reverse=True,
    )
    current = logs / ACCESS_LOG
    return [*rotated, *([current] if current.exists() else [])]


def _matching(lines: Iterable[str], needle: str) -> Iterator[str]:
    return (line for line in lines if needle in line)


def _file_lines(path: Path, needle: bytes) -> Iterator[str]:
    with path.open("rb") as handle:
        for raw in handle:
            if needle in raw:
                yield raw.decode(errors="replace").rstrip("\n")


def gather(
    trace_id: str,
    logs: Path,
    shop_lines: Callable[[str], Iterable[str]],
) -> list[TraceLine]:
    """Every line carrying ``trace_id``: nginx's access log under ``logs``, and each
    shop color's lines from ``shop_lines(service)`` (a color that never ran yields
    nothing), in time order."""
    wanted = normalise(trace_id)
    found: list[TraceLine] = []
    for path in access_log_files(logs):
        for line in _file_lines(path, wanted.encode()):
            found.append(TraceLine(nginx_time(line), "nginx", line))
    for service in SHOP_SERVICES:
        for line in _matching(shop_lines(service), wanted):
            found.append(TraceLine(shop_time(line), service, line))
    epoch = datetime.min.replace(tzinfo=UTC)

    def when(line: TraceLine) -> datetime:
        if line.at is None:
            return epoch
        if line.source == "nginx":
            # Whole seconds, stamped when the answer left: the end of that second, so
            # it follows the shop's lines of the same request.
            return line.at + timedelta(microseconds=999_999)
        return line.at

    return sorted(found, key=when)


def trace(runtime, trace_id: str) -> list[TraceLine]:
    """``gather`` for ``runtime``'s stack; OceanError when no line carries the id."""
    wanted = normalise(trace_id)

    def shop_lines(name: str) -> Iterable[str]:
        try:
            return list(runtime.log_lines(get(name), SCAN_LINES, False, 0.0, lambda: False))
        except OceanError:  # a color that never ran has no log
            return []

    lines = gather(wanted, runtime.settings.logs, shop_lines)
    if not lines:
        raise OceanError(
            f"no lines with trace id {wanted} in nginx's access log or the shops' logs"
        )
    return lines


def format_line(line: TraceLine) -> str:
    return f"{line.source:<10} {line.line}"
