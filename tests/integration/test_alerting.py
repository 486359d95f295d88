"""Alertmanager's rendered config (amtool + semantic checks) and alerts end to end,
delivered to the stack's own alert inbox (service alert-inbox, stack/inbox): e-mail over
SMTP with STARTTLS and AUTH into its Maildir, Slack's and the webhooks' JSON over HTTP.
The tests read what arrived from the inbox's /api/messages, as `invoke alerts drill`
does, and the Maildir itself.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ocean import secrets, textfile, tls
from ocean.config import PortPlan, Settings
from ocean.procedures import stack as procedures
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from ocean.services import get
from ocean.validate.alertmanager_checks import alertmanager_problems
from tests.conftest import make_runtime
from tests.helpers import free_port_base, metric_value, wait_for_delivery

AMTOOL = shutil.which("amtool")
ALERT = "RedisReplicaDown"
DELIVERY_BUDGET = 60.0  # seconds from the fault to the notice at the receiver
SERVICES = "redis-master,redis-replica,redis-exporter,prometheus,alertmanager,alert-inbox"

# -- the rendered config ------------------------------------------------------------


def _rendered(tmp_path: Path, environ: dict[str, str]) -> tuple[LocalRuntime, dict]:
    runtime = LocalRuntime(Settings(state_dir=tmp_path, ports=PortPlan(free_port_base())))
    runtime.settings.etc.mkdir(parents=True)
    saved = {name: os.environ.pop(name, None) for name in _ALERT_ENV}
    try:
        os.environ.update(environ)
        runtime._render_configs()
        runtime.skipped = runtime.skipped_services()
    finally:
        for name in environ:
            os.environ.pop(name, None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    path = runtime.settings.etc / "alertmanager.yml"
    return runtime, yaml.safe_load(path.read_text())


_ALERT_ENV = (
    "OCEAN_ALERT_WEBHOOK_URL",
    "OCEAN_SLACK_WEBHOOK_URL",
    "OCEAN_PAGER_WEBHOOK_URL",
    "OCEAN_PAGER_TOKEN",
    "OCEAN_DEADMAN_URL",
    "OCEAN_SMTP_SMARTHOST",
    "OCEAN_SMTP_USERNAME",
    "OCEAN_SMTP_PASSWORD",
)
CONFIGURED = {
    "OCEAN_SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T/B/secret-slack",
    "OCEAN_PAGER_WEBHOOK_URL": "https://pager.invalid/hook",
    "OCEAN_PAGER_TOKEN": "secret-pager-token",
    "OCEAN_DEADMAN_URL": "https://deadman.invalid/ping",
    "OCEAN_SMTP_SMARTHOST": "smtp.invalid:587",
    "OCEAN_SMTP_USERNAME": "ocean",
    "OCEAN_SMTP_PASSWORD": "secret-smtp-password",
}


@pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) not installed")
@pytest.mark.parametrize("environ", [{}, CONFIGURED], ids=["defaults", "configured"])
def test_rendered_config_passes_amtool_and_is_consistent(tmp_path: Path, environ: dict):
    runtime, config = _rendered(tmp_path, environ)
    path = runtime.settings.etc / "alertmanager.yml"
    result = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert path.stat().st_mode & 0o777 == 0o600

    # Undefined or unused receivers, inhibit rules without `equal` (`invoke validate`).
    assert alertmanager_problems(config) == []
    # The dead-man's switch repeats at every flush: its repeat_interval is below its
    # group_interval (equal ones skip every other flush).
    (deadman,) = [r for r in config["route"]["routes"] if r["receiver"] == "deadman"]
    seconds = {"50s": 50, "1m": 60}
    assert seconds[deadman["repeat_interval"]] < seconds[deadman["group_interval"]]
    for receiver in config["receivers"]:
        for kind, configs in receiver.items():
            if kind.endswith("_configs"):
                assert all(c.get("send_resolved") for c in configs), receiver["name"]

    # Secrets Alertmanager can read from a file never appear in the config itself.
    text = path.read_text()
    for secret in ("secret-slack", "secret-pager-token", "secret-smtp-password"):
        assert secret not in text
    files = tmp_path / "etc" / "alertmanager"
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files.iterdir())
    by_name = {r["name"]: r for r in config["receivers"]}
    (email,) = by_name["email"]["email_configs"]
    assert email["require_tls"] is True
    # Alertmanager 0.25 sends the file's bytes as they are: no trailing newline.
    password = (files / "smtp_password").read_text()
    prometheus_yml = (tmp_path / "etc" / "prometheus.yml").read_text()
    if environ:  # every receiver real: the inbox is neither started nor scraped
        assert "secret-slack" in (files / "slack_url").read_text()
        assert password == "secret-smtp-password"
        assert email["smarthost"] == "smtp.invalid:587" and "tls_config" not in email
        assert runtime.skipped == {"alert-inbox"}
        assert "alert_inbox" not in prometheus_yml
        return
    # No configuration: everything goes to the stack's inbox, e-mail over SMTP with
    # STARTTLS verified against the stack's CA and the generated credentials.
    ports = runtime.settings.ports
    inbox = f"http://127.0.0.1:{ports['alert-webhook']}"
    assert email["smarthost"] == f"127.0.0.1:{ports['alert-smtp']}"
    assert email["tls_config"]["ca_file"] == str(tls.TlsFiles(runtime.settings.tls_dir).ca_cert)
    assert email["auth_username"] == "alertmanager"
    assert password == secrets.load_or_create(runtime.settings.secrets_file)["INBOX_SMTP_PASSWORD"]
    assert by_name["pager"]["webhook_configs"][0]["url"] == f"{inbox}/webhook/pager"
    assert by_name["deadman"]["webhook_configs"][0]["url"] == f"{inbox}/webhook/watchdog"
    assert (files / "slack_url").read_text().strip() == f"{inbox}/slack/chat"
    assert all("http_config" not in c for c in by_name["pager"]["webhook_configs"])
    assert runtime.skipped == frozenset()
    assert "job_name: alert_inbox" in prometheus_yml


@pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) not installed")
@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        ({"alertname": "Watchdog", "severity": "none"}, ["deadman"]),
        ({"alertname": "ShopInstanceDown", "severity": "critical"}, ["pager"]),
        ({"alertname": "SLOBurn", "severity": "critical", "team": "business"}, ["pager", "email"]),
        ({"alertname": "BackupStale", "severity": "warning", "team": "business"}, ["email"]),
        ({"alertname": "RedisReplicaDown", "severity": "warning"}, ["chat"]),
        ({"alertname": "Something", "severity": "info"}, ["chat"]),
    ],
)
def test_routing_tree(tmp_path: Path, labels: dict, receivers: list[str]):
    runtime, _ = _rendered(tmp_path, {})
    path = runtime.settings.etc / "alertmanager.yml"
    args = [AMTOOL, "config", "routes", "test", f"--config.file={path}"]
    args += [f"{k}={v}" for k, v in labels.items()]
    out = subprocess.run(args, capture_output=True, text=True).stdout.strip()
    assert out.split(",") == receivers


# -- end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def alert_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    # RedisReplicaDown comes from monitoring/rules/cache.rules.yml, as in production.
    runtime = make_runtime(tmp_path_factory, "alerting")
    # No real receiver may leak in from the environment: everything goes to the inbox.
    saved = {name: os.environ.pop(name, None) for name in _ALERT_ENV}
    try:
        list(procedures.up(runtime, SERVICES))
        yield runtime
    finally:
        list(procedures.down(runtime))
        os.environ.update({k: v for k, v in saved.items() if v is not None})


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:.0f}s")


def _am_alerts(runtime: LocalRuntime, name: str = ALERT) -> list[dict]:
    with runtime.http("alertmanager", timeout=5) as alertmanager:
        response = alertmanager.get("/api/v2/alerts")
    return [a for a in response.json() if a["labels"].get("alertname") == name]


def _post_alerts(runtime: LocalRuntime, alerts: list[dict]) -> None:
    """Alerts straight into Alertmanager's API, as Prometheus (or a drill) sends them."""
    with runtime.http("alertmanager", timeout=5) as alertmanager:
        alertmanager.post("/api/v2/alerts", json=alerts).raise_for_status()


