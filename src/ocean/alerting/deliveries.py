"""Per receiver: the last delivery and the failures (the console's receivers panel),
without I/O (``ocean.procedures.alerts.deliveries`` reads the inbox and Alertmanager).

**Where a figure comes from** (``Receiver.source``):

- ``inbox``: a receiver whose every integration ends at the stack's alert inbox (drill.py
  ``delivers_locally``). Its messages (``GET /api/messages?since=``) give the last
  delivery (when, firing or resolved, which alerts, the channel) and the count, over
  what the watch has read: the ``LOOKBACK`` before it started, then everything since.
  A message is the receiver's when its inbox name is the last path segment of the
  receiver's webhook or Slack URL (``/webhook/watchdog`` is ``deadman``'s), else when it
  names the receiver itself (Alertmanager's webhook payload, the e-mail's
  X-Alertmanager-Receiver header).
- ``alertmanager``: a receiver that talks to the outside world (or an inbox that does not
  answer). Alertmanager 0.25 counts per integration only
  (``alertmanager_notification_requests_total`` minus ``…_failed_total``, since it
  started), so receivers that share an integration share the figure (``shared_with``);
  the last delivery is when the watch saw the successful count rise (never before it
  started).

**Failures** come from Alertmanager in both cases: ``alertmanager_notifications_failed_total``
(a notification that failed after every retry) and
``alertmanager_notification_requests_failed_total`` (each failed attempt), per
integration. A counter labelled by receiver too (``receiver_name``, later Alertmanagers)
is used per receiver instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ocean.alerting.drill import INTEGRATION, integrations, message_time

LOOKBACK = 24 * 3600.0  # seconds of inbox history read when a watch starts

REQUESTS = "alertmanager_notification_requests_total"
REQUESTS_FAILED = "alertmanager_notification_requests_failed_total"
NOTIFICATIONS_FAILED = "alertmanager_notifications_failed_total"
_SAMPLE = re.compile(
    r"^(alertmanager_notification(?:s|_requests)(?:_failed)?_total)\{([^}]*)\}\s+(\S+)"
)
_LABEL = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class Receiver:
    """One receiver's row: what it delivered last, how many, how many failed."""

    receiver: str
    integrations: tuple[str, ...]
    source: str  # "inbox" or "alertmanager"
    last_at: float | None  # epoch seconds
    last_what: str  # "firing Watchdog (webhook /webhook/watchdog)" …
    delivered: int | None  # None: not known (the source did not answer)
    failed: int | None  # notifications that failed after every retry
    failed_attempts: int | None  # attempts that failed (retries count each)
    shared_with: tuple[str, ...] = ()  # receivers whose counters are the same figures
    note: str = ""  # why a figure is missing or where it comes from instead

    def as_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "integrations": list(self.integrations),
            "source": self.source,
            "last_at": self.last_at,
            "last_what": self.last_what,
            "delivered": self.delivered,
            "failed": self.failed,
            "failed_attempts": self.failed_attempts,
            "shared_with": list(self.shared_with),
            "note": self.note,
        }


def counters(metrics_text: str) -> dict[tuple[str, str, str], float]:
    """{(metric, integration, receiver_name or ""): value} of Alertmanager's
    notification counters (0.25 has no receiver label: "")."""
    found: dict[tuple[str, str, str], float] = {}
    for line in metrics_text.splitlines():
        hit = _SAMPLE.match(line)
        if not hit:
            continue
        labels = dict(_LABEL.findall(hit[2]))
        if "integration" not in labels:
            continue
        key = (hit[1], labels["integration"], labels.get("receiver_name", ""))
        found[key] = found.get(key, 0.0) + float(hit[3])
    return found


def inbox_names(receiver: str, config: Mapping[str, Any]) -> set[str]:
    """The names the inbox files ``receiver``'s messages under: the last path segment of
    each webhook or Slack URL it posts to (a ``*_file`` URL is not read: the receiver's
    own name covers those)."""
    names = set()
    for key, entries in config.items():
        if not INTEGRATION.match(str(key)):
            continue
        for entry in entries or []:
            url = str(entry.get("url") or entry.get("api_url") or "")
            segment = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
            if segment:
                names.add(segment)
    return names


def owner(message: Mapping[str, Any], by_inbox_name: Mapping[str, str], receivers: set[str]) -> str:
    """Which receiver a message of the inbox belongs to ("" when none)."""
    name = str(message.get("receiver") or "")
    if name in by_inbox_name:
        return by_inbox_name[name]
    if name in receivers:
        return name
    channel = str(message.get("channel") or "").strip("/")
    return by_inbox_name.get(channel, channel if channel in receivers else "")


