"""Grafana dashboards (monitoring/dashboards/*.json) and provisioning, checked offline.

Grafana cannot run here, so each dashboard is checked the way Grafana and Prometheus
would see it: valid JSON, unique panel ids, every panel on the templated
``${datasource}`` variable, every PromQL expression parseable, and every range of a
rate-like function on ``$__rate_interval``.

How expressions are parsed: promtool has no "parse this expression" command, so the
Grafana variables are substituted (``$__rate_interval`` → 1m, ``$__range`` → 1h, any
other variable → a placeholder) and every expression is written as a recording rule,
one group per panel target, into a temporary rules file that ``promtool check rules``
parses with Prometheus' own parser. An error names the group, i.e. the dashboard, panel
and refId.

Fixed windows: a range inside rate/increase/irate/*_over_time must be
``$__rate_interval``, unless the panel's description says ``fixed window`` (an SLO
panel over 30 d, say): that documents the window on the dashboard itself.

The helpers (PromQL tokeniser ``metric_names``, dashboard walking, the datasource and
``$__rate_interval`` rules, ``check_expressions``) live in
``ocean.validate.dashboard_checks`` and ``ocean.validate.promql``, which ``invoke
validate`` runs; ``metric_names`` is re-exported here for the live check
(tests/integration/test_monitoring_live.py) to list the metric names an expression
reads.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from ocean.config import REPO_ROOT
from ocean.validate.dashboard_checks import (
    all_panels,
    datasource_problems,
    expressions,
    rate_interval_problems,
)
from ocean.validate.dashboard_checks import dashboard_files as _dashboard_files
from ocean.validate.promql import (
    GRAFANA_DURATIONS,
    PLACEHOLDER,
    metric_names,
    range_selectors,
    substitute_variables,
)
from ocean.validate.promql import check_expressions as _check_expressions

MONITORING = REPO_ROOT / "monitoring"
DASHBOARDS = MONITORING / "dashboards"
PROVISIONING = MONITORING / "grafana" / "provisioning"
# Written by this work; slo.json is generated from monitoring/slo.yaml by another tool
# and checked as soon as it exists (every *.json in the directory is).
OWN_DASHBOARDS = ("system-overview.json", "database-performance.json", "deploys.json")

# ---------------------------------------------------------------------------------------
# The helpers live in the validation core (`invoke validate`); re-exported for the live
# check (tests/integration/test_monitoring_live.py).

__all__ = ["GRAFANA_DURATIONS", "PLACEHOLDER", "metric_names", "substitute_variables"]


def dashboard_files() -> list[Path]:
    return _dashboard_files(REPO_ROOT)


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def dashboard_ids() -> list[str]:
    return [path.name for path in dashboard_files()]


# ---------------------------------------------------------------------------------------
# Tests of the tokeniser itself


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        (
            'sum by (job, color) (rate(shop_http_requests_total{status="5xx"}[1m]))',
            {"shop_http_requests_total"},
        ),
        (
            "histogram_quantile(0.99, sum by (le) "
            "(rate(shop_http_request_duration_seconds_bucket[$__rate_interval])))",
            {"shop_http_request_duration_seconds_bucket"},
        ),
        (
            "a / on (instance) group_left (version, color) b offset 5m > bool 0",
            {"a", "b"},
        ),
        ('label_replace(up, "dst", "$1", "src", "(by)")', {"up"}),
        ("sum(x) without (le) or vector(0) unless on() absent(y)", {"x", "y"}),
        ("max_over_time(rate(z[5m])[1h:1m]) * 1e3 + Inf - NaN", {"z"}),
        ('job:x:rate1m{color=~"$color"} # by (nope)\n', {"job:x:rate1m"}),
        ('count_values("version", shop_build_info{color="${color}"})', {"shop_build_info"}),
        ("topk(5, sum by (query) (rate(q_total[$__rate_interval])))", {"q_total"}),
        ('{__name__="only_matcher"}', set()),
    ],
)
def test_metric_names(expr: str, names: set[str]):
    assert metric_names(expr) == names


def test_range_selectors():
    expr = 'sum(rate(a{x="[1m]"}[$__rate_interval])) / max_over_time(b[5m]) + c[1h]'
    assert list(range_selectors(expr)) == [
        ("rate", "$__rate_interval"),
        ("max_over_time", "5m"),
        ("", "1h"),
    ]


# ---------------------------------------------------------------------------------------
# The dashboards


def test_own_dashboards_exist():
    missing = [name for name in OWN_DASHBOARDS if not (DASHBOARDS / name).is_file()]
    assert missing == []


@pytest.mark.parametrize("name", dashboard_ids())
def test_dashboard_is_valid(name: str):
    dashboard = load(DASHBOARDS / name)
    assert isinstance(dashboard, dict)
    assert dashboard.get("title"), "a dashboard needs a title"
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dashboard.get("uid", "")), "uid: 1-40 [A-Za-z0-9_-]"
    assert isinstance(dashboard.get("panels"), list) and dashboard["panels"]
    for panel in all_panels(dashboard):
        assert panel.get("type"), panel
        grid = panel.get("gridPos", {})
        assert {"h", "w", "x", "y"} <= grid.keys(), f"{panel.get('title')}: gridPos"
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{panel.get('title')}: width"


def test_dashboard_uids_and_titles_are_unique():
    dashboards = [load(path) for path in dashboard_files()]
    uids = [d.get("uid") for d in dashboards]
    titles = [d.get("title") for d in dashboards]
    assert len(set(uids)) == len(uids), uids
    assert len(set(titles)) == len(titles), titles


@pytest.mark.parametrize("name", dashboard_ids())
def test_panel_ids_are_unique(name: str):
    ids = [panel.get("id") for panel in all_panels(load(DASHBOARDS / name))]
    assert None not in ids, "every panel needs an id"
    assert len(set(ids)) == len(ids), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("name", dashboard_ids())
def test_datasource_is_templated(name: str):
    assert datasource_problems(load(DASHBOARDS / name)) == []


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_panel_queries_something(name: str):
    empty = [
        panel.get("title")
        for panel in all_panels(load(DASHBOARDS / name))
        if panel.get("type") not in ("row", "text", "dashlist", "news")
        and not any(t.get("expr") for t in panel.get("targets", []))
    ]
    assert empty == []


@pytest.mark.parametrize("name", dashboard_ids())
def test_rate_ranges_use_rate_interval(name: str):
    assert rate_interval_problems(load(DASHBOARDS / name)) == []


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed")
    return path


def check_expressions(promtool: str, exprs: list[tuple[str, str]], tmp_path: Path) -> str:
    """promtool's complaints about ``exprs`` ((label, expr) pairs); "" when all parse."""
    return _check_expressions(promtool, exprs, tmp_path)


