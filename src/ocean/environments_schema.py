"""The schema of an environment's definition (stack/environments/*.yaml): which keys an
overlay may name and what their values must be. Strict on purpose: an unknown key or a
wrong type is a problem naming the key, never a silently ignored setting.

A checker returns "" when the value is fine, else what it should be ("a duration like
30s, 5m or 1h"), which ``check_shape`` turns into the message.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from ocean.durations import parse_duration
from ocean.errors import OceanError
from ocean.ports import EPHEMERAL_PORTS, HIGHEST_OFFSET

RUNTIMES = ("local", "compose")
TLS_SOURCES = ("generated", "file")
_SIZE = re.compile(r"^\d+(?:[kKmMgG][bB]?)?$")  # 32MB, 128mb, 1gb, 4096

Checker = Callable[[Any], str]  # "" when fine, else what is wrong


def _duration(value: Any) -> str:
    if not isinstance(value, str):
        return "a duration like 30s, 5m or 1h"
    try:
        parse_duration(value)
    except OceanError:
        return "a duration like 30s, 5m or 1h"
    return ""


def _retention(value: Any) -> str:  # Prometheus' own units
    ok = isinstance(value, str) and re.fullmatch(r"\d+(ms|s|m|h|d|w|y)", value)
    return "" if ok else "a Prometheus duration like 15d or 4w"


def _size(value: Any) -> str:
    ok = isinstance(value, str) and _SIZE.fullmatch(value)
    return "" if ok else "a size like 32MB or 1gb"


def _count(lowest: int, highest: int) -> Checker:
    def check(value: Any) -> str:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return "" if ok and lowest <= value <= highest else f"a whole number {lowest}..{highest}"

    return check


def _choice(*allowed: str) -> Checker:
    return lambda value: "" if value in allowed else "one of " + ", ".join(allowed)


def _text(value: Any) -> str:
    return "" if isinstance(value, str) else "text"


def _flag(value: Any) -> str:
    return "" if isinstance(value, bool) else "true or false"


def _ip(value: Any) -> str:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return "an IP address"
    return ""


def _list_of(pattern: str, what: str) -> Checker:
    def check(value: Any) -> str:
        ok = isinstance(value, list) and all(
            isinstance(item, str) and re.fullmatch(pattern, item) for item in value
        )
        return "" if ok else f"a list of {what}, like [a, b] or []"

    return check


_ALERT_NAMES = _list_of(r"[A-Za-z_][A-Za-z0-9_]*", "alert names")
_LABEL_VALUES = _list_of(r"\S+", "label values")


def _url_or_empty(value: Any) -> str:
    ok = isinstance(value, str) and (value == "" or re.match(r"^https?://[^\s]+$", value))
    return "" if ok else 'an http(s) URL or ""'


def _percent_or_null(value: Any) -> str:
    if value is None:
        return ""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 100
    return "" if ok else "a percentage between 0 and 100 (exclusive), or null"


def _ms_or_null(value: Any) -> str:
    if value is None:
        return ""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    return "" if ok else "milliseconds above 0, or null"


# The highest base keeps the whole port plan (+54) below 65536.
SCHEMA: dict[str, Any] = {
    "runtime": _choice(*RUNTIMES),
    "state_dir": _text,
    "host": _ip,
    "port_base": _count(1024, 65481),
    "resources": {
        "postgres_shared_buffers": _size,
        "redis_maxmemory": _size,
        "nginx_workers": _count(1, 64),
    },
    "prometheus": {"retention": _retention},
    "alerting": {
        "webhook_url": _url_or_empty,
        "slack_channel": _text,
        "email_from": _text,
        "email_to": _text,
        "group_wait": _duration,
        "group_interval": _duration,
        "repeat_interval": _duration,
    },
    "tls": {"source": _choice(*TLS_SOURCES), "cert_file": _text, "key_file": _text},
    "backup": {
        "dir": _text,
        "retention": {
            "keep_last": _count(0, 1000),
            "keep_daily": _count(0, 1000),
            "keep_weekly": _count(0, 1000),
            "keep_monthly": _count(0, 1000),
        },
    },
    "deploy": {
        "analysis_window": _duration,
        "scale_down_delay": _duration,
        "ready_timeout": _duration,
        "require_staging_pass": _flag,
        "on_inconclusive": _choice("rollback", "promote"),
        # The deploy freeze (ocean.freeze); names and labels are checked
        # against monitoring/rules by ocean.environments.inspect.
        "freeze": {
            "teams": _LABEL_VALUES,
            "severities": _LABEL_VALUES,
            "alerts": _ALERT_NAMES,
            "ignore": _ALERT_NAMES,
        },
    },
    "slo": {"availability_objective": _percent_or_null, "latency_threshold_ms": _ms_or_null},
    "guard_rails": {"confirm_destructive": _flag},
}


def check_shape(data: Any, schema: dict[str, Any] = SCHEMA, prefix: str = "") -> Iterator[tuple]:
    """(dotted key, message) for every unknown key or wrong value in ``data``."""
    if not isinstance(data, dict):
        yield prefix.rstrip("."), "must be a mapping of keys"
        return
    for key, value in data.items():
        path = f"{prefix}{key}"
        spec = schema.get(key) if isinstance(key, str) else None
        if spec is None:
            known = ", ".join(sorted(schema))
            yield path, f"unknown key (known here: {known})"
        elif isinstance(spec, dict):
            yield from check_shape(value, spec, f"{path}.")
        elif message := spec(value):
            yield path, f"{value!r} is not {message}"


def consistency(data: dict) -> Iterator[tuple[str, str]]:
    """Rules across keys, on the merged result."""
    base = data.get("port_base")
    if isinstance(base, int) and not isinstance(base, bool):
        plan = range(base, base + HIGHEST_OFFSET + 1)
        if plan.start < EPHEMERAL_PORTS.stop and EPHEMERAL_PORTS.start < plan.stop:
            yield (
                "port_base",
                (
                    f"{base}..{plan.stop - 1} overlaps the ephemeral ports "
                    f"{EPHEMERAL_PORTS.start}..{EPHEMERAL_PORTS.stop - 1} (outgoing connections "
                    f"take them): choose a base below {EPHEMERAL_PORTS.start - HIGHEST_OFFSET}"
                ),
            )
    tls = data.get("tls", {})
    if tls.get("source") == "file":
        for key in ("cert_file", "key_file"):
            if not tls.get(key):
                yield f"tls.{key}", "tls.source is file: name the certificate's files"
