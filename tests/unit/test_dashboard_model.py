"""ocean.dashboards without Prometheus: the JSON read as Grafana reads it, Grafana's
intervals and variables substituted, values in Grafana's units and threshold colors.
(What Prometheus answers them: tests/tui/test_dashboards.py, recorded, and
tests/integration/test_dashboards_live.py, live.)"""

from __future__ import annotations

import pytest

from ocean.dashboards import model, query
from ocean.dashboards.model import ALL, Selection, Threshold, Variable
from ocean.dashboards.units import format_value, threshold_color
from ocean.errors import OceanError


def test_the_four_seed_dashboards_in_order_and_every_panel_drawn():
    dashboards = model.load_all()
    assert [d.name for d in dashboards][:4] == [
        "system-overview",
        "database-performance",
        "slo",
        "deploys",
    ]
    for dashboard in dashboards:
        assert dashboard.panels
        assert all(p.drawn for p in dashboard.panels), dashboard.name
        ys = [(p.y, p.x) for p in dashboard.panels]
        assert ys == sorted(ys)  # grid order
    overview = model.find("Ocean / System Overview")
    assert [v.name for v in overview.variables] == ["color", "instance"]
    assert overview.panel(2).row == "Shop (through every color)"
    assert model.find("slo").range_s == 6 * 3600


def test_a_collapsed_rows_panels_and_an_unknown_type(tmp_path):
    raw = {
        "title": "t",
        "panels": [
            {
                "id": 1,
                "type": "row",
                "title": "r",
                "collapsed": True,
                "gridPos": {"y": 0, "x": 0, "w": 24, "h": 1},
                "panels": [{"id": 2, "type": "heatmap", "title": "h", "gridPos": {"y": 1}}],
            }
        ],
    }
    dashboard = model.parse(raw, tmp_path / "t.json")
    assert [(p.id, p.row, p.drawn) for p in dashboard.panels] == [(1, "r", True), (2, "r", False)]


def test_an_unknown_dashboard_names_the_known_ones():
    with pytest.raises(OceanError, match="system-overview"):
        model.find("nope")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("now-6h", 21600), ("90m", 5400), ("7d", 604800), ("1m30s", 90)],
)
def test_ranges(text, seconds):
    assert model.parse_range(text) == seconds


def test_grafana_intervals():
    # 1 h over 120 points: a 30 s step; rate over max(30 s + 15 s, 4 × 15 s) = 1 m.
    when = query.timing(3600, now=10_007)
    assert (when.step, when.interval, when.rate_interval, when.range) == (30, "30s", "1m", "1h")
    assert when.end == 9990 and when.start == 9990 - 3600  # aligned to the step
    wide = query.timing(6 * 3600, now=0)
    assert (wide.interval, wide.rate_interval) == ("3m", "195s")
    short = query.timing(300, now=0)
    assert short.step == 15  # never below the scrape interval


def test_substitution_of_builtins_and_variables():
    when = query.timing(3600, now=0)
    expr = 'rate(x{color=~"$color",i="${instance:regex}"}[$__rate_interval]) [[other]] $__range'
    out = query.substitute(expr, when, {"color": "blue", "instance": "a:1"})
    assert out == 'rate(x{color=~"blue",i="a:1"}[1m]) [[other]] 1h'


def test_all_becomes_all_value_or_a_regex_of_the_options():
    plain = Variable("color", "query")
    assert query.variable_value(plain, ALL, ["blue", "green"]) == "(blue|green)"
    assert query.variable_value(plain, ALL, []) == ".*"
    assert query.variable_value(Variable("c", "query", all_value=".+"), ALL, ["x"]) == ".+"
    assert query.variable_value(plain, "green", ["blue", "green"]) == "green"
    overview = model.find("system-overview")
    assert Selection.default(overview).values == {"color": ALL, "instance": ALL}


