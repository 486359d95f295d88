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

The PromQL tokeniser here (``metric_names``) is also used by the live check
(tests/integration/test_monitoring_live.py) to list the metric names an expression
reads.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ocean.config import REPO_ROOT

MONITORING = REPO_ROOT / "monitoring"
DASHBOARDS = MONITORING / "dashboards"
PROVISIONING = MONITORING / "grafana" / "provisioning"
# Written by this work; slo.json is generated from monitoring/slo.yaml by another tool
# and checked as soon as it exists (every *.json in the directory is).
OWN_DASHBOARDS = ("system-overview.json", "database-performance.json", "deploys.json")

# ---------------------------------------------------------------------------------------
# PromQL helpers (shared with the live check)

GRAFANA_DURATIONS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
    "__interval_ms": "60000",
}
# A Grafana variable: $name, ${name}, ${name:format}, [[name]].
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
PLACEHOLDER = "grafana_variable"

FUNCTIONS_WANTING_RATE_INTERVAL = re.compile(r"^(rate|irate|increase|\w+_over_time)$")

KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "bool",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
}
# Keywords followed by a parenthesised list of label names, not expressions.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_TOKEN = re.compile(
    r"(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)"
    r"|(?P<number>\d[\w.]*(?:[eE][+-]?\d+)?)"
    r"|(?P<open>\()|(?P<close>\))"
    r"|(?P<other>\S)"
)


def substitute_variables(expr: str) -> str:
    """``expr`` with Grafana's variables replaced by values PromQL accepts."""

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        return GRAFANA_DURATIONS.get(name, PLACEHOLDER)

    return _VARIABLE.sub(replace, expr)


def blank_strings(expr: str) -> str:
    """Strings emptied and comments removed (what they hold is never a metric name)."""
    expr = _STRING.sub('""', expr)
    return _COMMENT.sub("", expr)


def _strip_brackets(expr: str, open_: str, close: str) -> str:
    out, depth = [], 0
    for char in expr:
        if char == open_:
            depth += 1
            continue
        if char == close and depth:
            depth -= 1
            continue
        if not depth:
            out.append(char)
    return "".join(out)


def metric_names(expr: str) -> set[str]:
    """Metric names ``expr`` selects (functions, keywords, labels, literals skipped).

    Label matchers ({…}), ranges and subqueries ([…]) and strings are removed first;
    then an identifier is a metric name unless a ``(`` follows it (a function or an
    aggregation), it is a keyword, or it sits in the label list after by/without/on/
    ignoring/group_left/group_right.
    """
    text = blank_strings(substitute_variables(expr))
    text = _strip_brackets(_strip_brackets(text, "{", "}"), "[", "]")
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(text)]
    names: set[str] = set()
    label_list_depth: int | None = None
    depth = 0
    for index, (kind, value) in enumerate(tokens):
        if kind == "open":
            depth += 1
            continue
        if kind == "close":
            depth -= 1
            if label_list_depth is not None and depth < label_list_depth:
                label_list_depth = None
            continue
        if kind != "ident" or label_list_depth is not None:
            continue
        following = tokens[index + 1] if index + 1 < len(tokens) else (None, "")
        lowered = value.lower()
        if lowered in LABEL_LIST_KEYWORDS:
            if following[0] == "open":
                label_list_depth = depth + 1
            continue
        if lowered in KEYWORDS or following[0] == "open" or value == PLACEHOLDER:
            continue
        if following[0] == "ident" and following[1].lower() in ("by", "without"):
            continue  # an aggregation written `sum by (…) (…)`
        names.add(value)
    return names


def range_selectors(expr: str) -> Iterator[tuple[str, str]]:
    """(enclosing function, range text) for every […] in ``expr`` (strings blanked)."""
    text = blank_strings(expr)
    for match in re.finditer(r"\[([^\]]*)\]", text):
        depth, position = 0, match.start() - 1
        function = ""
        while position >= 0:
            char = text[position]
            if char == ")":
                depth += 1
            elif char == "(":
                if depth == 0:
                    head = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[:position])
                    function = head.group(1) if head else ""
                    break
                depth -= 1
            position -= 1
        yield function, match.group(1).strip()


# ---------------------------------------------------------------------------------------
# Dashboard walking


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def all_panels(dashboard: dict) -> Iterator[dict]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(dashboard: dict) -> Iterator[tuple[str, str, str]]:
    """(panel title or annotation name, refId, expr) of every PromQL query."""
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield panel.get("title", "?"), target.get("refId", "?"), target["expr"]
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            yield f"annotation {annotation.get('name', '?')}", "-", annotation["expr"]
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable.get("query")
            query = query.get("query", "") if isinstance(query, dict) else query or ""
            # label_values(metric, label) and friends are Grafana functions, not PromQL.
            inner = re.fullmatch(r"\s*query_result\((.*)\)\s*", query, re.S)
            if inner:
                yield f"variable {variable.get('name')}", "-", inner.group(1)
            elif query and not re.match(r"\s*(label_names|label_values|metrics)\(", query):
                yield f"variable {variable.get('name')}", "-", query


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


def _is_templated(datasource: object) -> bool:
    if isinstance(datasource, str):
        return datasource in ("${datasource}", "$datasource")
    if isinstance(datasource, dict):
        return datasource.get("uid") in ("${datasource}", "$datasource")
    return False


@pytest.mark.parametrize("name", dashboard_ids())
def test_datasource_is_templated(name: str):
    dashboard = load(DASHBOARDS / name)
    variables = {v.get("name"): v for v in dashboard.get("templating", {}).get("list", [])}
    assert variables.get("datasource", {}).get("type") == "datasource"
    assert variables["datasource"].get("query") == "prometheus"
    wrong = []
    for panel in all_panels(dashboard):
        if panel.get("type") == "row" or not panel.get("targets"):
            continue  # rows and text panels query nothing
        if not _is_templated(panel.get("datasource")):
            wrong.append(f"panel {panel.get('title')!r}: {panel.get('datasource')!r}")
        for target in panel.get("targets", []):
            # A target may inherit the panel's data source; a named one must be templated.
            if "datasource" in target and not _is_templated(target["datasource"]):
                wrong.append(f"{panel.get('title')!r}/{target.get('refId')}")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        if not _is_templated(annotation.get("datasource")):
            wrong.append(f"annotation {annotation.get('name')!r}")
    for variable in variables.values():
        if variable.get("type") == "query" and not _is_templated(variable.get("datasource")):
            wrong.append(f"variable {variable.get('name')!r}")
    assert wrong == []


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
    dashboard = load(DASHBOARDS / name)
    documented = {
        panel.get("title")
        for panel in all_panels(dashboard)
        if "fixed window" in panel.get("description", "").lower()
    }
    wrong = [
        f"{title}/{ref_id}: {function}[{window}]"
        for title, ref_id, expr in expressions(dashboard)
        for function, window in range_selectors(expr)
        if FUNCTIONS_WANTING_RATE_INTERVAL.match(function)
        and window != "$__rate_interval"
        and title not in documented
    ]
    assert wrong == []


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed")
    return path


def check_expressions(promtool: str, exprs: list[tuple[str, str]], tmp_path: Path) -> str:
    """promtool's complaints about ``exprs`` ((label, expr) pairs); "" when all parse."""
    groups = [
        {"name": label, "rules": [{"record": "dashboard:check", "expr": substitute_variables(e)}]}
        for label, e in exprs
    ]
    rules = tmp_path / "dashboards.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


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