def _failed_notifications(runtime: LocalRuntime, integration: str) -> float:
    url, auth = f"{runtime.url('alertmanager')}/metrics", runtime.access().ops_auth
    name = "alertmanager_notifications_failed_total"
    return metric_value(url, name, auth, integration=integration)


@pytest.mark.integration
def test_replica_down_reaches_the_inbox_and_resolves(alert_stack: LocalRuntime):
    replica = get("redis-replica")
    with Prometheus.of(alert_stack) as prom:
        _wait(
            lambda: any(
                r.get("name") == ALERT
                for g in prom._get("/api/v1/rules")["groups"]
                for r in g["rules"]
            ),
            20,
            f"the {ALERT} rule loaded",
        )
        # Healthy first: the replica scraped as up, and no alert pending.
        _wait(
            lambda: prom._get("/api/v1/query", query='redis_up{role="replica"} == 1')["result"],
            30,
            "the replica scraped as up",
        )

    list(alert_stack.stop(replica))
    fault, fault_wall = time.monotonic(), time.time()
    fired = wait_for_delivery(alert_stack, ALERT, "firing", fault_wall, DELIVERY_BUDGET)
    fire_seconds = time.monotonic() - fault
    listed = _am_alerts(alert_stack)
    assert listed, "the inbox got it, so Alertmanager must list it"
    # Routed by severity: critical pages, a warning goes to chat (Slack's payload).
    severity = listed[0]["labels"].get("severity")
    expected = {"critical": ("pager", "webhook"), "warning": ("chat", "slack")}[severity]
    assert (fired["receiver"], fired["kind"]) == expected

    list(alert_stack.start([replica]))
    repaired, repaired_wall = time.monotonic(), time.time()
    wait_for_delivery(alert_stack, ALERT, "resolved", repaired_wall, DELIVERY_BUDGET)
    resolve_seconds = time.monotonic() - repaired
    print(f"\n{ALERT}: fired after {fire_seconds:.1f}s, resolved after {resolve_seconds:.1f}s")


