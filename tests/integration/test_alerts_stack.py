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
    if not any(p.name == "alert-inbox" for p in stack._programs()):
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


@pytest.mark.integration
def test_wrong_smtp_credentials_fail_the_email_route_in_one_line(stack: LocalRuntime):
    """Alertmanager's SMTP password no longer matches the inbox's: the drill's e-mail
    route is not delivered → one line naming it, exit 1; the other routes still do."""
    _needs_inbox(stack)
    password_file = stack.settings.etc / "alertmanager" / "smtp_password"
    right = password_file.read_bytes()
    with stack.http("alertmanager", timeout=10) as alertmanager:
        try:
            password_file.write_bytes(b"not-the-password")
            alertmanager.post("/-/reload").raise_for_status()
            result = cli(stack, "alerts.drill", "--route", "email", timeout=180)
            everything_else = cli(stack, "alerts.drill", "--route", "pager", timeout=180)
        finally:
            password_file.write_bytes(right)
            alertmanager.post("/-/reload").raise_for_status()
    assert result.returncode == 1, result.stdout + result.stderr
    # Progress lines, then one failed step, the verdict (wrapped to the terminal): the
    # route and why.
    assert result.stderr.count("✗") == 1, result.stderr
    verdict = " ".join(result.stderr[result.stderr.index("✗") :].split())
    assert "not delivered: email" in verdict and "auth_failed" in verdict, result.stderr
    assert everything_else.returncode == 0, everything_else.stdout + everything_else.stderr
    # Put right again, the route delivers.
    again = cli(stack, "alerts.drill", "--route", "email", timeout=180)
    assert again.returncode == 0, again.stdout + again.stderr
