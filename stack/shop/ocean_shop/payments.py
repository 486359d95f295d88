"""A simulated payment provider: configurable latency and failure rate.

Stands in for a card processor, which cannot be reached from here. Like a
real one it takes an idempotency key and returns the first outcome again for
a repeated key, so a retried charge can never be taken twice.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import OrderedDict
from dataclasses import dataclass

# Payment methods that always fail with their reason, for tests and demos
# (the way card processors publish test card numbers).
DECLINING_METHODS = {
    "card_declined": "card_declined",
    "insufficient_funds": "insufficient_funds",
    "provider_error": "provider_error",
}
PAYMENT_METHODS = ("card", *DECLINING_METHODS)
RANDOM_FAILURE_REASONS = ("card_declined", "insufficient_funds", "provider_error")
# Outcomes remembered for repeated keys; a real provider keeps them ~24 h.
REMEMBERED = 10_000


@dataclass(frozen=True, slots=True)
class Charge:
    ok: bool
    reference: str | None = None
    reason: str | None = None


class SimulatedProvider:
    def __init__(self, *, latency_ms: int, failure_rate: float, rng: random.Random | None = None):
        self.latency = latency_ms / 1000
        self.failure_rate = failure_rate
        self._rng = rng or random.Random()  # nosec B311  # the fake processor's failure draw
        self._outcomes: OrderedDict[str, Charge] = OrderedDict()
        self.charges_taken = 0

    async def charge(self, *, amount_cents: int, method: str, idempotency_key: str) -> Charge:
        known = self._outcomes.get(idempotency_key)
        if known is not None:
            return known
        if self.latency:
            await asyncio.sleep(self.latency)
        if method in DECLINING_METHODS:
            outcome = Charge(ok=False, reason=DECLINING_METHODS[method])
        elif self._rng.random() < self.failure_rate:
            outcome = Charge(ok=False, reason=self._rng.choice(RANDOM_FAILURE_REASONS))
        else:
            self.charges_taken += 1
            outcome = Charge(ok=True, reference=f"sim_{secrets.token_hex(8)}")
        self._outcomes[idempotency_key] = outcome
        if len(self._outcomes) > REMEMBERED:
            self._outcomes.popitem(last=False)
        return outcome