def describe(message: Mapping[str, Any]) -> str:
    """``firing Watchdog (webhook /webhook/watchdog)``: what a message was."""
    names = ", ".join(str(n) for n in message.get("alertnames") or []) or "?"
    status = str(message.get("status") or "?")
    kind = str(message.get("kind") or "")
    where = str(message.get("channel") or message.get("to") or "")
    how = " ".join(x for x in (kind, where) if x)
    tls = " over TLS" if message.get("tls") is True else ""
    return f"{status} {names}" + (f" ({how}{tls})" if how else "")


@dataclass
class _Seen:
    count: int = 0
    last: Mapping[str, Any] | None = None
    last_at: float | None = None


@dataclass
class DeliveryWatch:
    """What a console has seen so far: the inbox's messages read (incrementally: each
    poll asks only for what came since the last one) and Alertmanager's counters at the
    previous poll, to tell when a counted delivery happened."""

    started: float = field(default_factory=time.time)
    since: float | None = None  # next `since` to ask the inbox for
    seen: dict[str, _Seen] = field(default_factory=dict)
    previous: dict[tuple[str, str, str], float] | None = None
    rose_at: dict[tuple[str, str], float] = field(default_factory=dict)  # (integration, recv)

    def inbox_since(self) -> float:
        return self.started - LOOKBACK if self.since is None else self.since

    def add_messages(
        self, messages: list[Mapping[str, Any]], by_inbox_name: Mapping[str, str], names: set[str]
    ) -> None:
        """Count what the inbox got; ask next time from the newest message on (a message
        at that same instant is skipped by its time, not counted twice)."""
        newest = self.since
        for message in messages:
            at = message_time(message, 0.0)
            if self.since is not None and at <= self.since:
                continue
            newest = at if newest is None else max(newest, at)
            receiver = owner(message, by_inbox_name, names)
            if not receiver:
                continue
            seen = self.seen.setdefault(receiver, _Seen())
            seen.count += 1
            if seen.last_at is None or at >= seen.last_at:
                seen.last, seen.last_at = message, at
        self.since = newest if newest is not None else self.inbox_since()

    def add_counters(self, now_counts: dict[tuple[str, str, str], float], now: float) -> None:
        """Note when each integration's successful count rose since the previous poll."""
        if self.previous is not None:
            for integration, recv in {(k[1], k[2]) for k in now_counts}:
                ok_now = _ok(now_counts, integration, recv)
                if ok_now > _ok(self.previous, integration, recv):
                    self.rose_at[(integration, recv)] = now
        self.previous = dict(now_counts)


def _ok(counts: Mapping[tuple[str, str, str], float], integration: str, recv: str) -> float:
    return counts.get((REQUESTS, integration, recv), 0.0) - counts.get(
        (REQUESTS_FAILED, integration, recv), 0.0
    )


def summarise(
    receivers: Mapping[str, Mapping[str, Any]],
    local: set[str],
    watch: DeliveryWatch,
    counts: Mapping[tuple[str, str, str], float] | None,
    inbox_problem: str = "",
    alertmanager_problem: str = "",
) -> list[Receiver]:
    """One row per receiver (sorted by name), from what ``watch`` has read and
    Alertmanager's ``counts`` (None: Alertmanager did not answer)."""
    uses = {name: tuple(integrations(config)) for name, config in receivers.items()}
    labelled = counts is not None and any(k[2] for k in counts)
    rows = []
    for name in sorted(receivers):
        used = uses[name]
        recv = name if labelled else ""
        shared = (
            ()
            if labelled
            else tuple(sorted(o for o in receivers if o != name and set(uses[o]) & set(used)))
        )
        failed = attempts = None
        if counts is not None:
            failed = int(sum(counts.get((NOTIFICATIONS_FAILED, i, recv), 0.0) for i in used))
            attempts = int(sum(counts.get((REQUESTS_FAILED, i, recv), 0.0) for i in used))
        if name in local and not inbox_problem:
            seen = watch.seen.get(name, _Seen())
            rows.append(
                Receiver(
                    name,
                    used,
                    "inbox",
                    seen.last_at,
                    describe(seen.last) if seen.last else "",
                    seen.count,
                    failed,
                    attempts,
                    shared,
                    "" if seen.last else "nothing in the inbox",
                )
            )
            continue
        note = f"inbox: {inbox_problem}; " if name in local else ""
        delivered = last_at = None
        if counts is not None:
            delivered = int(sum(_ok(counts, i, recv) for i in used))
            times = [watch.rose_at[(i, recv)] for i in used if (i, recv) in watch.rose_at]
            last_at = max(times) if times else None
            if last_at is None:
                note += "no delivery seen since the console started"
        else:
            note += alertmanager_problem or "Alertmanager did not answer"
        what = f"{', '.join(used)} count rose" if last_at else ""
        rows.append(
            Receiver(
                name, used, "alertmanager", last_at, what, delivered, failed, attempts, shared, note
            )
        )
    return rows
