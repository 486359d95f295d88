"""monitoring/slo.yaml: validation, and the files generated from it (ocean.slo)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ocean import slo
from ocean.config import REPO_ROOT

RAW = yaml.safe_load((REPO_ROOT / slo.SLO_FILE).read_text())


def test_generated_files_are_fresh():
    """Fails when slo.yaml or the generator changed without `python -m ocean.slo generate`."""
    assert slo.stale() == [], "run: python -m ocean.slo generate"


def test_check_names_each_stale_file(tmp_path: Path):
    shutil.copytree(REPO_ROOT / "monitoring", tmp_path / "monitoring")
    shutil.copytree(REPO_ROOT / "stack/shop/ocean_shop", tmp_path / "stack/shop/ocean_shop")
    assert slo.write(tmp_path)  # testing/, docs/runbooks/ were missing
    assert slo.stale(tmp_path) == []
    (tmp_path / "testing/k6/thresholds.json").write_text("{}\n")
    (tmp_path / "docs/runbooks/ShopCacheHitRatioLow.md").unlink()
    orphan = tmp_path / "docs/runbooks/ShopGoneAlert.md"
    orphan.write_text(f"<!-- {slo.HEADER}. -->\n")
    (tmp_path / "docs/runbooks/HandWritten.md").write_text("# not generated\n")
    assert slo.stale(tmp_path) == [
        "testing/k6/thresholds.json (out of date)",
        "docs/runbooks/ShopCacheHitRatioLow.md (missing)",
        "docs/runbooks/ShopGoneAlert.md (no longer generated: delete it)",
    ]


def test_every_generated_file_carries_the_header():
    for rel, text in slo.generate(slo.load()).items():
        assert slo.HEADER in text.splitlines()[0] or slo.HEADER in text[:400], rel


def test_load_returns_the_promises():
    s = slo.load()
    assert s.availability.objective == RAW["slos"]["availability"]["objective"]
    assert s.latency.threshold_ms == RAW["slos"]["latency"]["threshold_ms"]
    assert s.page_load.status == RAW["slos"]["page_load"]["status"]
    assert s.page_load.lcp_threshold_ms == RAW["slos"]["page_load"]["lcp_threshold_ms"]
    assert s.capacity.concurrent_users == RAW["slos"]["capacity"]["concurrent_users"]
    assert [a.factor for a in s.burn_rate_alerts] == [a["factor"] for a in RAW["burn_rate_alerts"]]


def _error(mutate) -> str:
    data = copy.deepcopy(RAW)
    mutate(data)
    with pytest.raises(slo.SLOError) as exc:
        slo.parse(data)
    return str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["slos"]["availability"].update(objective=100), "slos.availability.objective"),
        (lambda d: d["slos"]["availability"].update(objective="high"), "must be a number"),
        (lambda d: d["slos"]["latency"].update(threshold_ms=150), "not a bucket"),
        (lambda d: d["slos"]["latency"].pop("objective"), "slos.latency.objective: missing"),
        (lambda d: d["slos"]["db_query_latency"].update(percentile=90), "must be one of"),
        (lambda d: d["slos"]["cache_hit_ratio"].update(fo="1m"), "cache_hit_ratio.fo: unknown"),
        (lambda d: d["slos"]["cache_hit_ratio"].update({"for": "soon"}), "not a duration"),
        (lambda d: d["burn_rate_alerts"][0].update(long="4h"), "must be a recorded window"),
        (lambda d: d["burn_rate_alerts"][0].update(short="1h"), "must be shorter than long"),
        (lambda d: d["burn_rate_alerts"][0].update({"for": "2h"}), "[0].for: must not exceed"),
        (lambda d: d["burn_rate_alerts"][0].update(severity="page"), "critical|warning"),
        (lambda d: d["burn_rate_alerts"][1].update(name="Fast"), "duplicate alert name"),
        (lambda d: d.update(slos=[]), "slos: must be a mapping"),
    ],
)
def test_validation_names_the_key(mutate, expected):
    assert expected in _error(mutate)


def test_validation_reports_every_problem_at_once():
    def mutate(d):
        d["slos"]["availability"]["objective"] = 0
        d["slos"]["latency"]["window"] = "a month"

    message = _error(mutate)
    assert "2 problem(s)" in message
    assert "slos.availability.objective" in message and "slos.latency.window" in message


def test_unreadable_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(slo.SLOError, match="cannot read"):
        slo.load(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("slos: [\n")
    with pytest.raises(slo.SLOError, match="not valid YAML"):
        slo.load(tmp_path / "bad.yaml")


def test_the_latency_threshold_is_a_shop_histogram_bucket():
    from ocean_shop.metrics import HTTP_BUCKETS

    assert slo.load().latency.threshold_seconds in HTTP_BUCKETS


# ---- nothing hand-copied: change a number in slo.yaml, the generated files follow ----


def _generate(mutate) -> dict[str, str]:
    data = copy.deepcopy(RAW)
    mutate(data)
    return slo.generate(slo.parse(data))


def test_thresholds_follow_slo_yaml():
    def mutate(d):
        d["slos"]["availability"]["objective"] = 99.5
        d["slos"]["latency"]["threshold_ms"] = 300
        d["slos"]["db_query_latency"]["threshold_ms"] = 250
        d["slos"]["cache_hit_ratio"]["min_percent"] = 90
        d["slos"]["capacity"]["concurrent_users"] = 20000
        d["burn_rate_alerts"][0]["factor"] = 10

    files = _generate(mutate)
    rules = files["monitoring/rules/slo.rules.yml"]
    assert '{slo="availability"} > (10 * 0.005)' in rules
    assert 'le="0.3"' in rules and 'le="0.2"' not in rules
    assert "shop:db_query_duration_seconds:p95_5m > 0.25" in rules
    assert "shop:cache_hit:ratio_rate5m < 0.9" in rules
    k6 = json.loads(files["testing/k6/thresholds.json"])
    assert k6["thresholds"] == {
        "http_req_duration": ["p(99)<300"],
        "http_req_failed": ["rate<0.005"],
    }
    assert k6["target_concurrent_users"] == 20000
    assert "0.5%" in files["docs/runbooks/ShopAvailabilityBudgetBurnFast.md"]


def test_alerts_are_complete_and_have_runbooks():
    s = slo.load()
    files = slo.generate(s)
    doc = yaml.safe_load(files["monitoring/rules/slo.rules.yml"])
    alerts = [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
    assert [a["alert"] for a in alerts] == slo.alert_names(s)
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}
        assert alert["labels"]["team"] == "shop"
        assert set(alert["annotations"]) == {"summary", "description", "runbook_url"}
        runbook = alert["annotations"]["runbook_url"]
        assert runbook == f"docs/runbooks/{alert['alert']}.md"
        text = files[runbook]
        for task in ("./ocean status", "./ocean logs shop-blue", "./ocean restart", "invoke"):
            assert task in text, (runbook, task)
    checks = [
        t
        for rel, text in files.items()
        if rel.startswith(slo.TESTS_DIR + "/")
        for case in yaml.safe_load(text)["tests"]
        for t in case["alert_rule_test"]
    ]
    tested = {t["alertname"] for t in checks if t["exp_alerts"]}
    silent = {t["alertname"] for t in checks if not t["exp_alerts"]}
    assert tested == silent == set(slo.alert_names(s))


def test_published_recording_rule_names():
    s = slo.load()
    shop = yaml.safe_load(slo.generate(s)["monitoring/rules/shop.rules.yml"])
    names = {r["record"] for g in shop["groups"] for r in g["rules"]}
    expected = {
        "shop:http_requests:rate5m",
        "shop:http_errors:ratio_rate5m",
        "shop:http_request_duration_seconds:p99_5m",
        "shop:http_request_duration_seconds:p95_5m",
        "shop:db_query_duration_seconds:p95_5m",
        "shop:cache_hit:ratio_rate5m",
        "shop:orders_created:rate1m_per_minute",
    }
    assert names == expected
    published = (REPO_ROOT / slo.SLO_FILE).read_text()
    for name in [*expected, "slo:sli_error:ratio_rate<W>"]:
        assert name in published, name
    doc = yaml.safe_load(slo.generate(s)["monitoring/rules/slo.rules.yml"])
    sli = {(r["record"], r["labels"]["slo"]) for r in doc["groups"][0]["rules"]}
    assert sli == {
        (f"slo:sli_error:ratio_rate{w}", name)
        for w in slo.SLI_WINDOWS
        for name in ("availability", "latency")
    }


def test_dashboard_uses_the_datasource_variable_and_rate_interval():
    dash = json.loads(slo.generate(slo.load())["monitoring/dashboards/slo.json"])
    assert dash["templating"]["list"][0]["name"] == "datasource"
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "${datasource}"
            for window in re.findall(r"\[([^\]]+)\]", target["expr"]):
                assert window == "$__rate_interval", (panel["title"], target["expr"])


def test_page_load_generates_no_rule():
    s = slo.load()
    rules = slo.generate(s)["monitoring/rules/slo.rules.yml"]
    assert str(int(s.page_load.threshold_ms)) not in rules and "page" not in rules.lower()


@pytest.mark.skipif(not shutil.which("promtool"), reason="promtool not installed")
def test_promtool_checks_and_tests_the_rules():
    rules = REPO_ROOT / "monitoring/rules"
    check = subprocess.run(
        ["promtool", "check", "rules", rules / "shop.rules.yml", rules / "slo.rules.yml"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    generated = sorted(rel for rel in slo.generate(slo.load()) if rel.startswith(slo.TESTS_DIR))
    test = subprocess.run(
        ["promtool", "test", "rules", *(REPO_ROOT / rel for rel in generated)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert test.returncode == 0, test.stdout + test.stderr


def test_cli_check_exits_zero_when_fresh():
    assert slo.main(["check"]) == 0
    assert slo.main(["bogus"]) == 2
