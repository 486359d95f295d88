"""`alerts silence ALERT --for 2h --reason TEXT` and `alerts unsilence ID`: the input is
checked in full before anything is sent, so a bad request leaves nothing half-silenced.

An alert to silence must be one an alerting rule defines (monitoring/rules; a typo
would silence nothing, and say so only when the page comes): a close name is
suggested, as the freeze policy does. The duration must be positive; the reason must
say something (it is the silence's comment, shown to whoever gets paged next).
"""

from __future__ import annotations

import difflib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ocean.durations import parse_duration
from ocean.errors import OceanError


@dataclass(frozen=True)
class SilenceRequest:
    alert: str
    seconds: float
    reason: str

    def body(self, created_by: str, now: float | None = None) -> dict[str, Any]:
        """Alertmanager's v2 silence: ``alertname="<alert>"``, from now for ``seconds``."""
        start = time.time() if now is None else now
        return {
            "matchers": [
                {"name": "alertname", "value": self.alert, "isRegex": False, "isEqual": True}
            ],
            "startsAt": rfc3339(start),
            "endsAt": rfc3339(start + self.seconds),
            "createdBy": created_by,
            "comment": self.reason,
        }


def rfc3339(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def check(
    alert: str, duration: str, reason: str, rules: Mapping[str, Mapping[str, str]]
) -> SilenceRequest:
    """The request, or a one-line OceanError naming what is wrong with it."""
    name = alert.strip()
    if not name:
        raise OceanError("name the alert to silence, e.g. `alerts.silence TargetDown`")
    if name not in rules:
        close = difflib.get_close_matches(name, list(rules), n=3)
        hint = f" (did you mean {' or '.join(close)}?)" if close else " (see monitoring/rules)"
        raise OceanError(f"no alerting rule defines {name!r}{hint}: nothing silenced")
    seconds = parse_duration(duration, "for") if str(duration).strip() else None
    if seconds is None or seconds <= 0:
        raise OceanError(f"--for {duration!r}: a silence must last a positive time, e.g. 2h")
    text = " ".join(reason.split())
    if not text:
        raise OceanError("--reason is required: say why (it is shown with the silence)")
    return SilenceRequest(name, seconds, text)


def check_id(silence_id: str) -> str:
    """A silence id as Alertmanager makes them (a UUID), checked before anything is
    asked of the stack."""
    text = silence_id.strip()
    if not text:
        raise OceanError("name the silence to end (its id, from `alerts`)")
    try:
        uuid.UUID(text)
    except ValueError:
        raise OceanError(
            f"{text!r} is not a silence id (a UUID such as 0b6c5b1e-…, listed by `alerts`)"
        ) from None
    return text
