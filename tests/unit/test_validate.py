"""`invoke validate` (ocean.validate): the repo as shipped is clean, and each check
catches its own kind of breakage in a copy of the repo (one broken thing per fixture).

promtool and amtool ship with the prometheus / prometheus-alertmanager Debian packages
the stack needs anyway.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ocean import busy
from ocean.config import REPO_ROOT
from ocean.model import Finding
from ocean.validate import core

COPIED = ("monitoring", "docs/runbooks", "stack", "testing")
MY_KINDS = {"prometheus", "rules", "rule-tests", "alertmanager", "dashboards", "cross-file", "slo"}
IGNORE = shutil.ignore_patterns(".venv", "__pycache__", "*.egg-info", "node_modules")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the files the monitoring checks read."""
    for rel in COPIED:
        shutil.copytree(REPO_ROOT / rel, tmp_path / rel, ignore=IGNORE)
    return tmp_path


def run_check(root: Path, name: str) -> list[Finding]:
    return core.registry()[name].fn(root)


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def test_registry_has_the_monitoring_checks():
    checks = core.registry()
    assert core.kinds() >= MY_KINDS
    for name in (
        "prometheus-config",
        "scrape-jobs",
        "promtool-check-rules",
        "promtool-test-rules",
        "alert-runbooks",
        "slo-generated",
        "alertmanager-config",
        "dashboard-structure",
        "dashboard-datasource",
        "dashboard-rate-interval",
        "dashboard-queries",
    ):
        assert name in checks


def test_the_repo_as_shipped_is_clean(capsys):
    started = time.monotonic()
    findings = core.run(REPO_ROOT)
    took = time.monotonic() - started
    with capsys.disabled():
        print(f"\nwhole validation ({len(core.registry())} checks): {took:.1f}s")
    assert [f for f in findings if f.severity == "error"] == []
    assert findings == [], findings  # no warning either


def test_a_clean_copy_is_flagged_by_nothing(repo: Path):
    # rule-tests: the shipped run above covers them (≈ 10 s); the rest on the copy.
    assert core.run(repo, MY_KINDS - {"rule-tests"}) == []


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown check kind nope: choose from"):
        core.run(REPO_ROOT, {"nope"})


# -- one broken thing per fixture ------------------------------------------------------

RULES = "monitoring/rules/application.rules.yml"
AM = "monitoring/alertmanager/alertmanager.yml"
PROM = "monitoring/prometheus/prometheus.yml"
DEPLOYS = "monitoring/dashboards/deploys.json"


def _promql_typo(root: Path) -> None:
    edit(root / RULES, "sum by (job, color) (rate(", "sum by (job, color) (rate((")


def _bad_prometheus_config(root: Path) -> None:
    edit(root / PROM, "evaluation_interval: {{ evaluation_interval }}", "evaluation_interval: 1x")


def _scrape_job_without_service(root: Path) -> None:
    (root / PROM).write_text(
        (root / PROM).read_text()
        + '\n  - job_name: orphan\n    static_configs:\n      - targets: ["127.0.0.1:1"]\n'
    )


def _undefined_receiver(root: Path) -> None:
    edit(root / AM, "    - receiver: email\n", "    - receiver: emial\n")


def _inhibit_without_equal(root: Path) -> None:
    edit(root / AM, "    equal: [alertname, service]\n", "")


def _unused_receiver(root: Path) -> None:
    edit(root / AM, "receivers:\n", "receivers:\n  - name: spare\n")


def _amtool_rejects(root: Path) -> None:
    edit(root / AM, "  resolve_timeout: 5m", "  resolve_timeout: five minutes")


def _bad_dashboard_query(root: Path) -> None:
    edit(root / DEPLOYS, '> 0"', '> "', 1)


def _duplicate_panel_ids(root: Path) -> None:
    edit(root / DEPLOYS, '"id": 2,', '"id": 1,')


def _invalid_json(root: Path) -> None:
    edit(root / DEPLOYS, '"uid": "ocean-deploys",', '"uid": "ocean-deploys",,')