@pytest.mark.integration
def test_email_over_tls_and_slack_reach_the_inbox(alert_stack: LocalRuntime):
    """A business alert is mailed (STARTTLS against the stack's CA, AUTH) into the
    Maildir; a warning goes to chat in Slack's format. Both within seconds."""
    since = time.time()
    runbook = "docs/runbooks/ShopOrderVolumeLow.md"
    _post_alerts(
        alert_stack,
        [
            {
                "labels": {"alertname": "InboxMailTest", "severity": "warning", "team": "business"},
                "annotations": {"summary": "orders are low", "runbook_url": runbook},
            },
            {
                "labels": {"alertname": "InboxChatTest", "severity": "warning"},
                "annotations": {"summary": "chat only"},
            },
        ],
    )
    mail = wait_for_delivery(alert_stack, "InboxMailTest", "firing", since, 30, "email")
    assert mail["kind"] == "email" and mail["tls"] is True and mail["user"] == "alertmanager"
    assert mail["subject"] == "[FIRING:1] InboxMailTest"
    assert runbook in mail["text"] and mail["to"] == "business@ocean.local"
    chat = wait_for_delivery(alert_stack, "InboxChatTest", "firing", since, 30, "chat")
    assert chat["kind"] == "slack" and chat["channel"] == "#ocean-alerts"

    # The Maildir itself, as any mail tool reads it: the inbox's own headers on top.
    box = mailbox.Maildir(alert_stack.settings.data / "inbox" / "mail", create=False)
    stored = [m for m in box if m["Subject"] == "[FIRING:1] InboxMailTest"]
    assert stored and stored[0]["X-Inbox-TLS"].startswith("yes (TLSv1.")
    assert stored[0]["X-Inbox-User"] == "alertmanager"
    assert _failed_notifications(alert_stack, "email") == 0
    assert _failed_notifications(alert_stack, "slack") == 0


