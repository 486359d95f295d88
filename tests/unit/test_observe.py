"""ocean.observe: the console's view of Prometheus, from a recording of a real one."""

from __future__ import annotations

from ocean import slo
from ocean.model import TargetHealth
from ocean.observe import _alerts, _targets, fetch, slo_panels
from tests.tui.recorded import RecordedPrometheus


def test_fetch_builds_every_panel_from_the_recording():
    view = fetch(RecordedPrometheus(), slo.load(), now=0)
    assert [r.key for r in view.slos] == [
        *("rate", "errors", "p99", "db_p95", "cache", "budget"),
        *("page_load", "lcp"),  # the last browser run (not in the recording: no value)
    ]
    rate = view.slos[0]
    assert rate.value is not None and rate.value > 0 and rate.history  # recorded under load
    assert {t.state for t in view.targets} == {"up"}


def test_panel_thresholds_come_from_slo_yaml():
    slos = slo.load()
    panels = {p.key: p for p in slo_panels(slos)}
    assert panels["p99"].good(slos.latency.threshold_ms / 1000)
    assert not panels["p99"].good(slos.latency.threshold_ms / 1000 + 0.001)
    assert not panels["errors"].good(0.01) and panels["errors"].good(0.0005)
    assert not panels["cache"].good(0.5)


def test_down_and_flapping_targets_come_first():
    targets = [
        TargetHealth("node", "a:1", "up", "2026-11-28T08:00:01Z", ""),
        TargetHealth("shop", "a:2", "down", "2026-11-28T08:00:01Z", "refused"),
        TargetHealth("redis", "a:3", "up", "2026-11-28T08:00:01Z", ""),
    ]
    rows = _targets(targets, flapping={("redis", "a:3")})
    assert [(r.job, r.state) for r in rows] == [
        ("shop", "down"),
        ("redis", "flapping"),
        ("node", "up"),
    ]
    assert rows[0].last_scrape == "08:00:01"
    # Down now outranks "changed often": a flapping target that is down shows down.
    rows = _targets(targets, flapping={("redis", "a:3"), ("shop", "a:2")})
    assert [(r.job, r.state) for r in rows][:2] == [("shop", "down"), ("redis", "flapping")]


def test_alerts_sort_by_severity_then_firing_first():
    raw = [
        {"labels": {"alertname": "B", "severity": "warning"}, "state": "firing", "annotations": {}},
        {
            "labels": {"alertname": "A", "severity": "critical"},
            "state": "pending",
            "annotations": {},
        },
        {
            "labels": {"alertname": "C", "severity": "critical"},
            "state": "firing",
            "annotations": {"summary": "s", "runbook_url": "docs/runbooks/C.md"},
        },
        {"labels": {"alertname": "W"}, "state": "firing", "annotations": {}},
    ]
    rows = _alerts(raw)
    assert [r.name for r in rows] == ["C", "A", "B", "W"]
    assert rows[0].runbook == "docs/runbooks/C.md" and rows[-1].severity == "none"


def test_page_load_rows_judge_the_last_browser_run_against_slo_yaml():
    slos = slo.load()
    panels = {p.key: p for p in slo_panels(slos)}
    assert panels["page_load"].good(slos.page_load.threshold_ms / 1000)
    assert not panels["page_load"].good(slos.page_load.threshold_ms / 1000 + 0.001)
    assert not panels["lcp"].good(slos.page_load.lcp_threshold_ms / 1000 + 0.001)
    assert 'metric="lcp"' in panels["lcp"].expr
