"""The dashboards and `logs --trace` against a real local stack (the session's).

- The console's Dashboards screen (key 8) shows every dashboard of
  monitoring/dashboards/ from the live Prometheus: no panel errors, and each panel has
  data except those whose metrics a fresh stack cannot have yet (named below, with why).
- `invoke dashboards snapshot` draws one into a PNG.
- `invoke logs --trace ID` with the X-Request-ID of a request made through nginx
  prints its nginx access line and its shop line; an unknown id exits 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from textual.widgets import Select

from ocean import tracelog
from ocean.dashboards import model, query
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from tests.helpers import cli
from tui.app import OceanConsole
from tui.screens.dashboards import DashboardsScreen

pytestmark = pytest.mark.anyio

# Panels a fresh, idle stack has no series for, and why.
EMPTY_ON_A_FRESH_STACK = {
    ("system-overview", "Error ratio (5xx) by color"): "no 5xx answered",
    ("system-overview", "Targets down"): "no target down",
    ("system-overview", "Orders / min"): "no order placed yet",
    ("system-overview", "Checkout outcomes"): "no checkout yet",
    ("deploys", "Error ratio by color"): "no 5xx answered",
    ("deploys", "Injected faults/s"): "no fault injected",
    ("deploys", "Last deploy per color and outcome"): "no deploy yet",
    ("deploys", "Deployed versions"): "no deploy yet",
    ("deploys", "Deploys in range"): "no deploy yet",
    ("deploys", "Deploy duration by color and outcome"): "no deploy yet",
    ("slo", "API error ratio by color"): "no 5xx answered",
    ("slo", "Orders per minute"): "no order placed yet",
    ("slo", "DB query p95 by query"): "no shop query in the last minutes",
    ("database-performance", "Shop query p95 by query"): "no shop query yet",
    ("database-performance", "Shop queries/s by query"): "no shop query yet",
}


def traffic(stack: LocalRuntime, requests: int = 30) -> str:
    """Requests through nginx: the catalogue and product pages (the shop's cache); the
    X-Request-ID of the last."""
    with stack.access().http_client(stack.url("nginx"), timeout=10) as client:
        for i in range(requests):
            path = "/api/products" if i % 2 else f"/api/products/{i % 7 + 1}"
            response = client.get(path, params={"q": str(i)} if i % 2 else None)
            assert response.status_code < 500
        return response.headers["x-request-id"]


@pytest.fixture(scope="module")
def warm(stack: LocalRuntime) -> Iterator[LocalRuntime]:
    """The stack under light traffic (a few requests a second, so rates and quantiles
    have something to show), once Prometheus has two points of it on the screen's grid
    (15-minute range: 15 s steps aligned to the step, as Grafana aligns them) and the
    SLO rules have evaluated."""
    stop = threading.Event()

    def keep_busy() -> None:
        while not stop.wait(0.3):
            try:
                traffic(stack, requests=2)
            except Exception:  # a test restarting something: carry on
                time.sleep(1)

    worker = threading.Thread(target=keep_busy, daemon=True)
    worker.start()
    wanted = (
        "sum(rate(shop_http_requests_total[1m]))",
        'slo:sli_error:ratio_rate1h{slo="availability"}',
        "up",
    )
    with Prometheus.of(stack) as prom:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            when = query.timing(900, time.time())
            points = [prom.query_range(e, when.start, when.end, when.step) for e in wanted]
            if all(r and len(r[0]["values"]) >= 2 for r in points):
                break
            time.sleep(2)
    try:
        yield stack
    finally:
        stop.set()
        worker.join(timeout=10)


async def test_every_dashboard_live_each_panel_with_data(warm: LocalRuntime):
    prom = Prometheus.of(warm, timeout=10)
    app = OceanConsole(warm, prom, refresh=5)
    empty: dict[tuple[str, str], str] = {}
    try:
        async with app.run_test(size=(160, 60)) as pilot:
            await pilot.press("8")
            screen = app.screen
            assert isinstance(screen, DashboardsScreen)
            for index, dashboard in enumerate(screen.dashboards):
                if index:
                    await pilot.press("n")  # as the operator switches
                await pilot.pause()
                assert screen.dashboard is dashboard
                # 15 minutes, what a fresh stack has, chosen as the operator does (a
                # dashboard's own range, e.g. 6h, has too coarse a grid for it)
                screen.query_one("#dash-range", Select).value = "15m"
                started = time.monotonic()
                while time.monotonic() - started < 30:
                    await pilot.pause(0.05)
                    if screen.selection.range_s == 900 and not screen.fetching:
                        break
                assert not screen.fetching, dashboard.name
                await pilot.pause(0.1)
                for panel_id, widget in screen._panels.items():
                    panel = dashboard.panel(panel_id)
                    data = widget.data
                    if data is not None:  # the answer drawn is the 15-minute one
                        assert data.end - data.start == 900, (dashboard.name, panel.title)
                    if panel.type == "text":
                        continue
                    assert data is not None, (dashboard.name, panel.title)
                    assert not data.error, (dashboard.name, panel.title, data.error)
                    has_data = any(s.points for s in data.series) or bool(data.rows)
                    if not has_data:
                        empty[(dashboard.name, panel.title)] = ""
    finally:
        prom.close()
    unexpected = set(empty) - set(EMPTY_ON_A_FRESH_STACK)
    if unexpected:  # what Prometheus holds now, for the failure message
        with Prometheus.of(warm) as again:
            for name, title in sorted(unexpected):
                panel = next(p for p in model.find(name).panels if p.title == title)
                when = query.timing(900, time.time())
                empty[(name, title)] = str(
                    [
                        again.query_range(
                            query.substitute(t.expr, when, {}), when.start, when.end, when.step
                        )[:1]
                        for t in panel.targets
                    ]
                )[:300]
    assert not unexpected, "panels without data: " + "\n".join(
        f"{k}: {empty[k]}" for k in sorted(unexpected)
    )


def test_dashboards_snapshot_draws_a_png(warm: LocalRuntime, tmp_path):
    out = tmp_path / "overview.png"
    result = cli(
        warm, "dashboards", "snapshot", "system-overview", "--from", "15m", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 50_000
    assert "27 panels" in result.stderr


def test_logs_trace_follows_a_request_through_nginx_and_the_shop(warm: LocalRuntime):
    with warm.access().http_client(warm.url("nginx"), timeout=10) as client:
        # A query of its own: nginx's micro-cache cannot answer it, the shop does.
        response = client.get("/api/products", params={"q": f"trace-{time.time_ns()}"})
    assert response.status_code == 200
    trace_id = response.headers["x-request-id"]
    lines: list[tracelog.TraceLine] = []
    deadline = time.monotonic() + 10  # nginx flushes its access log every second
    while time.monotonic() < deadline:
        try:
            lines = tracelog.trace(warm, trace_id)
        except Exception:
            lines = []
        if {line.source for line in lines} >= {"nginx", f"shop-{warm.live_color()}"}:
            break
        time.sleep(0.5)
    sources = [line.source for line in lines]
    assert "nginx" in sources and f"shop-{warm.live_color()}" in sources, lines
    assert sources[-1] == "nginx"  # nginx logs when the answer has left: last
    result = cli(warm, "logs", "--trace", trace_id.upper())
    assert result.returncode == 0, result.stderr
    assert "request_id=" + trace_id in result.stdout
    assert f'"trace_id":"{trace_id}"' in result.stdout
    assert '"message":"GET /api/products 200"' in result.stdout

    unknown = cli(warm, "logs", "--trace", "0" * 31 + "1")
    assert unknown.returncode == 1
    assert "no lines with trace id" in unknown.stderr