@pytest.mark.integration
def test_a_stopped_receiver_fires_notifications_failing(alert_stack: LocalRuntime):
    """The inbox stopped: Alertmanager's notifications fail and
    AlertmanagerNotificationsFailing fires on the live stack; once the inbox is back,
    the page about it arrives there.

    The rule waits 5 minutes (`for: 5m`, tested by promtool in
    monitoring/rules/tests/infrastructure.minutes.rules.test.yml); to keep this test
    bounded the stack's copy of the rule (<state>/etc/rules) waits 5 s instead, with
    the same expression and labels, and Prometheus reloads it."""
    rules = alert_stack.settings.etc / "rules" / "infrastructure.rules.yml"
    original = rules.read_text()
    parsed = yaml.safe_load(original)
    rule = next(
        r
        for g in parsed["groups"]
        for r in g["rules"]
        if r.get("alert") == "AlertmanagerNotificationsFailing"
    )
    assert rule["for"] == "5m"
    rule["for"] = "5s"
    inbox = get("alert-inbox")
    try:
        _reload_rules(alert_stack, yaml.safe_dump(parsed, sort_keys=False))
        failed_before = _failed_notifications(alert_stack, "slack")
        list(alert_stack.stop(inbox))
        since = time.time()
        _post_alerts(
            alert_stack,
            [{"labels": {"alertname": "InboxDownTest", "severity": "warning"}}],
        )
        _wait(
            lambda: _failed_notifications(alert_stack, "slack") > failed_before,
            60,
            "a failed Slack notification counted",
        )
        with Prometheus.of(alert_stack) as prom:
            firing = _wait(
                lambda: prom.query(
                    'ALERTS{alertname="AlertmanagerNotificationsFailing",alertstate="firing"}'
                ),
                60,
                "AlertmanagerNotificationsFailing firing",
            )
        assert {a["metric"]["integration"] for a in firing} >= {"slack"}
        assert all(a["metric"]["severity"] == "critical" for a in firing)
        list(alert_stack.start([inbox]))
        page = wait_for_delivery(
            alert_stack, "AlertmanagerNotificationsFailing", "firing", since, 60, "pager"
        )
        assert page["alerts"][0]["annotations"]["runbook_url"].endswith(
            "AlertmanagerNotificationsFailing.md"
        )
    finally:
        if inbox.name not in alert_stack.running():
            list(alert_stack.start([inbox]))
        _reload_rules(alert_stack, original)


def _reload_rules(runtime: LocalRuntime, text: str) -> None:
    path = runtime.settings.etc / "rules" / "infrastructure.rules.yml"
    path.write_text(text)
    with runtime.http("prometheus", timeout=10) as prometheus:
        prometheus.post("/-/reload").raise_for_status()


# -- the toolkit's own metrics --------------------------------------------------------


@pytest.mark.integration
def test_node_exporter_exposes_the_toolkits_textfile_metrics(stack: LocalRuntime):
    at = time.time()
    textfile.record_backup(stack.settings, "integration", 4096, success=True, at=at)
    metrics = f"{stack.url('node-exporter')}/metrics"
    auth = stack.access().ops_auth  # node exporter's port requires it (ocean/access.py)
    assert metric_value(metrics, "ocean_backup_size_bytes", auth) == 4096
    assert metric_value(
        metrics, "ocean_backup_last_success_timestamp_seconds", auth
    ) == pytest.approx(at)
    # node exporter reports a textfile it could not parse here; ours must parse.
    assert metric_value(metrics, "node_textfile_scrape_error", auth) == 0