def test_promtool_rejects_a_broken_expression(promtool: str, tmp_path: Path):
    assert check_expressions(promtool, [("fine", "sum(rate(x[$__rate_interval]))")], tmp_path) == ""
    assert "broken" in check_expressions(promtool, [("broken", "sum(rate(x[5m])")], tmp_path)


@pytest.mark.parametrize("name", dashboard_ids())
def test_every_expression_parses(name: str, promtool: str, tmp_path: Path):
    exprs = [
        (f"{name} | {title} | {ref_id} #{index}", expr)
        for index, (title, ref_id, expr) in enumerate(expressions(load(DASHBOARDS / name)))
    ]
    assert exprs, "no PromQL in this dashboard"
    assert check_expressions(promtool, exprs, tmp_path) == ""


# ---------------------------------------------------------------------------------------
# Provisioning


def test_datasource_provisioning():
    config = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yml").read_text())
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["uid"] == "prometheus"
    # The URL comes from Grafana's environment ($VAR or ${VAR}: Grafana's own syntax).
    assert re.fullmatch(r"\$\{?[A-Z_][A-Z0-9_]*\}?", source["url"]), source["url"]


def test_dashboard_provisioning():
    config = yaml.safe_load((PROVISIONING / "dashboards" / "ocean.yml").read_text())
    assert config["apiVersion"] == 1
    (provider,) = config["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"]
    assert provider.get("folder")
