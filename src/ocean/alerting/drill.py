"""`alerts drill`: what a drill is made of, without I/O (the procedure in
ocean/procedures/alerts.py posts, waits and resolves).

**The plan**: one synthetic alert per receiver of the routing tree, named
``OceanAlertDrill`` and carrying a unique ``drill_id``, with labels the routing tree
(routes.py) sends to that receiver and, where possible, to it alone. They are found
among: the equality matchers on the way down to a route of that receiver (a route that
pins ``alertname``, like the dead-man's ``alertname="Watchdog"``, gets that name: no
other name reaches it), then the labels of each alerting rule. Every grouping label
the routes leave free gets the drill id, so each drill alert opens its own aggregation
group: it is sent after ``group_wait``, never held back by an older group's
``group_interval``, and no inhibit rule's ``equal`` pairs it with a real alert.

**Where delivery is seen**: a receiver whose every integration points at the stack's
alert inbox (its webhook URL or Slack URL below the ``alert-webhook`` port's URL, an
SMTP smarthost on a port of the stack's port plan) is checked in the inbox's
``GET /api/messages?since=<epoch>``: a message that mentions the alert's drill id. A
receiver that talks to the outside world (real SMTP, Slack, a pager) cannot be read
back: Alertmanager's own counters must show one more successful notification for each
integration it uses (``alertmanager_notification_requests_total`` minus
``..._requests_failed_total{integration}``, per attempt; ``alertmanager_notifications_total``
/ ``..._failed_total`` where those are missing).

Drill alerts go to Alertmanager only: Prometheus never holds them, so the deploy freeze
(ocean/freeze.py reads Prometheus' alerts) cannot see them; it also ignores any
alert carrying ``drill_id``.
"""

from __future__ import annotations

import difflib
import json
import re
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ocean.alerting.listing import DRILL_LABEL, epoch
from ocean.alerting.routes import Route, Routing
from ocean.errors import OceanError

DRILL_ALERT = "OceanAlertDrill"
RUNBOOK = "docs/runbooks/AlertmanagerNotificationsFailing.md"
# `<kind>_configs` of a receiver → the `integration` label of Alertmanager's counters.
INTEGRATION = re.compile(r"^(\w+)_configs$")
WAIT_MARGIN = 10.0  # seconds beyond the longest group_wait before a route counts as silent
LATE_MARGIN = 2.0  # delivery later than group_wait + this is reported as late


@dataclass(frozen=True)
class DrillAlert:
    receiver: str
    routes: tuple[str, ...]  # names of the routes that take it (routes.py)
    labels: dict[str, str]
    expected: tuple[str, ...]  # every receiver it reaches (ideally only `receiver`)
    group_wait: float

    @property
    def drill_id(self) -> str:
        return self.labels[DRILL_LABEL]

    def payload(self, ends_at: str | None = None) -> dict[str, Any]:
        """Alertmanager's v2 postable alert; ``ends_at`` resolves it."""
        body: dict[str, Any] = {
            "labels": self.labels,
            "annotations": {
                "summary": f"Alert drill {self.drill_id}: proves the {self.receiver} "
                "route delivers (it resolves by itself)",
                "description": "Injected by `invoke alerts.drill`; nothing is wrong.",
                "runbook_url": RUNBOOK,
            },
            "generatorURL": "ocean://alerts.drill",
        }
        if ends_at:
            body["endsAt"] = ends_at
        return body


