"""A Prometheus that answers from a recording of a real one (the console's snapshot
tests need the same answers every run; everything else talks to a real Prometheus).

`python -m tests.tui.recorded URL` records, into tests/tui/data/prometheus.json, every
answer the console asks for: targets, alerts, and each query it runs.
`python -m tests.tui.recorded --dashboards` records, into tests/tui/data/dashboards.json,
what every dashboard of monitoring/dashboards/ asks for with its default selection, from
the stack of OCEAN_STATE_DIR / OCEAN_PORT_BASE (its credentials), and the time it was
recorded at: the Dashboards screen's tests run with the clock stopped there.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ocean import slo
from ocean.model import TargetHealth
from ocean.observe import HISTORY_S, HISTORY_STEP_S, slo_panels
from ocean.prom import PromError, Prometheus

RECORDING = Path(__file__).parent / "data" / "prometheus.json"
DASHBOARDS = Path(__file__).parent / "data" / "dashboards.json"


class RecordedPrometheus:
    """The methods of ocean.prom.Prometheus the console uses, from a recording."""

    def __init__(
        self, path: Path = RECORDING, delay: float = 0.0, dashboards: Path | None = DASHBOARDS
    ) -> None:
        self.data = json.loads(path.read_text())
        # Queries that fail, as Prometheus refused them: expr → its error message.
        self.errors: dict[str, str] = {}
        self.recorded_at = 0.0
        if dashboards is not None and dashboards.exists():
            extra = json.loads(dashboards.read_text())
            self.data["query"] = {**extra["query"], **self.data["query"]}
            self.data["query_range"] = {**extra["query_range"], **self.data["query_range"]}
            self.recorded_at = extra["recorded_at"]
        self.url = "http://recorded"
        self.delay = delay  # seconds each targets() call takes (the pile-up test)
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def targets(self) -> list[TargetHealth]:
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            return [TargetHealth(**t) for t in self.data["targets"]]
        finally:
            with self._lock:
                self.in_flight -= 1

    def alerts(self) -> list[dict[str, Any]]:
        return self.data["alerts"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        self._refuse(expr)
        return self.data["query"].get(expr, [])

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict]:
        self._refuse(expr)
        return self.data["query_range"].get(expr, [])

    def _refuse(self, expr: str) -> None:
        if expr in self.errors:
            raise PromError(f"{self.url}/api/v1/query: {self.errors[expr]}")

    def close(self) -> None:
        pass


def record(url: str) -> dict[str, Any]:
    slos = slo.load()
    api = slos.api_selector
    with Prometheus(url) as prom:
        now = time.time()
        exprs = [p.expr for p in slo_panels(slos)]
        extra = [
            "changes(up[5m]) >= 2",
            f"sum by (color) (rate(shop_http_requests_total{{{api}}}[1m]))",
            f'sum by (color) (rate(shop_http_requests_total{{{api},status="5xx"}}[1m]))',
            "histogram_quantile(0.99, sum by (color, le) "
            f"(rate(shop_http_request_duration_seconds_bucket{{{api}}}[1m])))",
        ]
        return {
            "recorded_from": "a local stack under k6 load (tests/tui/recorded.py)",
            "targets": [t.as_dict() for t in prom.targets()],
            "alerts": prom.alerts(),
            "query": {e: prom.query(e) for e in exprs + extra},
            "query_range": {
                e: prom.query_range(e, now - HISTORY_S, now, HISTORY_STEP_S) for e in exprs
            },
        }


def record_dashboards(prom: Prometheus) -> dict[str, Any]:
    """Every query each dashboard sends with its default selection, answered now."""
    from ocean.dashboards import model, query

    now = time.time()
    recorded: dict[str, Any] = {
        "recorded_from": "a local stack under k6 load (python -m tests.tui.recorded --dashboards)",
        "recorded_at": now,
        "query": {},
        "query_range": {},
    }

    class Recorder:
        def query(self, expr: str) -> list[dict[str, Any]]:
            recorded["query"][expr] = prom.query(expr)
            return recorded["query"][expr]

        def query_range(self, expr: str, start: float, end: float, step: float) -> list:
            recorded["query_range"][expr] = prom.query_range(expr, start, end, step)
            return recorded["query_range"][expr]

    for dashboard in model.load_all():
        query.fetch(Recorder(), dashboard, model.Selection.default(dashboard), now)
    return recorded


if __name__ == "__main__":
    if sys.argv[1:] == ["--dashboards"]:
        from ocean.config import Settings
        from ocean.runtime import make_runtime

        with Prometheus.of(make_runtime(settings=Settings.from_env()), timeout=10) as prom:
            DASHBOARDS.write_text(json.dumps(record_dashboards(prom), indent=None) + "\n")
        print(f"wrote {DASHBOARDS}")
        sys.exit(0)
    RECORDING.parent.mkdir(parents=True, exist_ok=True)
    RECORDING.write_text(json.dumps(record(sys.argv[1]), indent=1) + "\n")
    print(f"wrote {RECORDING}")
