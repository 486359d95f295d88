"""Every metric the alert rules, recording rules and dashboards read exists in the stack.

With the session stack under light traffic (product reads, a cart and a checkout, all
through nginx), every metric name referenced in monitoring/rules/*.yml and in every
dashboard of monitoring/dashboards/ must have at least one series in Prometheus,
except those monitoring/failure-only-metrics.yaml lists with a reason (they appear only
after a failure, or come with a later issue). Recording rules' own names are checked
too, as series, once Prometheus has evaluated them: a rule whose result is empty
(e.g. a ratio whose numerator has no series yet) would leave its panels and alerts
blind.

Metric names are read from PromQL with the tokeniser of tests/unit/test_dashboards.py.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import yaml

from ocean.runtime.local import LocalRuntime
from tests.unit.test_dashboards import MONITORING, dashboard_files, expressions, load, metric_names

pytestmark = pytest.mark.integration

RULES = MONITORING / "rules"
FAILURE_ONLY = MONITORING / "failure-only-metrics.yaml"
# Bounded waits: the local stack scrapes and evaluates rules every second.
SCRAPE_TIMEOUT = 30.0
SERIES_TIMEOUT = 45.0


def rule_files() -> list[Path]:
    return sorted(RULES.glob("*.yml"))


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in rule_files()
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", [])
        for rule in group.get("rules", [])
        if "record" in rule
    }


def references() -> dict[str, set[str]]:
    """Metric name → where it is read ("rules/x.rules.yml: AlertName", "dashboards/…")."""
    found: dict[str, set[str]] = defaultdict(set)
    for path in rule_files():
        for group in (yaml.safe_load(path.read_text()) or {}).get("groups", []):
            for rule in group.get("rules", []):
                where = f"rules/{path.name}: {rule.get('alert') or rule.get('record')}"
                for name in metric_names(str(rule.get("expr", ""))):
                    found[name].add(where)
    for path in dashboard_files():
        for title, _ref_id, expr in expressions(load(path)):
            for name in metric_names(expr):
                found[name].add(f"dashboards/{path.name}: {title}")
    return found


def failure_only() -> dict[str, str]:
    data = yaml.safe_load(FAILURE_ONLY.read_text()) or {}
    return data.get("metrics") or {}


def test_failure_only_list_is_documented_and_used():
    listed = failure_only()
    undocumented = [name for name, reason in listed.items() if not str(reason or "").strip()]
    assert undocumented == [], "every entry needs a one-line reason"
    multi_line = [name for name, reason in listed.items() if "\n" in str(reason).strip()]
    assert multi_line == [], "one line per reason"
    unused = sorted(set(listed) - set(references()))
    assert unused == [], f"listed but read by no rule or dashboard: {unused}"


def wait_for_first_scrapes(prometheus: httpx.Client) -> None:
    """Until every active target has been scraped at least once and is up (bounded)."""
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    targets: list[dict] = []
    while time.monotonic() < deadline:
        response = prometheus.get("/api/v1/targets", params={"state": "active"})
        targets = response.json()["data"]["activeTargets"]
        if targets and all(t["health"] == "up" for t in targets):
            return
        time.sleep(0.5)
    pytest.fail(f"targets not all up within {SCRAPE_TIMEOUT}s: {targets}")


def light_traffic(stack: LocalRuntime) -> None:
    """A few reads, a cart and one paid checkout, through nginx (bounded: ~10 requests)."""
    with stack.http("nginx", timeout=10) as client:
        for path, params in [
            ("/api/categories", {}),
            ("/api/products", {"limit": 5}),
            ("/api/products/1", {}),
            ("/api/products/2", {}),
            ("/api/products/2", {}),
            ("/api/search", {"q": "ocean"}),
        ]:
            response = client.get(path, params=params)
            assert response.status_code == 200, f"{path}: {response.status_code} {response.text}"
        cart = client.post("/api/carts").json()["cart_id"]
        put = client.put(f"/api/carts/{cart}/items/4", json={"quantity": 1})
        assert put.status_code == 200, put.text
        checkout = client.post(
            "/api/checkout",
            json={"cart_id": cart, "customer_id": 1, "payment_method": "card"},
            headers={"Idempotency-Key": f"monitoring-live-{time.time_ns()}"},
        )
        assert checkout.status_code == 201, checkout.text
        assert client.get("/api/products/404404404").status_code == 404


def names_with_series(prometheus: httpx.Client) -> set[str]:
    """Metric names with a sample in the last two minutes."""
    now = time.time()
    response = prometheus.get(
        "/api/v1/label/__name__/values", params={"start": now - 120, "end": now}
    )
    return set(response.json()["data"])


def test_every_referenced_metric_has_a_series(stack: LocalRuntime):
    prometheus = stack.http("prometheus", timeout=5)
    wait_for_first_scrapes(prometheus)
    light_traffic(stack)

    refs = references()
    recorded = recorded_names()
    excused = failure_only()
    wanted = (set(refs) | recorded) - set(excused)

    deadline = time.monotonic() + SERIES_TIMEOUT
    missing = wanted
    while time.monotonic() < deadline:
        missing = wanted - names_with_series(prometheus)
        if not missing:
            break
        time.sleep(1)

    report = []
    for name in sorted(missing):
        if name in recorded:
            kind = "recording rule evaluated to nothing"
        elif ":" in name:
            kind = "recording-rule name that no rule file defines"
        else:
            kind = "no series"
        where = "; ".join(sorted(refs.get(name, {"(defined only)"})))
        report.append(f"{name} ({kind}) ← {where}")
    assert report == [], "metrics without a series:\n" + "\n".join(report)
