"""Per receiver, the last delivery and the failures (ocean/alerting/deliveries.py), from
payloads shaped as the alert inbox and Alertmanager 0.25 give them. The same figures
against a real Alertmanager and inbox: tests/tui/test_alerts.py (the drill)."""

from __future__ import annotations

from ocean.alerting import deliveries
from ocean.alerting.deliveries import DeliveryWatch, counters, summarise

RECEIVERS = {
    "deadman": {"name": "deadman", "webhook_configs": [{"url": "http://i:1/webhook/watchdog"}]},
    "pager": {"name": "pager", "webhook_configs": [{"url": "http://i:1/webhook/pager"}]},
    "chat": {"name": "chat", "slack_configs": [{"api_url_file": "/x/slack_url"}]},
    "email": {"name": "email", "email_configs": [{"to": "ops@example.com"}]},
}
LOCAL = {"deadman", "pager", "chat"}  # email goes to a real SMTP server here
BY_NAME = {"watchdog": "deadman", "pager": "pager"}

METRICS_025 = """\
# TYPE alertmanager_notification_requests_total counter
alertmanager_notification_requests_total{integration="email"} 5
alertmanager_notification_requests_total{integration="webhook"} 12
alertmanager_notification_requests_failed_total{integration="email"} 1
alertmanager_notification_requests_failed_total{integration="webhook"} 7
alertmanager_notifications_failed_total{integration="email"} 0
alertmanager_notifications_failed_total{integration="webhook"} 2
alertmanager_notifications_total{integration="webhook"} 9
"""


def message(at: float, receiver: str, status: str = "firing", **extra) -> dict:
    return {"received_at": at, "receiver": receiver, "status": status, **extra}


def test_inbox_messages_give_each_receiver_its_last_delivery_and_count():
    watch = DeliveryWatch(started=1000.0)
    assert watch.inbox_since() == 1000.0 - deliveries.LOOKBACK
    names = set(RECEIVERS)
    watch.add_messages(
        [
            message(900, "watchdog", alertnames=["Watchdog"], kind="webhook"),
            message(950, "watchdog", "resolved", alertnames=["Watchdog"], kind="webhook"),
            message(940, "pager", alertnames=["TargetDown"], kind="webhook"),
            # The stand-in files a Slack message under its path; the inbox under /slack/chat.
            message(930, "chat", kind="slack", channel="#ocean-alerts", alertnames=["X"]),
            message(935, "nobody", kind="webhook"),  # not a receiver of this config
        ],
        BY_NAME,
        names,
    )
    assert watch.since == 950  # next time: only what came after
    rows = {r.receiver: r for r in summarise(RECEIVERS, LOCAL, watch, counters(METRICS_025))}
    assert rows["deadman"].source == "inbox" and rows["deadman"].delivered == 2
    assert rows["deadman"].last_at == 950
    assert rows["deadman"].last_what == "resolved Watchdog (webhook)"
    assert rows["chat"].last_what == "firing X (slack #ocean-alerts)"
    # Failures: Alertmanager's, per integration, shared by the webhook receivers.
    assert (rows["pager"].failed, rows["pager"].failed_attempts) == (2, 7)
    assert rows["pager"].shared_with == ("deadman",)
    assert rows["chat"].failed == 0 and rows["chat"].shared_with == ()

    # The next poll asks from 950: the message at 950 comes again and is not recounted.
    watch.add_messages(
        [message(950, "watchdog", "resolved"), message(960, "watchdog", alertnames=["Watchdog"])],
        BY_NAME,
        names,
    )
    deadman = summarise(RECEIVERS, LOCAL, watch, counters(METRICS_025))[1]
    assert deadman.receiver == "deadman" and deadman.delivered == 3 and deadman.last_at == 960


def test_an_external_receiver_is_read_from_the_counters_and_dated_when_they_rise():
    watch = DeliveryWatch(started=1000.0)
    first = counters(METRICS_025)
    watch.add_counters(first, 1001.0)
    email = next(r for r in summarise(RECEIVERS, LOCAL, watch, first) if r.receiver == "email")
    assert email.source == "alertmanager"
    assert email.delivered == 4  # 5 attempts, 1 failed
    assert email.last_at is None and "since the console started" in email.note
    risen = counters(METRICS_025.replace('integration="email"} 5', 'integration="email"} 6'))
    watch.add_counters(risen, 1003.0)
    email = next(r for r in summarise(RECEIVERS, LOCAL, watch, risen) if r.receiver == "email")
    assert email.delivered == 5 and email.last_at == 1003.0
    assert email.last_what == "email count rose"


def test_an_inbox_that_does_not_answer_falls_back_to_the_counters_and_says_so():
    watch = DeliveryWatch()
    rows = summarise(RECEIVERS, LOCAL, watch, counters(METRICS_025), inbox_problem="not answering")
    pager = next(r for r in rows if r.receiver == "pager")
    assert pager.source == "alertmanager" and pager.delivered == 5  # 12 - 7, webhook
    assert pager.note.startswith("inbox: not answering")
    down = summarise(RECEIVERS, set(), watch, None, alertmanager_problem="alertmanager is down")
    assert all(r.delivered is None and r.failed is None for r in down)
    assert down[0].note == "alertmanager is down"


def test_counters_labelled_by_receiver_are_used_per_receiver():
    text = "\n".join(
        f'alertmanager_{metric}{{integration="webhook",receiver_name="{receiver}"}} {value}'
        for metric, receiver, value in (
            ("notification_requests_total", "pager", 3),
            ("notification_requests_total", "deadman", 8),
            ("notifications_failed_total", "pager", 1),
        )
    )
    rows = {r.receiver: r for r in summarise(RECEIVERS, set(), DeliveryWatch(), counters(text))}
    assert rows["pager"].delivered == 3 and rows["pager"].failed == 1
    assert rows["deadman"].delivered == 8 and rows["deadman"].failed == 0
    assert rows["pager"].shared_with == ()


def test_inbox_names_come_from_the_urls_path():
    assert deliveries.inbox_names("deadman", RECEIVERS["deadman"]) == {"watchdog"}
    assert deliveries.inbox_names("chat", RECEIVERS["chat"]) == set()  # a file: not read
