"""`invoke alerts` and `alerts.drill` on a whole stack (the session's), delivering to the
stack's own alert inbox (the alert-inbox service; skipped where the runtime has none,
i.e. before the inbox branch is merged)."""

from __future__ import annotations

import json
import time

import pytest

from ocean.runtime.local import LocalRuntime
from tests.helpers import cli


def _needs_inbox(stack: LocalRuntime) -> None:
    if not any(p.name == "alert-inbox" for p in stack.spec.programs()):
        pytest.skip("no alert-inbox service in this runtime (it comes with the inbox branch)")


@pytest.mark.integration
def test_every_route_delivers_within_group_wait_and_two_seconds(stack: LocalRuntime):
    _needs_inbox(stack)
    result = cli(stack, "alerts.drill", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {r["route"]: r for r in json.loads(result.stdout)["routes"]}
    assert set(rows) == {"deadman", "pager", "email", "chat"}
    for row in rows.values():
        assert row["delivered"] and row["via"] == "inbox", row
        assert row["latency_s"] <= row["budget_s"], row  # group_wait + 2 s (issue 20)
    assert rows["email"]["kind"] == "email" and rows["email"]["tls"] is True
    assert rows["chat"]["kind"] == "slack"


@pytest.mark.integration
def test_the_listing_shows_watchdog_routed_to_the_dead_mans_switch(stack: LocalRuntime):
    # Prometheus' first send may precede its discovery of Alertmanager: the next one
    # comes after its resend delay (1m).
    deadline = time.monotonic() + 90
    while True:
        result = cli(stack, "alerts", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        watchdog = next((r for r in report["alerts"] if r["name"] == "Watchdog"), None)
        if watchdog and watchdog["held_by_alertmanager"]:
            break
        assert time.monotonic() < deadline, report["alerts"]
        time.sleep(2)
    assert watchdog["state"] == "firing" and watchdog["receivers"] == ["deadman"]
    assert watchdog["routes"] == ["deadman"]
