"""The pure parts of alerting: the listing joined from Prometheus' and Alertmanager's
payloads, how a drill attributes deliveries (inbox messages, Alertmanager's counters),
which receivers count as local, and the freeze ignoring drill alerts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean.alerting import drill, listing, routes
from ocean.config import REPO_ROOT
from ocean.errors import OceanError
from ocean.freeze import FreezePolicy, rule_labels
from tests.alerting_support import rendered_runtime

RULES = rule_labels(REPO_ROOT)
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def routing(tmp_path_factory) -> routes.Routing:
    runtime = rendered_runtime(tmp_path_factory.mktemp("core"))
    return routes.load(runtime.settings.etc / routes.CONFIG_FILE)


def _iso(epoch: float) -> str:
    from ocean.alerting.silences import rfc3339

    return rfc3339(epoch)


def test_the_listing_joins_prometheus_and_alertmanager(routing: routes.Routing):
    firing = {"alertname": "RedisReplicaDown", **RULES["RedisReplicaDown"], "instance": "r:1"}
    pending = {"alertname": "ShopOrderVolumeLow", **RULES["ShopOrderVolumeLow"]}
    drill_labels = {"alertname": "OceanAlertDrill", "severity": "info", "drill_id": "d1"}
    prom = [
        {
            "labels": firing,
            "state": "firing",
            "activeAt": _iso(NOW - 90),
            "annotations": {"summary": "replica down"},
        },
        {"labels": pending, "state": "pending", "activeAt": _iso(NOW - 30)},
    ]
    held = [  # Alertmanager's copy carries Prometheus' external label too
        {
            "labels": {**firing, "stack": "ocean"},
            "fingerprint": "f1",
            "startsAt": _iso(NOW - 89),
            "receivers": [{"name": "pager"}],
            "status": {"state": "suppressed", "silencedBy": ["s1"], "inhibitedBy": []},
        },
        {
            "labels": drill_labels,
            "fingerprint": "f2",
            "startsAt": _iso(NOW - 1),
            "receivers": [{"name": "chat"}],
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        },
    ]
    silences = [
        {
            "id": "s1",
            "status": {"state": "active"},
            "endsAt": _iso(NOW + 600),
            "matchers": [
                {
                    "name": "alertname",
                    "value": "RedisReplicaDown",
                    "isRegex": False,
                    "isEqual": True,
                }
            ],
            "createdBy": "ops",
            "comment": "replacing it",
        },
        {"id": "s0", "status": {"state": "expired"}, "endsAt": _iso(NOW - 600), "matchers": []},
    ]
    report = listing.build(prom, held, silences, routing, RULES, now=NOW)
    rows = {r["name"]: r for r in report["alerts"]}
    assert list(rows) == ["RedisReplicaDown", "OceanAlertDrill", "ShopOrderVolumeLow"]
    replica = rows["RedisReplicaDown"]
    assert replica["receivers"] == ["pager"] and replica["silenced_by"] == ["s1"]
    assert replica["for_s"] == 90 and replica["summary"] == "replica down"
    assert replica["routes"] == ["pager"] and replica["source"] == "prometheus"
    assert rows["OceanAlertDrill"]["drill"] and rows["OceanAlertDrill"]["source"] == "alertmanager"
    # Pending: Alertmanager has not got it; the routing tree says where it will go.
    low = rows["ShopOrderVolumeLow"]
    assert low["state"] == "pending" and not low["held_by_alertmanager"]
    assert low["receivers"] == ["email"] and low["route_path"] == 'default > email{team="business"}'
    assert [s["id"] for s in report["silences"]] == ["s1"]
    assert report["silences"][0]["silences"] == ["RedisReplicaDown"]
    assert report["silences"][0]["ends_in_s"] == 600
    assert report["counts"] == {"firing": 2, "pending": 1, "silenced": 1, "inhibited": 0}


def test_a_pending_alert_names_what_would_mute_it_once_it_fires(routing: routes.Routing):
    down = {"alertname": "TargetDown", **RULES["TargetDown"], "instance": "h:9100"}
    cpu = {"alertname": "HostHighCpu", **RULES["HostHighCpu"], "instance": "h:9100"}
    prom = [{"labels": cpu, "state": "pending", "activeAt": _iso(NOW - 5)}]
    held = [
        {
            "labels": down,
            "fingerprint": "f9",
            "receivers": [{"name": "chat"}],
            "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
        }
    ]
    silences = [
        {
            "id": "s2",
            "status": {"state": "active"},
            "matchers": [
                {"name": "alertname", "value": "Host.*", "isRegex": True, "isEqual": True},
                {"name": "team", "value": "shop", "isRegex": False, "isEqual": False},
            ],
        },
        {
            "id": "s3",
            "status": {"state": "active"},
            "matchers": [{"name": "instance", "value": "other:1", "isRegex": False}],
        },
    ]
    report = listing.build(prom, held, silences, routing, RULES, now=NOW)
    row = next(r for r in report["alerts"] if r["name"] == "HostHighCpu")
    assert [(i["alert"], i["rule"], i["when_it_fires"]) for i in row["inhibited_by"]] == [
        ("TargetDown", 1, True)
    ]
    assert row["silenced_when_it_fires"] == ["s2"]  # s3 is for another instance


def _delivery(receiver: str, via: str, drill_id: str = "run-x") -> drill.Delivery:
    alert = drill.DrillAlert(receiver, (receiver,), {"drill_id": drill_id}, (receiver,), 1.0)
    return drill.Delivery(alert, receiver, via, posted_at=NOW)


def test_inbox_messages_count_only_firing_copies_for_the_right_receiver():
    pager, chat = _delivery("pager", "inbox", "run-pager"), _delivery("chat", "inbox", "run-chat")
    messages = [
        {"received_at": NOW + 0.5, "receiver": "pager", "status": "resolved", "text": "run-pager"},
        {"received_at": NOW + 0.7, "receiver": "email", "status": "firing", "text": "run-pager"},
        {
            "received_at": _iso(NOW + 1.2),
            "receiver": "chat",
            "status": "firing",
            "kind": "slack",
            "channel": "#ocean-alerts",
            "text": "info: Alert drill run-chat: proves …",
        },
    ]
    drill.match_inbox([pager, chat], messages, {"pager", "email", "chat"})
    assert pager.received_at is None  # resolved, or another receiver's copy
    assert chat.delivered and chat.latency == pytest.approx(1.2, abs=0.01)
    assert (chat.kind, chat.channel) == ("slack", "#ocean-alerts")


def test_counters_attribute_a_success_only_when_it_holds_and_is_not_the_inboxs():
    pager = _delivery("pager", "counters")
    uses = {"pager": ["webhook"]}
    before = {("alertmanager_notification_requests_total", "webhook"): 10.0}
    one_sent = {("alertmanager_notification_requests_total", "webhook"): 11.0}
    # The inbox received one webhook meanwhile: that request was its, not the pager's.
    drill.match_counters([pager], before, one_sent, uses, {"webhook": 1})
    drill.match_counters([pager], before, one_sent, uses, {"webhook": 1})
    assert pager.received_at is None
    # One more, seen once: an attempt counted before its failure could look like that.
    two_sent = {("alertmanager_notification_requests_total", "webhook"): 12.0}
    drill.match_counters([pager], before, two_sent, uses, {"webhook": 1})
    assert pager.received_at is None
    drill.match_counters([pager], before, two_sent, uses, {"webhook": 1})
    assert pager.delivered and pager.kind == "webhook"


def test_a_failing_request_is_the_reason_given():
    pager = _delivery("pager", "counters")
    failing = {
        ("alertmanager_notification_requests_total", "webhook"): 3.0,
        ("alertmanager_notification_requests_failed_total", "webhook"): 3.0,
    }
    drill.match_counters([pager], {}, failing, {"pager": ["webhook"]}, {})
    assert not pager.delivered
    assert pager.problem == "alertmanager_notification_requests_failed_total rose for webhook"


def test_which_receivers_end_at_the_inbox(tmp_path: Path):
    inbox = "http://127.0.0.1:18042"
    url_file = tmp_path / "slack_url"
    url_file.write_text(f"{inbox}/chat\n")

    def local(receiver: dict, config: dict | None = None) -> bool:
        return drill.delivers_locally(
            receiver,
            config or {},
            inbox,
            {18042, 18043},
            "127.0.0.1",
            lambda p: Path(p).read_text(),
        )

    assert local({"webhook_configs": [{"url": f"{inbox}/pager"}]})
    assert not local({"webhook_configs": [{"url": "https://pager.example/hook"}]})
    assert local({"slack_configs": [{"api_url_file": str(url_file)}]})
    assert not local({"slack_configs": [{"api_url": "https://hooks.slack.com/x"}]})
    assert local(
        {"email_configs": [{"to": "a@b"}]}, {"global": {"smtp_smarthost": "127.0.0.1:18043"}}
    )
    assert not local({"email_configs": [{"to": "a@b", "smarthost": "smtp.example:587"}]})
    mixed = {"webhook_configs": [{"url": f"{inbox}/x"}], "pagerduty_configs": [{}]}
    assert not local(mixed) and not local({"name": "none"})


def test_counters_parse_alertmanagers_metrics():
    text = (
        '# HELP x\nalertmanager_notifications_total{integration="email"} 3\n'
        'alertmanager_notification_requests_failed_total{integration="webhook"} 2\n'
        'alertmanager_notification_latency_seconds_count{integration="webhook"} 9\n'
    )
    assert drill.counters(text) == {
        ("alertmanager_notifications_total", "email"): 3.0,
        ("alertmanager_notification_requests_failed_total", "webhook"): 2.0,
    }


def test_drill_alerts_never_freeze_or_warn_a_deploy():
    policy = FreezePolicy(alerts=frozenset({"OceanAlertDrill"}))  # even if named there
    critical = {"alertname": "OceanAlertDrill", "severity": "critical", "team": "shop"}
    decision = policy.decide([{"state": "firing", "labels": {**critical, "drill_id": "d"}}])
    assert decision.frozen == [] and decision.warned == []
    # The same labels without the drill's mark do freeze: the test can fail.
    assert policy.decide([{"state": "firing", "labels": critical}]).frozen == ["OceanAlertDrill"]


def test_a_drill_route_is_named_by_its_receiver_or_the_alert_it_pins(routing: routes.Routing):
    assert [a.receiver for a in drill.plan(routing, RULES, "r", only="pager")] == ["pager"]
    assert [a.receiver for a in drill.plan(routing, RULES, "r", only="watchdog")] == ["deadman"]
    with pytest.raises(OceanError, match="did you mean 'email'"):
        drill.plan(routing, RULES, "r", only="emial")