class Answers:
    def __init__(self, fail: str = "") -> None:
        self.fail = fail
        self.asked: list[tuple[str, str]] = []

    def query(self, expr):
        self.asked.append(("query", expr))
        if expr.startswith("group by (color)"):
            return [{"metric": {"color": "green"}}, {"metric": {"color": "blue"}}]
        return [{"metric": {"job": "shop", "version": "1.2"}, "value": [5, "1"]}]

    def query_range(self, expr, start, end, step):
        self.asked.append(("query_range", expr))
        if self.fail and self.fail in expr:
            from ocean.prom import PromError

            raise PromError("http://p/api/v1/query_range: bad_data: parse error")
        return [{"metric": {"color": "blue"}, "values": [[1, "1"], [2, "NaN"], [3, "3"]]}]


def test_fetch_queries_each_panel_and_keeps_an_error_in_its_panel():
    dashboard = model.find("deploys")
    prom = Answers(fail="histogram_quantile")
    data = query.fetch(prom, dashboard, Selection.default(dashboard), now=3600)
    assert data[7].error == "A: bad_data: parse error"  # p99 latency by color
    assert data[8].series[0].points == [(1.0, 1.0), (3.0, 3.0)]  # NaN left out
    assert data[8].series[0].name == "blue"  # legendFormat {{color}}
    versions = data[3]  # format=table, instant
    assert versions.columns == ["Time", "job", "version", "Value"]
    assert versions.rows == [[5.0, "shop", "1.2", 1.0]]
    assert ("query", "shop_build_info") in prom.asked


def test_fetch_offers_label_values_and_uses_the_choice():
    dashboard = model.find("system-overview")
    prom = Answers()
    options: dict[str, list[str]] = {}
    selection = Selection(3600, {"color": ALL, "instance": ALL})
    query.fetch(prom, dashboard, selection, now=0, options=options)
    assert options["color"] == ["blue", "green"]
    assert ("query", "group by (color) (shop_http_requests_total)") in prom.asked
    assert any('color=~".*"' in e for _, e in prom.asked)  # allValue .*
    prom.asked.clear()
    query.fetch(prom, dashboard, Selection(3600, {"color": "green"}), now=0, options=options)
    shop = [e for _, e in prom.asked if "shop_http_requests_total{" in e]
    assert shop and all('color=~"green"' in e for e in shop)


def test_legends():
    target = model.Target("A", "x", legend="{{color}} {{ instance }}")
    assert query.legend(target, {"color": "blue", "instance": "a"}) == "blue a"
    bare = model.Target("A", "up")
    assert query.legend(bare, {"__name__": "up", "job": "j"}) == 'up{job="j"}'
    assert query.legend(bare, {}) == "up"


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (0.99912, "percentunit", "99.9%"),
        (1, "percentunit", "100%"),
        (0.0123, "s", "12.3 ms"),
        (0.000012, "s", "12 µs"),
        (90, "s", "1.5 min"),
        (250, "ms", "250 ms"),
        (1536, "bytes", "1.5 KiB"),
        (3 * 1024**2, "Bps", "3 MiB/s"),
        (12.345, "reqps", "12.3 req/s"),
        (1500, "ops", "1.5 K ops/s"),
        (22, "short", "22"),
        (2_500_000, "short", "2.5 M"),
        (0.5, "none", "0.5"),
        (1796567156000, "dateTimeAsIso", "2026-12-06 14:25:56"),
        (None, "s", "No data"),
        (float("nan"), "s", "NaN"),
        (3, "widgets", "3 widgets"),
    ],
)
def test_units(value, unit, text):
    assert format_value(value, unit) == text


def test_decimals_given_by_the_panel():
    assert format_value(0.5, "percentunit", decimals=2) == "50.00%"


def test_threshold_colors():
    steps = (Threshold("red", None), Threshold("orange", 0), Threshold("green", 0.5))
    assert threshold_color(-0.1, steps) == "red"
    assert threshold_color(0, steps) == "orange"
    assert threshold_color(0.9, steps) == "green"
    assert threshold_color(None, steps) == ""
    assert threshold_color(1, ()) == ""
