"""The series checks (ocean.validate.series_checks) against the committed metric catalog:
the repo as shipped is clean, and each broken copy is caught with its file, line and a
hint naming the nearest metric or label values. Also the selector parser they rest on.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ocean.config import REPO_ROOT
from ocean.model import Finding
from ocean.validate import core
from ocean.validate.catalog import CATALOG_PATH
from ocean.validate.selectors import HOLE, Matcher, selectors
from ocean.validate.series_checks import series_selectors

IGNORE = shutil.ignore_patterns("__pycache__", "node_modules")
ALERTS = "monitoring/rules/application.rules.yml"
RECORDS = "monitoring/rules/shop.rules.yml"
DATABASE = "monitoring/rules/database.rules.yml"
OVERVIEW = "monitoring/dashboards/system-overview.json"
OBSERVE = "src/ocean/observe.py"
WEBSOCKET = "testing/k6/websocket.js"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the series check reads: monitoring/, testing/k6, one code module."""
    shutil.copytree(REPO_ROOT / "monitoring", tmp_path / "monitoring", ignore=IGNORE)
    shutil.copytree(REPO_ROOT / "testing" / "k6", tmp_path / "testing" / "k6", ignore=IGNORE)
    (tmp_path / OBSERVE).parent.mkdir(parents=True)
    shutil.copy(REPO_ROOT / OBSERVE, tmp_path / OBSERVE)
    return tmp_path


def edit(path: Path, old: str, new: str) -> int:
    """Replace the first ``old`` by ``new``; the 1-based line where it was."""
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
    return text[: text.index(old)].count("\n") + 1


