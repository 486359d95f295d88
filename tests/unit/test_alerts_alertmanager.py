"""`invoke alerts`, `alerts.silence`/`unsilence` and `alerts.drill` against a real
Alertmanager: Debian's binary, started on a free port with the stack's rendered config
and its own command line (basic auth included), one light process per module.

The alert inbox is the stand-in of tests/alerting_support.py (a real HTTP server on
the stack's alert-webhook port serving the inbox's /api/messages contract): the real
alert-inbox service is built on another branch. Prometheus is not running here, so
`alerts` lists what Alertmanager holds and exits 1 naming Prometheus.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ocean import audit
from ocean.alerting import drill, routes
from ocean.alerting.api import AlertmanagerApi, InboxApi
from ocean.alerting.silences import SilenceRequest
from ocean.config import REPO_ROOT
from ocean.freeze import rule_labels
from ocean.runtime.local import LocalRuntime
from tests.alerting_support import rendered_runtime, with_inbox
from tests.helpers import cli
from tests.unit.test_alert_routing import AMTOOL, amtool_routes

pytestmark = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager missing"
)
RULES = rule_labels(REPO_ROOT)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = rendered_runtime(tmp_path_factory.mktemp("alerts"))
    with with_inbox(runtime):
        yield runtime


def _post(runtime: LocalRuntime, *alerts: dict, ended: bool = False) -> None:
    body = [{"labels": a, **({"endsAt": "2000-01-01T00:00:00Z"} if ended else {})} for a in alerts]
    with AlertmanagerApi(runtime) as alertmanager:
        alertmanager.post_alerts(body)


def _held(runtime: LocalRuntime, **labels: str) -> list[dict]:
    with AlertmanagerApi(runtime) as alertmanager:
        return alertmanager.alerts(**labels)


def _until(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := predicate():
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f}s")


def _listing(runtime: LocalRuntime) -> dict:
    result = cli(runtime, "alerts", "--json")
    # Prometheus is not running here: the listing says so and exits 1, yet lists.
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert any("prometheus is not answering" in p for p in report["problems"])
    return report


# -- inhibition, live --------------------------------------------------------------------


def test_a_down_redis_inhibits_its_symptom_on_the_same_instance_live(stack):
    runtime = stack
    down = {"alertname": "RedisDown", **RULES["RedisDown"], "instance": "inh:6379"}
    lag = {"alertname": "RedisReplicationLag", **RULES["RedisReplicationLag"]}
    here, elsewhere = {**lag, "instance": "inh:6379"}, {**lag, "instance": "other:6379"}
    _post(runtime, down, here, elsewhere)
    try:
        held = _until(
            lambda: (
                (a := _held(runtime, instance="inh:6379", alertname="RedisReplicationLag"))
                and a[0]["status"]["inhibitedBy"]
                and a
            )
        )
        source = _held(runtime, alertname="RedisDown", instance="inh:6379")[0]
        assert held[0]["status"]["state"] == "suppressed"
        assert held[0]["status"]["inhibitedBy"] == [source["fingerprint"]]
        other = _held(runtime, instance="other:6379")[0]
        assert other["status"] == {"state": "active", "silencedBy": [], "inhibitedBy": []}

        rows = {(r["name"], r["labels"].get("instance")): r for r in _listing(runtime)["alerts"]}
        muted = rows[("RedisReplicationLag", "inh:6379")]
        assert [(i["alert"], i["rule"]) for i in muted["inhibited_by"]] == [("RedisDown", 1)]
        assert rows[("RedisReplicationLag", "other:6379")]["inhibited_by"] == []
        # Alertmanager's receivers and the Python routing agree.
        assert rows[("RedisDown", "inh:6379")]["receivers"] == ["pager"]
        assert rows[("RedisDown", "inh:6379")]["routes"] == ["pager"]
        assert muted["receivers"] == ["chat"] and muted["state"] == "firing"
        assert {
            "rule": 1,
            "sources": ["RedisDown", "ShopInstanceDown", "TargetDown"],
            "equal": ["instance"],
        } in muted["can_be_inhibited_by"]
    finally:
        _post(runtime, down, here, elsewhere, ended=True)


# -- silences ------------------------------------------------------------------------------


def test_silence_then_unsilence_audited_and_listed(stack):
    runtime = stack
    target = {"alertname": "TargetDown", **RULES["TargetDown"], "instance": "sil:1"}
    _post(runtime, target)
    try:
        made = cli(runtime, "alerts.silence", "TargetDown", "--for", "2h", "--reason", "disk swap")
        assert made.returncode == 0, made.stderr
        silence_id = next(
            s["id"]
            for s in AlertmanagerApi(runtime).silences()
            if s["comment"] == "disk swap" and s["status"]["state"] == "active"
        )
        assert silence_id in made.stderr
        held = _until(
            lambda: (a := _held(runtime, instance="sil:1")) and a[0]["status"]["silencedBy"] and a
        )
        assert held[0]["status"]["silencedBy"] == [silence_id]

        report = _listing(runtime)
        listed = next(s for s in report["silences"] if s["id"] == silence_id)
        assert listed["matchers"] == 'alertname="TargetDown"'
        assert listed["silences"] == ["TargetDown"] and 7100 < listed["ends_in_s"] <= 7200
        row = next(r for r in report["alerts"] if r["labels"].get("instance") == "sil:1")
        assert row["silenced_by"] == [silence_id]

        ended = cli(runtime, "alerts.unsilence", silence_id)
        assert ended.returncode == 0, ended.stderr
        state = AlertmanagerApi(runtime).silence(silence_id)["status"]["state"]
        assert state == "expired"
        again = cli(runtime, "alerts.unsilence", silence_id)
        assert again.returncode == 1
        assert again.stderr.strip().startswith(f"error: silence {silence_id} already ended")

        entries = [e for e in audit.read(runtime.settings) if e["action"].startswith("alerts ")]
        outcomes = [(e["action"], e["outcome"]) for e in entries]
        assert outcomes[:4] == [
            ("alerts silence", "started"),
            ("alerts silence", "succeeded"),
            ("alerts unsilence", "started"),
            ("alerts unsilence", "succeeded"),
        ]
        assert entries[0]["args"]["reason"] == "disk swap" and entries[0]["args"]["for_s"] == 7200
    finally:
        _post(runtime, target, ended=True)


@pytest.mark.parametrize(
    ("silence_id", "message"),
    [
        ("0b0b0e2e-0000-4000-8000-000000000000", "error: no silence '0b0b0e2e-"),
        ("nope", "error: 'nope' is not a silence id"),
    ],
)
def test_unsilencing_an_unknown_id_is_one_line(stack, silence_id: str, message: str):
    runtime = stack
    result = cli(runtime, "alerts.unsilence", silence_id)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message)


def test_a_bad_silence_sends_nothing(stack):
    runtime = stack
    before = len(AlertmanagerApi(runtime).silences())
    for args in (
        ("TargetDwon", "--for", "2h", "--reason", "x"),
        ("TargetDown", "--for", "-5m", "--reason", "x"),
        ("TargetDown", "--for", "0s", "--reason", "x"),
        ("TargetDown", "--for", "soon", "--reason", "x"),
        ("TargetDown", "--for", "2h", "--reason", "  "),
    ):
        result = cli(runtime, "alerts.silence", *args)
        assert result.returncode == 1 and result.stderr.count("\n") == 1, (args, result.stderr)
    assert (
        "did you mean TargetDown?"
        in cli(runtime, "alerts.silence", "TargetDwon", "--for", "1h", "--reason", "x").stderr
    )
    assert len(AlertmanagerApi(runtime).silences()) == before


# -- the drill -------------------------------------------------------------------------------


def test_the_drill_plan_sends_each_receiver_its_own_alert(stack):
    runtime = stack
    routing = routes.load(runtime.settings.etc / routes.CONFIG_FILE)
    planned = {a.receiver: a for a in drill.plan(routing, RULES, "run1")}
    assert set(planned) == {"deadman", "pager", "email", "chat"}
    for receiver, alert in planned.items():
        assert alert.expected == (receiver,), receiver
        assert alert.labels["drill_id"] == f"run1-{receiver}"
        assert alert.labels["service"] == alert.labels["drill_id"]  # its own group
    # Only Watchdog's name reaches the dead-man's switch; every other is OceanAlertDrill.
    assert planned["deadman"].labels["alertname"] == "Watchdog"
    assert {planned[r].labels["alertname"] for r in ("pager", "email", "chat")} == {
        drill.DRILL_ALERT
    }
    assert planned["pager"].labels["severity"] == "critical"
    assert planned["email"].labels["team"] == "business"
    assert planned["deadman"].group_wait == 0.0 and planned["pager"].group_wait == 1.0
    assert "team" not in planned["chat"].labels  # a grouping label routes use stays unset
    if AMTOOL:  # and Alertmanager's own routing agrees
        config = runtime.settings.etc / routes.CONFIG_FILE
        for receiver, alert in planned.items():
            assert amtool_routes(config, alert.labels) == [receiver]


def test_the_drill_delivers_every_route_and_resolves(stack):
    runtime = stack
    result = cli(runtime, "alerts.drill", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)  # stdout: the result alone
    assert "waiting for" in result.stderr  # progress goes to stderr meanwhile
    rows = {r["route"]: r for r in report["routes"]}
    assert set(rows) == {"deadman", "pager", "email", "chat"}
    for row in rows.values():
        assert row["delivered"] and row["via"] == "inbox", row
        # group_wait (0-1 s here) + Alertmanager's dispatch; generous for a busy machine.
        assert 0 <= row["latency_s"] < 10, row
    assert rows["chat"]["kind"] == "slack" and rows["pager"]["kind"] == "webhook"
    print({r: rows[r]["latency_s"] for r in rows})
    ids = {row["drill_id"] for row in rows.values()}
    with InboxApi(runtime) as inbox_api:
        got = json.dumps(inbox_api.messages(0))
    assert all(drill_id in got for drill_id in ids)
    # Resolved: Alertmanager holds none of them any more.
    assert not [a for a in _held(runtime) if a["labels"].get("drill_id") in ids]


def test_a_route_that_does_not_deliver_is_named_with_the_reason(stack):
    runtime = stack
    with AlertmanagerApi(runtime) as alertmanager:  # an operator silenced the drill
        body = SilenceRequest("OceanAlertDrill", 600, "drill test").body("test")
        silence_id = alertmanager.create_silence(body)
    try:
        result = cli(runtime, "alerts.drill", "--route", "pager", "--timeout", "4s", "--json")
    finally:
        AlertmanagerApi(runtime).expire_silence(silence_id)
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is False and report["failed"] == ["pager"]
    assert report["routes"][0]["problem"] == f"silenced by {silence_id}"


def test_an_unknown_route_is_one_line_with_the_known_ones(stack):
    runtime = stack
    result = cli(runtime, "alerts.drill", "--route", "pagr")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: --route 'pagr': no route delivers to it (did you mean 'pager'? "
        "routes: chat, deadman, pager, email)"
    )


def test_a_drill_with_alertmanager_down_is_one_line(tmp_path: Path):
    runtime = rendered_runtime(tmp_path / "state")
    result = cli(runtime, "alerts.drill")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: alertmanager is not answering at http://127.0.0.1:")
    assert "connection refused" in lines[-1]