def _datasource_not_templated(root: Path) -> None:
    edit(root / DEPLOYS, '"uid": "${datasource}"', '"uid": "prometheus"', 2)


def _fixed_rate_range(root: Path) -> None:
    edit(root / DEPLOYS, "[$__rate_interval]))", "[5m]))")


def _alert_without_runbook(root: Path) -> None:
    (root / "docs/runbooks/ShopHighErrorRate.md").unlink()


def _stale_generated_rules(root: Path) -> None:
    path = root / "monitoring/rules/slo.rules.yml"
    path.write_text(path.read_text() + "# edited by hand\n")


def _one_rule_test_file(root: Path) -> None:
    """Keep the fixture fast: only application's promtool tests (< 1 s, not ≈ 10 s)."""
    for path in (root / "monitoring/rules/tests").glob("*.yml"):
        if path.name != "application.rules.test.yml":
            path.unlink()


def _failing_rule_test(root: Path) -> None:
    edit(
        root / "monitoring/rules/tests/application.rules.test.yml",
        "summary: 'Shop blue: 10% of requests fail",
        "summary: 'Shop blue: 11% of requests fail",
    )


CASES: list[tuple[str, Callable[[Path], None], str, str, str]] = [
    # (id, break, check that runs, finding's check, file)
    ("promql-typo", _promql_typo, "promtool-check-rules", "promtool-check-rules", RULES),
    ("prometheus-config", _bad_prometheus_config, "prometheus-config", "prometheus-config", PROM),
    ("scrape-job", _scrape_job_without_service, "scrape-jobs", "scrape-jobs", PROM),
    ("undefined-receiver", _undefined_receiver, "alertmanager-config", "alertmanager-routes", AM),
    ("inhibit-equal", _inhibit_without_equal, "alertmanager-config", "alertmanager-routes", AM),
    ("unused-receiver", _unused_receiver, "alertmanager-config", "alertmanager-routes", AM),
    ("amtool", _amtool_rejects, "alertmanager-config", "alertmanager-config", AM),
    ("dashboard-query", _bad_dashboard_query, "dashboard-queries", "dashboard-queries", DEPLOYS),
    ("panel-ids", _duplicate_panel_ids, "dashboard-structure", "dashboard-structure", DEPLOYS),
    ("invalid-json", _invalid_json, "dashboard-structure", "dashboard-structure", DEPLOYS),
    (
        "datasource",
        _datasource_not_templated,
        "dashboard-datasource",
        "dashboard-datasource",
        DEPLOYS,
    ),
    (
        "rate-interval",
        _fixed_rate_range,
        "dashboard-rate-interval",
        "dashboard-rate-interval",
        DEPLOYS,
    ),
    ("runbook", _alert_without_runbook, "alert-runbooks", "alert-runbooks", RULES),
    (
        "stale-slo",
        _stale_generated_rules,
        "slo-generated",
        "slo-generated",
        "monitoring/rules/slo.rules.yml",
    ),
    (
        "rule-test",
        _failing_rule_test,
        "promtool-test-rules",
        "promtool-test-rules",
        "monitoring/rules/tests/application.rules.test.yml",
    ),
]


