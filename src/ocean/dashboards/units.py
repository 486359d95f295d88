"""Grafana's units and thresholds for the values the console and the snapshots print.

The subset the stack's dashboards use (short, none, percent, percentunit, s, ms,
bytes, Bps, reqps, ops, dateTimeAsIso), with Grafana's spelling of each; an unknown
unit prints the number with the unit after it, as Grafana's "custom" unit does.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ocean.dashboards.model import Threshold

_SI = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))
_IEC = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def _digits(value: float, decimals: int | None) -> str:
    """Grafana's auto decimals, roughly: three significant digits, no trailing zeros."""
    if decimals is not None:
        return f"{value:.{decimals}f}"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    places = max(0, 2 - magnitude)
    text = f"{value:.{min(places, 6)}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scaled(value: float, scale: tuple[tuple[float, str], ...], decimals: int | None) -> str:
    for factor, suffix in scale:
        if abs(value) >= factor:
            return f"{_digits(value / factor, decimals)} {suffix}"
    return ""


def _short(value: float, decimals: int | None) -> str:
    return _scaled(value, _SI, decimals) or _digits(value, decimals)


def _seconds(value: float, decimals: int | None) -> str:
    size = abs(value)
    if size == 0:
        return "0 s"
    if size < 1e-3:
        return f"{_digits(value * 1e6, decimals)} µs"
    if size < 1:
        return f"{_digits(value * 1e3, decimals)} ms"
    if size < 60:
        return f"{_digits(value, decimals)} s"
    if size < 3600:
        return f"{_digits(value / 60, decimals)} min"
    if size < 86400:
        return f"{_digits(value / 3600, decimals)} hour"
    return f"{_digits(value / 86400, decimals)} day"


def _bytes(value: float, decimals: int | None) -> str:
    return _scaled(value, _IEC, decimals) or f"{_digits(value, decimals)} B"


def format_value(value: float | None, unit: str = "", decimals: int | None = None) -> str:
    """``value`` in Grafana's ``unit``: 0.9991 percentunit → "99.9%"."""
    if value is None:
        return "No data"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    match unit:
        case "percentunit":
            return f"{_digits(value * 100, decimals)}%"
        case "percent":
            return f"{_digits(value, decimals)}%"
        case "s":
            return _seconds(value, decimals)
        case "ms":
            return _seconds(value / 1000, decimals)
        case "bytes" | "decbytes":
            return _bytes(value, decimals)
        case "Bps" | "binBps":
            return f"{_bytes(value, decimals)}/s"
        case "reqps":
            return f"{_short(value, decimals)} req/s"
        case "ops":
            return f"{_short(value, decimals)} ops/s"
        case "dateTimeAsIso":
            return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        case "none" | "":
            return _digits(value, decimals)
        case "short":
            return _short(value, decimals)
        case _:
            return f"{_short(value, decimals)} {unit}"


def threshold_color(value: float | None, thresholds: tuple[Threshold, ...]) -> str:
    """The color of the highest step ``value`` reaches ("" with no thresholds or value)."""
    if value is None or not thresholds or math.isnan(value):
        return ""
    color = ""
    for step in thresholds:
        if step.value is None or value >= step.value:
            color = step.color
    return color


# Grafana's named colors as the terminal and matplotlib draw them.
COLORS = {
    "green": "#73bf69",
    "red": "#f2495c",
    "orange": "#ff9830",
    "yellow": "#fade2a",
    "blue": "#5794f2",
    "purple": "#b877d9",
    "dark-red": "#c4162a",
    "dark-green": "#37872d",
    "semi-dark-red": "#e02f44",
    "semi-dark-orange": "#fa6400",
    "text": "#cccccc",
}


def hex_color(name: str) -> str:
    """A Grafana color name (or #rrggbb) as #rrggbb."""
    if name.startswith("#"):
        return name
    return COLORS.get(name, COLORS.get(name.split("-")[-1], "#cccccc"))
