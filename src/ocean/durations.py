"""Durations as users type them on the command line (`--analysis-window 60s`,
`--duration 1m30s`, `--refresh 500ms`, `45`): one parser for every task and the console.

(monitoring/slo.yaml's Prometheus-style durations have their own, ``ocean.slo.seconds``.)
"""

from __future__ import annotations

import re

from ocean.errors import OceanError

_PLAIN = re.compile(r"\d+(?:\.\d+)?")  # seconds
_ONE_UNIT = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h)")
_COMPOUND = re.compile(r"(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?")
_SCALE = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str | float, what: str = "duration") -> float:
    """'45', '1.5', '500ms', '60s', '2m', '1m30s', '1h' → seconds; OceanError naming
    ``what`` (the option) otherwise."""
    raw = str(text).strip()
    shown = raw if len(raw) <= 40 else raw[:37] + "..."  # a pasted novel stays one short line
    if _PLAIN.fullmatch(raw):
        return float(raw)
    if match := _ONE_UNIT.fullmatch(raw):
        return float(match[1]) * _SCALE[match[2]]
    match = _COMPOUND.fullmatch(raw)
    if not raw or not match or not any(match.groups()):
        raise OceanError(f"--{what} {shown!r} is not a duration like 30s, 2m, 1m30s or 45")
    hours, minutes, secs = match.groups()
    try:
        return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(secs or 0)
    except (ValueError, OverflowError):  # thousands of digits: int() refuses, float() overflows
        raise OceanError(f"--{what} {shown!r} is far too long a duration") from None


def span(seconds: float | None) -> str:
    """1h30m, 4m05s, 12s: an age or a time left, to the second, as the front ends show
    them (`invoke alerts`, the console); "-" when unknown."""
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def age(seconds: float | None) -> str:
    """2d, 5h, 12m, 40s: how old something is, in its largest whole unit (rounded), as
    `invoke backups` and the console's Backups screen show a set's age; "-" when unknown."""
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
