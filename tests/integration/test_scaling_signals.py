"""The autoscaler's signals read from a live stack's Prometheus (ocean/scaling.py,
issue 22): the shop's CPU, its requests in flight and its p99, as ``sample`` gives them
to the policy, and nothing at all from a Prometheus that does not answer."""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from ocean.prom import Prometheus
from ocean.rollout.warmup import Admin
from ocean.runtime.local import LocalRuntime
from ocean.scaling import sample
from tests.integration.test_monitoring_live import wait_for_first_scrapes

pytestmark = pytest.mark.integration

HELD_S = 3.0  # injected latency: the held requests span several 1 s scrapes
HELD = 6


def test_a_busy_color_shows_its_cpu_its_requests_in_flight_and_its_p99(stack: LocalRuntime):
    wait_for_first_scrapes(stack.http("prometheus", timeout=5))
    color = stack.live_color()
    admin = Admin.of(stack, color)
    headers = {"Authorization": f"Bearer {admin.token}"}
    with httpx.Client(base_url=admin.url, headers=headers, timeout=10) as private:
        private.put("/admin/faults", json={"latency_ms": int(HELD_S * 1000)}).raise_for_status()
        try:
            held = [
                threading.Thread(target=_read, args=(stack.url(f"shop-{color}"),))
                for _ in range(HELD)
            ]
            for thread in held:
                thread.start()
            time.sleep(HELD_S - 0.5)  # scraped at least once while all are held
            with Prometheus.of(stack) as prom:
                during = sample(prom, color, workers=2, at=time.time(), window="30s")
            for thread in held:
                thread.join(timeout=HELD_S + 10)
        finally:
            private.put("/admin/faults", json={}).raise_for_status()
    time.sleep(2.5)  # two scrapes after they were answered
    with Prometheus.of(stack) as prom:
        after = sample(prom, color, workers=2, at=time.time(), window="15s")
    # Six held requests over the two workers the caller says the color runs.
    assert during.in_flight == HELD / 2, during
    assert during.cpu is not None and 0 < during.cpu < 1, during
    # Once answered, the six 3 s requests are a fifth of the window's (the scrapes and
    # probes of 15 s are the rest): its p99 lies in their bucket, above 2.5 s.
    assert after.p99_ms is not None and after.p99_ms >= 2500, after
    assert after.in_flight == 0, after


def test_a_finished_burst_leaves_nothing_in_flight_and_a_p99_of_its_requests(
    stack: LocalRuntime,
):
    color = stack.live_color()
    with httpx.Client(base_url=stack.url(f"shop-{color}"), timeout=10) as client:
        for _ in range(40):
            client.get("/api/categories").raise_for_status()
    time.sleep(2.5)  # two scrapes after the last request
    with Prometheus.of(stack) as prom:
        after = sample(prom, color, workers=1, at=time.time(), window="30s")
    assert after.in_flight == 0, after
    assert after.p99_ms is not None and 0 < after.p99_ms < 5000, after


def test_no_prometheus_no_signal(stack: LocalRuntime):
    with Prometheus("http://127.0.0.1:9", timeout=1) as nowhere:  # discard port: refused
        unread = sample(nowhere, stack.live_color(), workers=1, at=time.time())
    assert (unread.cpu, unread.in_flight, unread.p99_ms) == (None, None, None)


def _read(url: str) -> None:
    with contextlib.suppress(httpx.HTTPError):  # what Prometheus saw is judged, not this
        httpx.get(url + "/api/categories", timeout=HELD_S + 10)
