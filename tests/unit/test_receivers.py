"""Where Alertmanager's receivers deliver (ocean/receivers.py), and whether the stack's
alert inbox runs: only while some receiver still delivers to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean import receivers
from ocean.config import PortPlan, Settings
from ocean.services import select

REAL = {
    "OCEAN_SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T/B/x",
    "OCEAN_PAGER_WEBHOOK_URL": "https://pager.invalid/hook",
    "OCEAN_DEADMAN_URL": "https://deadman.invalid/ping",
    "OCEAN_SMTP_SMARTHOST": "smtp.invalid:587",
    "OCEAN_SMTP_USERNAME": "ocean",
    "OCEAN_SMTP_PASSWORD": "pw",
}


def _resolve(tmp_path: Path, settings: dict[str, str]) -> receivers.Receivers:
    stack = Settings(state_dir=tmp_path, ports=PortPlan(21000))
    return receivers.resolve(stack, lambda name: settings.get(name, ""), "inbox-pw")


def test_nothing_configured_delivers_everything_to_the_inbox(tmp_path: Path):
    chosen = _resolve(tmp_path, {})
    assert chosen.inbox and chosen.inbox_url == "http://127.0.0.1:21042"
    assert chosen.pager_url == "http://127.0.0.1:21042/webhook/pager"
    assert chosen.deadman_url == "http://127.0.0.1:21042/webhook/watchdog"
    assert chosen.slack_url == "http://127.0.0.1:21042/slack/chat"
    smtp = chosen.smtp
    assert smtp.local and smtp.smarthost == "127.0.0.1:21043" and smtp.require_tls
    assert (smtp.username, smtp.password) == ("alertmanager", "inbox-pw")
    assert smtp.ca_file == tmp_path / "tls" / "ca.crt"


def test_every_receiver_real_turns_the_inbox_off(tmp_path: Path):
    chosen = _resolve(tmp_path, REAL)
    assert not chosen.inbox
    assert not chosen.smtp.local and chosen.smtp.ca_file is None
    assert (chosen.smtp.username, chosen.smtp.password) == ("ocean", "pw")
    assert select(None, skipped=frozenset({"alert-inbox"})) == [
        s for s in select(None) if s.name != "alert-inbox"
    ]


@pytest.mark.parametrize(
    "left_local",
    [
        "OCEAN_SLACK_WEBHOOK_URL",
        "OCEAN_PAGER_WEBHOOK_URL",
        "OCEAN_DEADMAN_URL",
        "OCEAN_SMTP_SMARTHOST",
    ],
)
def test_one_receiver_left_on_the_inbox_keeps_it_on(tmp_path: Path, left_local: str):
    assert _resolve(tmp_path, {k: v for k, v in REAL.items() if k != left_local}).inbox


def test_an_operators_webhook_base_replaces_the_inbox_for_webhooks(tmp_path: Path):
    base = {"OCEAN_ALERT_WEBHOOK_URL": "http://hooks.internal:9000/"}
    chosen = _resolve(tmp_path, {**base, "OCEAN_SMTP_SMARTHOST": "smtp.invalid:25"})
    assert chosen.pager_url == "http://hooks.internal:9000/webhook/pager"
    assert chosen.slack_url == "http://hooks.internal:9000/slack/chat"
    assert not chosen.inbox
    assert _resolve(tmp_path, base).inbox  # mail still goes to the inbox
