"""Alertmanager's rendered config (amtool + semantic checks) and an alert end to end.

Slack, SMTP and PagerDuty cannot be reached from here: a fake HTTP receiver started by
the test on 127.0.0.1 stands in for all of them (the stack's receivers post to it through
OCEAN_ALERT_WEBHOOK_URL, written into the test stack's 0600 secrets file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ocean import textfile
from ocean.config import PortPlan, Settings
from ocean.procedures import stack as procedures
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from ocean.services import get
from ocean.validate.monitoring_checks import alertmanager_problems
from tests.conftest import make_runtime
from tests.helpers import FakeReceiver, free_port_base, metric_value

AMTOOL = shutil.which("amtool")
ALERT = "RedisReplicaDown"
DELIVERY_BUDGET = 60.0  # seconds from the fault to the notice at the receiver
SERVICES = "redis-master,redis-replica,redis-exporter,prometheus,alertmanager"

# -- the rendered config ------------------------------------------------------------


def _rendered(tmp_path: Path, environ: dict[str, str]) -> tuple[Path, dict]:
    runtime = LocalRuntime(Settings(state_dir=tmp_path, ports=PortPlan(free_port_base())))
    runtime.settings.etc.mkdir(parents=True)
    saved = {name: os.environ.pop(name, None) for name in _ALERT_ENV}
    try:
        os.environ.update(environ)
        runtime._render_configs()
    finally:
        for name in environ:
            os.environ.pop(name, None)
        os.environ.update({k: v for k, v in saved.items() if v is not None})
    path = runtime.settings.etc / "alertmanager.yml"
    return path, yaml.safe_load(path.read_text())


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
    "OCEAN_SMTP_SMARTHOST": "smtp.invalid:587",
    "OCEAN_SMTP_USERNAME": "ocean",
    "OCEAN_SMTP_PASSWORD": "secret-smtp-password",
}


@pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) not installed")
@pytest.mark.parametrize("environ", [{}, CONFIGURED], ids=["defaults", "configured"])
def test_rendered_config_passes_amtool_and_is_consistent(tmp_path: Path, environ: dict):
    path, config = _rendered(tmp_path, environ)
    result = subprocess.run([AMTOOL, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert path.stat().st_mode & 0o777 == 0o600

    # Undefined or unused receivers, inhibit rules without `equal` (`invoke validate`).
    assert alertmanager_problems(config) == []
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
    if environ:
        assert "secret-slack" in (files / "slack_url").read_text()
        assert "secret-smtp-password" in (files / "smtp_password").read_text()
    else:  # no configuration: everything posts to the local webhook port (base + 42)
        by_name = {r["name"]: r for r in config["receivers"]}
        webhooks = [c for r in by_name.values() for c in r.get("webhook_configs", [])]
        assert "email_configs" not in by_name["email"]
        assert all("http_config" not in c for c in webhooks)
        bases = {c["url"].rsplit("/", 1)[0] for c in webhooks}
        bases.add((files / "slack_url").read_text().strip().rsplit("/", 1)[0])
        assert len(bases) == 1 and bases.pop().startswith("http://127.0.0.1:"), webhooks


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
    path, _ = _rendered(tmp_path, {})
    args = [AMTOOL, "config", "routes", "test", f"--config.file={path}"]
    args += [f"{k}={v}" for k, v in labels.items()]
    out = subprocess.run(args, capture_output=True, text=True).stdout.strip()
    assert out.split(",") == receivers


# -- end to end ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[FakeReceiver]:
    fake = FakeReceiver()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def alert_stack(
    tmp_path_factory: pytest.TempPathFactory, receiver: FakeReceiver
) -> Iterator[LocalRuntime]:
    # RedisReplicaDown comes from monitoring/rules/cache.rules.yml, as in production.
    runtime = make_runtime(tmp_path_factory, "alerting")
    # The secrets file is where a user would put the webhook URL too; the environment
    # would win over it, so this test makes sure it has none.
    state = runtime.settings.state_dir
    state.mkdir(parents=True, exist_ok=True)
    runtime.settings.secrets_file.write_text(f"OCEAN_ALERT_WEBHOOK_URL={receiver.url}\n")
    runtime.settings.secrets_file.chmod(0o600)
    saved = os.environ.pop("OCEAN_ALERT_WEBHOOK_URL", None)
    try:
        list(procedures.up(runtime, SERVICES))
        yield runtime
    finally:
        list(procedures.down(runtime))
        if saved is not None:
            os.environ["OCEAN_ALERT_WEBHOOK_URL"] = saved


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:.0f}s")


def _am_alerts(runtime: LocalRuntime) -> list[dict]:
    with runtime.http("alertmanager", timeout=5) as alertmanager:
        response = alertmanager.get("/api/v2/alerts")
    return [a for a in response.json() if a["labels"].get("alertname") == ALERT]


@pytest.mark.integration
def test_replica_down_reaches_the_receiver_and_resolves(
    alert_stack: LocalRuntime, receiver: FakeReceiver
):
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
    fault = time.monotonic()
    fired, path = receiver.wait_for(ALERT, "firing", fault, DELIVERY_BUDGET)
    fire_seconds = fired - fault
    assert fire_seconds < DELIVERY_BUDGET
    listed = _am_alerts(alert_stack)
    assert listed, "the receiver got it, so Alertmanager must list it"
    # Routed by severity: critical pages, a warning goes to chat (Slack's payload).
    severity = listed[0]["labels"].get("severity")
    assert path == {"critical": "/pager", "warning": "/chat"}.get(severity, path), path

    list(alert_stack.start([replica]))
    repaired = time.monotonic()
    resolved, _ = receiver.wait_for(ALERT, "resolved", repaired, DELIVERY_BUDGET)
    resolve_seconds = resolved - repaired
    assert resolve_seconds < DELIVERY_BUDGET
    print(f"\n{ALERT}: fired after {fire_seconds:.1f}s, resolved after {resolve_seconds:.1f}s")


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
