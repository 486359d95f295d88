"""Refreshing the metric catalog from a live stack (``invoke validate --refresh-catalog``).

A procedure, not a check: it *drives* traffic and events through the live stack (reads
through nginx, the deploy warm-up, one injected 5xx per color, short k6 runs, a
delivered alert) so the series they bring exist, then captures the catalog
(ocean/validate/catalog_capture.py, which only reads) and writes it. What it must not
fake (a deploy's, a backup's textfile metrics) the capture declares from the writers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from ocean import statedir
from ocean.errors import OceanError
from ocean.loadtest.scenarios import LoadOptions
from ocean.model import Step, StepStatus
from ocean.procedures.loadtest import loadtest
from ocean.prom import PromError, Prometheus
from ocean.rollout.warmup import Admin, warm_up
from ocean.validate.catalog import save
from ocean.validate.catalog_capture import capture

# The k6 scenarios a refresh runs: between them, every k6 metric the toolkit reads.
K6_SCENARIOS = ("smoke", "websocket")


def refresh(runtime: Any, root: Path, traffic: bool = True) -> Iterator[Step]:
    """Drive traffic and events on ``runtime``'s live stack, capture its catalog, write
    it to ``root``/monitoring/catalog.json."""
    statedir.require(runtime.settings.state_dir)  # no secrets made for a stack not there
    url = runtime.url("prometheus")
    try:  # before the stack's credentials are read: a stopped stack may have none
        httpx.get(url + "/-/ready", timeout=5)
    except httpx.HTTPError:
        raise OceanError(f"Prometheus at {url} does not answer: `up` the stack first") from None
    with Prometheus.of(runtime) as prom:
        if not prom.ready():
            raise OceanError(f"Prometheus at {prom.url} is not ready: `up` the stack first")
    if traffic:
        started = time.monotonic()
        yield Step("traffic", StepStatus.OK, drive_traffic(runtime), time.monotonic() - started)
        for scenario in K6_SCENARIOS:
            started = time.monotonic()
            detail = run_k6(runtime, scenario)
            yield Step(f"k6 {scenario}", StepStatus.OK, detail, time.monotonic() - started)
        started = time.monotonic()
        try:
            delivered = wait_for_alert_delivery(runtime)
            with Prometheus.of(runtime) as prom:  # scraped and rules evaluated after it
                interval = prom.scrape_interval_s()
        except (PromError, httpx.HTTPError) as exc:
            raise OceanError(f"Prometheus failed the refresh (is the stack up?): {exc}") from None
        yield Step("alerts", StepStatus.OK, delivered, time.monotonic() - started)
        time.sleep(3 * interval)
    started = time.monotonic()
    try:
        catalog = capture(runtime)
    except (PromError, httpx.HTTPError, KeyError) as exc:
        raise OceanError(f"cannot capture the catalog (is the stack up?): {exc}") from None
    path = save(root, catalog)
    yield Step(
        "catalog",
        StepStatus.OK,
        f"{len(catalog.metrics)} series names from {len(catalog.versions)} versioned "
        f"services → {path.relative_to(root)}",
        time.monotonic() - started,
        {"metrics": len(catalog.metrics), "versions": catalog.versions},
    )


def drive_traffic(runtime: Any) -> str:
    """Reads through nginx, the warm-up and one 5xx on each running color; one line."""
    with runtime.http("nginx", timeout=15) as client:
        for path in ("/", "/api/categories", "/api/products?limit=5", "/api/products/1"):
            client.get(path)
        client.get("/api/search", params={"q": "ocean"})
        client.get("/api/products/404404404")
    colors = [c for c in ("blue", "green") if _running(runtime, c)]
    for color in colors:
        admin = Admin.of(runtime, color)
        warm_up(runtime.url(f"shop-{color}"), 60, 2, admin=admin, seconds=15)
        _one_5xx(runtime.url(f"shop-{color}"), admin)
    return f"reads through nginx; warm-up and one 5xx on {', '.join(colors) or 'no color'}"


# Prometheus has sent an alert (the always-firing Watchdog) and the inbox has stored a
# delivery: the series only a delivered alert brings (Prometheus' notification latency,
# the inbox's per-receiver counters and their _created) exist from then on.
DELIVERED = (
    "sum(prometheus_notifications_sent_total) > 0 and on() sum(ocean_inbox_messages_total) > 0"
)
DELIVERY_WAIT_S = 300.0  # the Watchdog's group_wait and a rule evaluation, with room


def wait_for_alert_delivery(runtime: Any) -> str:
    """Wait until an alert went from Prometheus through Alertmanager to the inbox; one
    line. Not faked: a stack whose Watchdog does not reach the inbox is not one to
    capture from."""
    deadline = time.monotonic() + DELIVERY_WAIT_S
    with Prometheus.of(runtime) as prom:
        while time.monotonic() < deadline:
            if prom.query(DELIVERED):
                return "the Watchdog alert delivered to the inbox"
            time.sleep(2)
    raise OceanError(
        f"no alert reached the inbox within {DELIVERY_WAIT_S:.0f} s: check `./ocean alerts`"
    )


def _running(runtime: Any, color: str) -> bool:
    try:
        with httpx.Client(timeout=3) as client:
            return client.get(runtime.url(f"shop-{color}") + "/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def _one_5xx(url: str, admin: Any) -> None:
    """One request the color fails on purpose (fault injection), then faults off."""
    headers = {"Authorization": f"Bearer {admin.token}"}
    with httpx.Client(base_url=admin.url, headers=headers, timeout=10) as private:
        private.put("/admin/faults", json={"error_rate": 1.0}).raise_for_status()
        try:
            httpx.get(url + "/api/categories", timeout=10)
        finally:
            private.put("/admin/faults", json={}).raise_for_status()


def run_k6(runtime: Any, scenario: str) -> str:
    """A 3-second k6 run of ``scenario`` (remote write: the k6_* series the console
    reads; websocket: k6's ws_* metrics, which HTTP scenarios do not report)."""
    opts = LoadOptions(scenario, 1, 3.0, runtime.url("nginx"))
    steps = list(loadtest(runtime, opts))
    # Its verdict does not matter here (a busy machine may fail the SLO): the series do.
    return f"k6 ran ({steps[-1].detail})" if steps else "k6 ran"
