"""The whole stack on the local runtime, with real services, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from ocean import busy, secrets
from ocean.procedures import stack as procedures
from ocean.procfs import all_pids, read_stat
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from tests.helpers import metric_value, run_cli, wait_for_delivery

pytestmark = pytest.mark.integration


def test_every_service_healthy_and_every_target_up(stack: LocalRuntime):
    report = procedures.status(stack)
    names = [s["name"] for s in report["services"]]
    assert "shop-blue" in names and "shop-green" not in names  # green: once deployed
    assert [s["name"] for s in report["services"] if not s["healthy"]] == []
    jobs = {t["job"] for t in report["targets"]}
    assert {
        "prometheus",
        "alertmanager",
        "shop",
        "node",
        "postgres",
        "redis",
        "nginx",
        "blackbox_http",
        "alert_inbox",
    } <= jobs
    assert all(t["health"] == "up" for t in report["targets"]), report["targets"]
    assert report["healthy"] is True


def test_every_listener_is_on_loopback(stack: LocalRuntime):
    pids = {s.pid for s in stack.status() if s.pid}
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True).stdout
    ours = [line for line in out.splitlines() if any(f"pid={pid}," in line for pid in pids)]
    assert ours, "no listener of the stack found"
    assert all(" 127.0.0.1:" in line for line in ours), ours


def test_watchdog_reaches_the_stacks_inbox_and_nothing_fails_to_notify(stack: LocalRuntime):
    """Out of the box the dead man's switch is delivered locally (the alert inbox, a
    stack service), so a fresh stack never pages about its own notifications."""
    watchdog = wait_for_delivery(stack, "Watchdog", "firing", 0, 60, receiver="watchdog")
    assert watchdog["kind"] == "webhook"
    assert watchdog["alerts"][0]["labels"]["severity"] == "info"
    url, auth = f"{stack.url('alertmanager')}/metrics", stack.access().ops_auth
    assert metric_value(url, "alertmanager_notifications_failed_total", auth) == 0
    inbox = f"{stack.url('alert-inbox')}/metrics"
    assert metric_value(inbox, "ocean_inbox_messages_total", receiver="watchdog") >= 1


def test_second_product_read_is_a_cache_hit(stack: LocalRuntime):
    # The shop's own (Redis) cache, so the shop directly: through nginx its micro-cache
    # would answer the second read itself (tests/integration/test_nginx_cache.py).
    front = stack.url("shop-blue")
    metrics = f"{stack.url('shop-blue')}/metrics"
    hits_before = metric_value(metrics, "shop_cache_requests_total", result="hit")
    first = httpx.get(f"{front}/api/products/7", timeout=5)
    second = httpx.get(f"{front}/api/products/7", timeout=5)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert metric_value(metrics, "shop_cache_requests_total", result="hit") == hits_before + 1


def test_blackbox_probes_the_shop_through_nginx(stack: LocalRuntime):
    with Prometheus.of(stack) as prom:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            result = prom.query('probe_success{job="blackbox_http"}')
            if result and result[0]["value"][1] == "1":
                break
            time.sleep(0.5)
    assert result and result[0]["value"][1] == "1", result


def test_rendered_configs_pass_their_own_checkers(stack: LocalRuntime):
    etc = stack.settings.etc
    nginx = subprocess.run(
        [
            "nginx",
            "-t",
            "-q",
            "-p",
            str(stack.settings.state_dir / "nginx"),
            "-c",
            str(etc / "nginx.conf"),
        ],
        capture_output=True,
        text=True,
    )
    assert nginx.returncode == 0, nginx.stderr
    prom = subprocess.run(
        ["promtool", "check", "config", str(etc / "prometheus.yml")],
        capture_output=True,
        text=True,
    )
    assert prom.returncode == 0, prom.stdout + prom.stderr
    conf = (etc / "supervisord.conf").read_text()
    assert oct((etc / "supervisord.conf").stat().st_mode)[-3:] == "600"
    if os.geteuid() == 0:
        assert "[program:postgres]" in conf and "user = postgres" in conf


def test_secrets_never_leak_into_status_or_command_lines(stack: LocalRuntime):
    values = secrets.load_or_create(stack.settings.secrets_file).values()
    result = run_cli(
        "status", "--json", state_dir=stack.settings.state_dir, port_base=stack.settings.ports.base
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["healthy"] is True
    cmdlines = [
        Path(f"/proc/{s.pid}/cmdline").read_bytes().decode(errors="replace")
        for s in stack.status()
        if s.pid
    ]
    for value in values:
        assert value not in result.stdout
        assert not any(value in cmdline for cmdline in cmdlines)


def test_logs_shows_a_services_output(stack: LocalRuntime):
    lines = list(procedures.log_lines(stack, "redis-master", lines=200))
    assert any("Ready to accept connections" in line for line in lines)
    result = run_cli(
        "logs", "nope", state_dir=stack.settings.state_dir, port_base=stack.settings.ports.base
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: unknown service nope")


@pytest.mark.parametrize("name", ["postgres", "redis-master", "nginx", "shop-blue", "prometheus"])
def test_killed_service_runs_again_within_5s(stack: LocalRuntime, name: str):
    """5 s on an idle machine; stretched as the toolkit's own waits are (busy.factor, read
    at every poll): a killed Prometheus replaying its WAL took over 5 s at load 12."""
    before = next(s for s in stack.status() if s.name == name)
    assert before.healthy and before.pid
    os.kill(before.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    now = before
    while time.monotonic() < killed_at + 5 * busy.factor(cap=busy.MAX_FACTOR):
        now = next(s for s in stack.status() if s.name == name)
        if now.healthy and now.pid != before.pid:
            break
        time.sleep(0.1)
    assert now.healthy and now.pid != before.pid, now
    assert now.restarts == before.restarts + 1
    # The restart ran the whole program again, not a stale leftover.
    if name == "nginx":
        with stack.http("nginx", timeout=2) as front:
            assert front.get("/healthz").status_code == 200
        # Nothing of the killed master lives on: no worker, cache manager or loader.
        assert orphaned_nginx(str(stack.settings.state_dir)) == []


def orphaned_nginx(state_dir: str) -> list[int]:
    """nginx processes re-parented to PID 1 that run in this stack's state dir."""
    found = []
    for pid in all_pids():
        stat = read_stat(pid)
        if stat is None or stat.comm != "nginx" or stat.ppid != 1:
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:  # gone, or a zombie being reaped: it holds nothing
            continue
        if cwd == state_dir:
            found.append(pid)
    return found
