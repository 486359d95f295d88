"""The inbox's own metrics (GET /metrics), in a registry of its own so nothing but
these series is exposed. Prometheus scrapes them (job alert_inbox)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

# Every reason a delivery is refused, so each series exists (at 0) from the start and a
# rate() over it is defined before the first refusal.
REJECT_REASONS = ("auth_failed", "auth_required", "tls_required", "bad_payload")


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages = Counter(
            "ocean_inbox_messages",
            "Deliveries stored by the inbox, by receiver and kind (webhook, slack, email).",
            ["receiver", "kind"],
            registry=self.registry,
        )
        self.last_message = Gauge(
            "ocean_inbox_last_message_timestamp_seconds",
            "When the inbox last stored a delivery for the receiver (Unix time).",
            ["receiver"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "ocean_inbox_rejected",
            "Deliveries or sessions the inbox refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)

    def stored(self, receiver: str, kind: str, at: float | None = None) -> None:
        self.messages.labels(receiver, kind).inc()
        self.last_message.labels(receiver).set(at if at is not None else time.time())

    def reject(self, reason: str) -> None:
        self.rejected.labels(reason).inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)