def new_run_id() -> str:
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def plan(
    routing: Routing,
    rule_labels: Mapping[str, Mapping[str, str]],
    run_id: str,
    only: str | None = None,
) -> list[DrillAlert]:
    """One drill alert per routed receiver (or ``only`` that one); OceanError for a
    receiver no label set reaches or a name the routing tree does not have."""
    receivers = routing.routed_receivers()
    # A route that pins an alert name answers to it too: `--route watchdog` is deadman's.
    pinned = {
        x.value.lower(): route.receiver
        for route in routing.root.walk()
        for x in route.matchers
        if x.name == "alertname" and x.op == "="
    }
    if only and only not in receivers:
        only = pinned.get(only.lower(), only)
    if only:
        if only not in receivers:
            close = difflib.get_close_matches(only, receivers, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise OceanError(
                f"--route {only!r}: no route delivers to it ({hint}routes: {', '.join(receivers)})"
            )
        receivers = [only]
    return [_drill_alert(routing, rule_labels, receiver, run_id) for receiver in receivers]


def _drill_alert(
    routing: Routing, rule_labels: Mapping[str, Mapping[str, str]], receiver: str, run_id: str
) -> DrillAlert:
    drill_id = f"{run_id}-{receiver}"
    base = {"alertname": DRILL_ALERT, "severity": "info", DRILL_LABEL: drill_id}
    candidates = [{**base, **_pinned(way)} for way in _ways_to(routing.root, receiver)]
    for name, labels in sorted(rule_labels.items()):
        candidates.append({**base, **labels, "alertname": DRILL_ALERT})
        candidates.append({**base, **labels, "alertname": name})
    reaching = [c for c in candidates if receiver in routing.receivers_for(c)]
    if not reaching:
        raise OceanError(f"no label set the drill can make reaches receiver {receiver!r}")
    labels = next((c for c in reaching if routing.receivers_for(c) == [receiver]), reaching[0])
    labels = _own_groups(routing, labels, drill_id)
    taken = routing.routes_for(labels)
    return DrillAlert(
        receiver=receiver,
        routes=tuple(r.name for r in taken),
        labels=labels,
        expected=tuple(routing.receivers_for(labels)),
        group_wait=max(r.group_wait for r in taken),
    )


def _ways_to(route: Route, receiver: str, above: tuple[Route, ...] = ()) -> Iterator[list]:
    """The chains of routes from the root down to each route that names ``receiver``."""
    way = (*above, route)
    if route.receiver == receiver:
        yield list(way)
    for child in route.routes:
        yield from _ways_to(child, receiver, way)


def _pinned(way: list[Route]) -> dict[str, str]:
    """Labels that satisfy the ``=`` matchers (and literal ``=~"a|b"`` ones) on a way."""
    labels: dict[str, str] = {}
    for route in way:
        for matcher in route.matchers:
            if matcher.op == "=":
                labels[matcher.name] = matcher.value
            elif matcher.op == "=~":
                first = matcher.value.split("|")[0]
                if re.escape(first) == first and matcher.matches({matcher.name: first}):
                    labels[matcher.name] = first
    return labels


def _own_groups(routing: Routing, labels: dict[str, str], drill_id: str) -> dict[str, str]:
    """``labels`` with one free grouping label set to the drill id (preferably one no
    route matches on, so it means nothing but "this drill"), unless that would change
    where the alert goes."""
    wanted = routing.receivers_for(labels)
    grouped = [g for r in routing.routes_for(labels) for g in r.group_by if g != "..."]
    free = [g for g in dict.fromkeys(grouped) if g not in labels]
    routed_on = {x.name for r in routing.root.walk() for x in r.matchers}
    for name in sorted(free, key=lambda g: g in routed_on):
        extended = {**labels, name: drill_id}
        if routing.receivers_for(extended) == wanted:
            return extended
    return labels


# -- where delivery is seen ------------------------------------------------------------


def integrations(receiver: Mapping[str, Any]) -> list[str]:
    """The integrations a receiver's config uses: webhook, slack, email …"""
    return sorted({found[1] for key in receiver if (found := INTEGRATION.match(str(key)))})


def delivers_locally(
    receiver: Mapping[str, Any],
    config: Mapping[str, Any],
    inbox_url: str,
    local_ports: set[int],
    host: str,
    read_file: Any,
) -> bool:
    """Whether every integration of ``receiver`` ends at the stack's own inbox (then
    the inbox shows what arrived); ``read_file`` reads a ``*_file`` setting."""
    inbox = inbox_url.rstrip("/")
    targets: list[bool] = []
    for key, entries in receiver.items():
        found = INTEGRATION.match(str(key))
        if not found:
            continue
        for entry in entries or []:
            kind = found[1]
            if kind == "webhook":
                targets.append(str(entry.get("url", "")).startswith(inbox))
            elif kind == "slack":
                url = entry.get("api_url") or _read(read_file, entry.get("api_url_file"))
                targets.append(str(url).strip().startswith(inbox))
            elif kind == "email":
                smarthost = entry.get("smarthost") or (config.get("global") or {}).get(
                    "smtp_smarthost", ""
                )
                targets.append(_is_local_smarthost(str(smarthost), host, local_ports))
            else:
                targets.append(False)
    return bool(targets) and all(targets)


def _read(read_file: Any, path: Any) -> str:
    if not path:
        return ""
    try:
        return read_file(str(path))
    except OSError:
        return ""


def _is_local_smarthost(smarthost: str, host: str, ports: set[int]) -> bool:
    parts = urlsplit(f"//{smarthost}")
    return parts.hostname in {host, "127.0.0.1", "localhost"} and parts.port in ports


@dataclass
class Delivery:
    """What became of one drill alert at one receiver."""

    alert: DrillAlert
    receiver: str
    via: str  # inbox or counters
    posted_at: float
    received_at: float | None = None
    kind: str = ""  # the inbox's message kind: webhook, slack, email
    channel: str = ""
    tls: bool | None = None
    problem: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered(self) -> bool:
        return self.received_at is not None and not self.problem

    @property
    def latency(self) -> float | None:
        return None if self.received_at is None else max(0.0, self.received_at - self.posted_at)

    @property
    def budget(self) -> float:
        return self.alert.group_wait + LATE_MARGIN

    def as_dict(self) -> dict[str, Any]:
        latency = self.latency
        return {
            "route": self.alert.receiver,
            "receiver": self.receiver,
            "routes": list(self.alert.routes),
            "drill_id": self.alert.drill_id,
            "labels": self.alert.labels,
            "via": self.via,
            "delivered": self.delivered,
            "latency_s": None if latency is None else round(latency, 3),
            "budget_s": self.budget,
            "late": latency is not None and latency > self.budget,
            "kind": self.kind,
            "channel": self.channel,
            "tls": self.tls,
            "problem": self.problem,
            **self.extra,
        }


def message_time(message: Mapping[str, Any], fallback: float) -> float:
    """The inbox's ``received_at``: epoch seconds or RFC 3339."""
    value = message.get("received_at")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return epoch(value) or fallback
    return fallback


def match_inbox(
    deliveries: list[Delivery], messages: list[Mapping[str, Any]], receivers: set[str]
) -> None:
    """Mark each pending inbox delivery whose drill id a firing message mentions. A
    message naming another configured receiver is a misroute, not a delivery."""
    now = time.time()
    for delivery in deliveries:
        if delivery.via != "inbox" or delivery.received_at is not None:
            continue
        for message in messages:
            if message.get("status") == "resolved":
                continue
            if delivery.alert.drill_id not in json.dumps(message, default=str):
                continue
            named = str(message.get("receiver") or "")
            if named and named != delivery.receiver and named in receivers:
                continue  # another receiver's copy (the alert reaches several)
            delivery.received_at = message_time(message, now)
            delivery.kind = str(message.get("kind") or "")
            delivery.channel = str(message.get("channel") or message.get("to") or "")
            delivery.tls = message.get("tls") if isinstance(message.get("tls"), bool) else None
            break


# Per attempt (0.25 has them): a notification that fails and is retried counts each try.
REQUESTS = (
    "alertmanager_notification_requests_total",
    "alertmanager_notification_requests_failed_total",
)
# Per notification: counted when it starts, failed only once every retry gave up
# (≈ 10 s later), so alone they cannot tell a failing receiver early.
NOTIFICATIONS = ("alertmanager_notifications_total", "alertmanager_notifications_failed_total")


def counters(metrics_text: str) -> dict[tuple[str, str], float]:
    """{(metric, integration): value} of Alertmanager's notification counters."""
    names = r"alertmanager_notification(?:s|_requests)(?:_failed)?_total"
    return counter_totals(metrics_text, names, "integration")


def counter_totals(metrics_text: str, names: str, label: str) -> dict[tuple[str, str], float]:
    """{(metric, value of ``label``): sum} of the samples whose name matches the regex
    ``names``, from a Prometheus text exposition."""
    found: dict[tuple[str, str], float] = {}
    pattern = re.compile(rf'^({names})\{{[^}}]*{label}="([^"]+)"[^}}]*\}}\s+(\S+)')
    for line in metrics_text.splitlines():
        if hit := pattern.match(line):
            key = (hit[1], hit[2])
            found[key] = found.get(key, 0.0) + float(hit[3])
    return found


def match_counters(
    deliveries: list[Delivery],
    before: Mapping[tuple[str, str], float],
    now_counts: Mapping[tuple[str, str], float],
    uses: Mapping[str, list[str]],
    local: Mapping[str, int],
) -> None:
    """Mark the counter-checked deliveries: every integration of the receiver made one
    more successful notification (attempts minus failures, minus ``local``: those the
    stack's inbox received meanwhile, by integration) per drill alert that uses it.
    Alertmanager counts an attempt before its failure, so a success must be seen at two
    polls in a row. A failure is noted, not final: Alertmanager retries.

    Alertmanager 0.25 counts per integration, not per receiver: a real alert notified
    through the same integration meanwhile counts too (rare during a drill)."""
    pending = [d for d in deliveries if d.via == "counters" and d.received_at is None]
    wanted: dict[str, int] = {}
    for delivery in pending:
        for integration in uses.get(delivery.receiver, []):
            wanted[integration] = wanted.get(integration, 0) + 1

    def rose(metric: str, integration: str) -> float:
        key = (metric, integration)
        return now_counts.get(key, 0.0) - before.get(key, 0.0)

    total, failed_total = (
        REQUESTS if any(k[0] == REQUESTS[0] for k in now_counts) else NOTIFICATIONS
    )
    now = time.time()
    for delivery in pending:
        names = uses.get(delivery.receiver, [])
        sent = {i: rose(total, i) - rose(failed_total, i) - local.get(i, 0) for i in names}
        if names and all(sent[i] >= wanted[i] for i in names):
            if "seen_at" in delivery.extra:
                delivery.received_at = delivery.extra.pop("seen_at")
                delivery.kind = ", ".join(names)
                delivery.problem = ""
            else:
                delivery.extra["seen_at"] = now
            continue
        delivery.extra.pop("seen_at", None)
        failed = [i for i in names if rose(failed_total, i) > 0]
        if failed:
            delivery.problem = f"{failed_total} rose for {', '.join(failed)}"