@pytest.mark.parametrize(
    ("breaker", "name", "finding", "file"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_breakage_is_caught(repo: Path, breaker, name: str, finding: str, file: str):
    if name == "promtool-test-rules":
        _one_rule_test_file(repo)
    assert run_check(repo, name) == [], "the clean copy must pass first"
    breaker(repo)
    found = run_check(repo, name)
    assert found, f"{name} missed it"
    assert {f.check for f in found} >= {finding}, found
    assert any(f.check == finding and f.file == file for f in found), found
    for f in found:
        assert f.severity in ("error", "warning") and f.message


def test_passing_rule_tests_are_cached_by_content(repo: Path, tmp_path: Path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("OCEAN_VALIDATE_CACHE", str(cache))
    _one_rule_test_file(repo)
    assert run_check(repo, "promtool-test-rules") == []
    assert len(list(cache.iterdir())) == 1
    _failing_rule_test(repo)  # new content, new key: promtool runs again
    (found,) = run_check(repo, "promtool-test-rules")
    assert found.check == "promtool-test-rules"
    assert len(list(cache.iterdir())) == 1  # a failure is never remembered
    monkeypatch.setenv("OCEAN_VALIDATE_CACHE", "0")
    assert run_check(repo, "promtool-test-rules") == [found]


def test_rule_findings_carry_the_rule_line(repo: Path):
    _promql_typo(repo)
    (found,) = run_check(repo, "promtool-check-rules")
    assert found.line == 10  # the `- alert: ShopHighErrorRate` line
    assert "parse error" in found.message


def test_dashboard_findings_carry_a_line(repo: Path):
    _duplicate_panel_ids(repo)
    (found,) = run_check(repo, "dashboard-structure")
    assert found.line and "panel id 1" in found.message


def test_kind_selection(repo: Path):
    _invalid_json(repo)
    assert core.run(repo, {"slo"}) == []
    assert [f.check for f in core.run(repo, {"dashboards"})].count("dashboard-structure") == 1


# -- the runner --------------------------------------------------------------------------


@pytest.fixture
def scratch_checks():
    """Register throwaway checks; remove them afterwards."""
    before = dict(core.registry())
    yield
    core._REGISTRY.clear()
    core._REGISTRY.update(before)


def test_a_crashing_check_becomes_a_finding(scratch_checks):
    @core.check(kind="scratch", name="scratch-crash")
    def crash(root: Path) -> list[Finding]:
        raise RuntimeError("boom")

    (found,) = core.run(REPO_ROOT, {"scratch"})
    assert found.check == "scratch-crash" and found.severity == "error"
    assert "RuntimeError: boom" in found.message


def test_a_hung_check_times_out(scratch_checks, monkeypatch):
    monkeypatch.setattr(core.os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle machine

    @core.check(kind="scratch", name="scratch-hang", timeout=0.2)
    def hang(root: Path) -> list[Finding]:
        time.sleep(2)
        return []

    started = time.monotonic()
    (found,) = core.run(REPO_ROOT, {"scratch"})
    assert time.monotonic() - started < 1.5
    assert found.check == "scratch-hang" and "timed out" in found.message


def test_a_hung_check_gets_more_time_on_a_busy_machine(scratch_checks, monkeypatch):
    # Load average 8 on 2 cores: budgets stretch four-fold, so a check that needs
    # 0.5 s against a budget of 0.2 s passes instead of "timing out".
    monkeypatch.setattr(core.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    monkeypatch.setattr(core.os, "sched_getaffinity", lambda _pid: {0, 1})  # what busy.py reads
    assert busy.factor() == 4.0 and core.scaled(10) == 40.0

    @core.check(kind="scratch", name="scratch-slow", timeout=0.2)
    def slow(root: Path) -> list[Finding]:
        time.sleep(0.5)
        return []

    assert core.run(REPO_ROOT, {"scratch"}) == []


def test_a_queued_check_has_its_whole_budget(scratch_checks, monkeypatch):
    # One worker, two checks of 0.4 s with a 0.6 s budget each: the second starts
    # 0.4 s into the run and must not be charged for the wait.
    monkeypatch.setattr(core.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    for name in ("scratch-a", "scratch-b"):

        @core.check(kind="scratch", name=name, timeout=0.6)
        def busy(root: Path) -> list[Finding]:
            time.sleep(0.4)
            return []

    assert core.run(REPO_ROOT, {"scratch"}, workers=1) == []


def test_findings_serialise():
    finding = Finding("c", "k", "error", "a/b.yml", 3, "m", "h")
    assert json.loads(json.dumps(finding.as_dict()))["line"] == 3
    assert finding.where == "a/b.yml:3"
    assert re.fullmatch(r"-", Finding("c", "k", "warning", "", None, "m").where)