def only(findings: list[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# -- the repo as shipped -------------------------------------------------------------------


def test_the_check_is_registered_under_its_kind():
    assert core.registry()["series-selectors"].kind == "series"


def test_the_repo_as_shipped_has_no_series_finding():
    started = time.process_time()
    assert series_selectors(REPO_ROOT) == []
    # Its own CPU, whatever else the machine runs: a small share of validate's 5 s.
    assert time.process_time() - started < 2.0


def test_a_clean_copy_is_clean(repo: Path):
    assert series_selectors(repo) == []


# -- (1) a typo'd metric -------------------------------------------------------------------


def test_typo_in_an_alert_names_file_line_and_nearest_metric(repo: Path):
    line = edit(
        repo / ALERTS,
        'sum by (job, color) (rate(shop_http_requests_total{status="5xx"',
        'sum by (job, color) (rate(shop_http_request_total{status="5xx"',
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line, finding.severity) == (ALERTS, line, "error")
    assert "alert ShopHighErrorRate" in finding.message
    assert "unknown metric 'shop_http_request_total'" in finding.message
    assert 'shop_http_request_total{status="5xx"' in finding.message  # the selector
    assert finding.hint.startswith("nearest: shop_http_requests_total")


def test_typo_in_a_recording_rule(repo: Path):
    line = edit(
        repo / RECORDS,
        "(rate(shop_db_query_duration_seconds_bucket[5m]))",
        "(rate(shop_db_query_duration_second_bucket[5m]))",
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (RECORDS, line)
    assert "recording rule shop:db_query_duration_seconds:p95_5m" in finding.message
    assert "shop_db_query_duration_seconds_bucket" in finding.hint


def test_typo_in_a_dashboard_panel(repo: Path):
    line = edit(
        repo / OVERVIEW, "sum(rate(shop_orders_created_total{", "sum(rate(shop_order_created_total{"
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (OVERVIEW, line)
    assert "panel" in finding.message and "shop_order_created_total" in finding.message
    assert "shop_orders_created_total" in finding.hint


def test_a_metric_named_in_a_recording_rule_is_known(repo: Path):
    # a rule reading another rule's output: no catalog entry needed for that name
    catalog = json.loads((repo / CATALOG_PATH).read_text())
    del catalog["metrics"]["shop:http_requests:rate5m"]
    (repo / CATALOG_PATH).write_text(json.dumps(catalog))
    edit(repo / DATABASE, 'pg_up{job="postgres"} == 0', "shop:http_requests:rate5m == 0")
    assert series_selectors(repo) == []


def test_typo_in_the_consoles_query(repo: Path):
    line = edit(
        repo / OBSERVE,
        "rate(shop_http_requests_total{{{api}}}[1m]",
        "rate(shop_http_requests_totl{{{api}}}[1m]",
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (OBSERVE, line)
    assert "shop_http_requests_totl{…}" in finding.message  # what code fills in: …
    assert "shop_http_requests_total" in finding.hint


def test_typo_in_a_joined_literal_names_the_line_of_its_piece(repo: Path):
    guards = "src/ocean/loadtest/guards.py"
    (repo / guards).parent.mkdir(parents=True)
    shutil.copy(REPO_ROOT / guards, repo / guards)
    line = edit(
        repo / guards,
        """/ sum(rate(k6_http_reqs_total{{testid""",
        """/ sum(rate(k6_http_req_total{{testid""",
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (guards, line)  # the second of two lines
    assert "k6_http_reqs_total" in finding.hint


def test_typo_in_a_k6_threshold(repo: Path):
    line = edit(
        repo / WEBSOCKET, "thresholds: { ws_first_message:", "thresholds: { ws_first_mesage:"
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (WEBSOCKET, line)
    assert "k6 reports no metric 'ws_first_mesage'" in finding.message
    assert "ws_first_message" in finding.hint


# -- (2) an impossible label matcher -------------------------------------------------------


def test_impossible_label_value_names_the_values(repo: Path):
    line = edit(repo / DATABASE, 'pg_up{job="postgres"}', 'pg_up{job="postgre"}')
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line, finding.severity) == (DATABASE, line, "error")
    assert 'job="postgre" matches no pg_up series' in finding.message
    assert finding.hint.startswith("nearest: postgres;")


def test_impossible_status_in_a_multi_line_alert(repo: Path):
    line = edit(
        repo / ALERTS,
        'shop_http_requests_total{status="5xx"',
        'shop_http_requests_total{status="500"',
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (ALERTS, line)
    assert 'status="500" matches no shop_http_requests_total series' in finding.message
    assert "status is one of 1xx, 2xx, 3xx, 4xx, 5xx" in finding.hint


def test_regex_matching_no_value_in_a_dashboard(repo: Path):
    line = edit(repo / OVERVIEW, 'result=\\"hit\\"', 'result=~\\"hits|cached\\"')
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (OVERVIEW, line)
    assert 'result=~"hits|cached" matches no shop_cache_requests_total series' in finding.message
    assert "hit" in finding.hint


def test_impossible_value_on_a_recording_rules_output(repo: Path):
    slo_rules = "monitoring/rules/slo.rules.yml"
    line = edit(
        repo / slo_rules,
        'slo:sli_error:ratio_rate5m{slo="availability"}',
        'slo:sli_error:ratio_rate5m{slo="availabilty"}',
    )
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (slo_rules, line)
    assert 'slo="availabilty" matches no slo:sli_error:ratio_rate5m series' in finding.message
    assert finding.hint.startswith("nearest: availability")


def test_a_label_the_metric_does_not_carry(repo: Path):
    line = edit(repo / DATABASE, 'pg_up{job="postgres"}', 'pg_up{colour="blue"}')
    finding = only(series_selectors(repo))
    assert (finding.file, finding.line) == (DATABASE, line)
    assert "pg_up has no label 'colour'" in finding.message
    assert "its labels:" in finding.hint and "job" in finding.hint


def test_negative_and_unknowable_matchers_are_not_flagged(repo: Path):
    edit(
        repo / DATABASE,
        'pg_up{job="postgres"}',
        'pg_up{job!="nope",job!~"x.*",instance="anything"}',
    )
    edit(repo / OVERVIEW, 'result=\\"hit\\"', 'result=\\"$result\\"')
    assert series_selectors(repo) == []


def test_no_catalog_is_an_error_not_a_pass(repo: Path):
    (repo / CATALOG_PATH).unlink()
    finding = only(series_selectors(repo))
    assert (finding.file, finding.severity) == (CATALOG_PATH, "error")
    assert "--refresh-catalog" in finding.hint


# -- the selector parser -------------------------------------------------------------------


def names(expr: str) -> list[str]:
    return [s.name for s in selectors(expr)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", ["up"]),
        ('sum by (job, color) (rate(x_total{a="b"}[5m])) / on (job) y', ["x_total", "y"]),
        ("sum(rate(a_total[5m])) by (le) > bool 0", ["a_total"]),
        ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[1m] offset 1h)))", ["b_bucket"]),
        ('label_replace(up, "dst", "$1", "src", "(.*)")', ["up"]),
        ("max_over_time(c[1h:5m]) and ignoring (x) d unless e", ["c", "d", "e"]),
        ('{__name__="f", job="g"}', ["f"]),
        ("1e3 * g + inf # a comment: h\n", ["g"]),
        ("slo:sli_error:ratio_rate5m > 0", ["slo:sli_error:ratio_rate5m"]),
        (f"slo:sli_error:ratio_rate{HOLE} > 0", []),  # a name code completes: skipped
        ("rate(x[$__rate_interval]) > $threshold", ["x"]),
    ],
)
def test_selectors_finds_metric_names(expr: str, expected: list[str]):
    assert names(expr) == expected


def test_selectors_reads_matchers_and_marks_unknowable_values():
    [selector] = selectors(
        f'x{{a="1", b!="2", c=~"3|4", d!~`5`, e="$color", f="{HOLE}", {HOLE}}}[5m]'
    )
    assert selector.matchers == (
        Matcher("a", "=", "1"),
        Matcher("b", "!=", "2"),
        Matcher("c", "=~", "3|4"),
        Matcher("d", "!~", "5"),
        Matcher("e", "=", "$color", known=False),
        Matcher("f", "=", HOLE, known=False),
    )


def test_selectors_never_raises_on_broken_text():
    for expr in ("x{", "x{a=}", "((", "x[5m", '"unterminated', "{", "}", 'x{a="1"', ""):
        selectors(expr)  # returns what it can; no exception
