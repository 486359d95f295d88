"""A dashboard's panels as Prometheus answers them, the way Grafana asks.

- **Intervals**: ``$__interval`` is the range over the points a panel can show
  (``MAX_POINTS``), rounded up to a whole second and never below the scrape interval;
  ``$__rate_interval`` is max(``$__interval`` + scrape interval, 4 × scrape interval),
  Grafana's definition; ``$__range`` the selected range. The query step is
  ``$__interval``.
- **Variables**: ``$name``, ``${name}``, ``${name:regex}``, ``[[name]]``; "All" becomes
  the variable's allValue, else a regex of its options, else ``.*``.
- **Panels**: time series run a range query per target; stat and gauge panels too,
  reduced to one number per series (lastNotNull unless the panel says otherwise);
  table targets (format=table or instant) run an instant query. A query that fails
  leaves its error in the panel's data; the other panels are not affected.

``prom`` is anything with ``query`` and ``query_range`` (ocean.prom.Prometheus).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Protocol

from ocean.dashboards.model import ALL, Dashboard, Panel, Selection, Target, Variable
from ocean.prom import PromError

MAX_POINTS = 120  # points per series: about what a half-screen braille plot can show
SCRAPE_INTERVAL_S = 15.0  # Grafana's default for a Prometheus data source


class PromLike(Protocol):
    def query(self, expr: str) -> list[dict[str, Any]]: ...

    def query_range(
        self, expr: str, start: float, end: float, step: float
    ) -> list[dict[str, Any]]: ...


@dataclass
class Series:
    name: str
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value); NaN kept out

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None

    def reduce(self, calc: str) -> float | None:
        values = [v for _, v in self.points]
        if not values:
            return None
        match calc:
            case "mean":
                return sum(values) / len(values)
            case "max":
                return max(values)
            case "min":
                return min(values)
            case "sum":
                return sum(values)
            case "first" | "firstNotNull":
                return values[0]
            case _:
                return values[-1]


@dataclass
class PanelData:
    panel_id: int
    series: list[Series] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # tables
    rows: list[list[str | float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # "A: <what Prometheus said>"
    start: float = 0.0
    end: float = 0.0

    @property
    def error(self) -> str:
        return "; ".join(self.errors)


@dataclass(frozen=True)
class Timing:
    start: float
    end: float
    step: float
    interval: str
    rate_interval: str
    range: str


def _duration(seconds: float) -> str:
    seconds = math.ceil(seconds)
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"


def timing(
    range_s: float,
    now: float,
    max_points: int = MAX_POINTS,
    scrape_s: float = SCRAPE_INTERVAL_S,
) -> Timing:
    """Grafana's intervals for ``range_s`` ending at ``now`` (aligned to the step, so
    consecutive refreshes ask Prometheus for the same grid)."""
    step = max(float(math.ceil(range_s / max_points)), scrape_s)
    end = math.floor(now / step) * step
    rate = max(step + scrape_s, 4 * scrape_s)
    return Timing(end - range_s, end, step, _duration(step), _duration(rate), _duration(range_s))


_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"\s*label_values\(\s*(?:(.+),\s*)?(\w+)\s*\)\s*$", re.S)


def variable_value(variable: Variable, chosen: str, options: list[str]) -> str:
    """What ``$name`` becomes in a query when ``chosen`` is selected."""
    if chosen != ALL:
        return chosen
    if variable.all_value:
        return variable.all_value
    if options:
        return "(" + "|".join(re.escape(o) for o in options) + ")"
    return ".*"


def substitute(
    expr: str,
    when: Timing,
    values: dict[str, str] | None = None,
) -> str:
    """``expr`` with Grafana's built-in and template variables replaced."""
    builtins = {
        "__interval": when.interval,
        "__rate_interval": when.rate_interval,
        "__range": when.range,
        "__range_s": str(int(when.end - when.start)),
        "__range_ms": str(int((when.end - when.start) * 1000)),
        "__interval_ms": str(int(when.step * 1000)),
    }
    values = values or {}

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in builtins:
            return builtins[name]
        if name in values:
            return values[name]
        return match.group(0)

    return _VARIABLE.sub(replace, expr)


def variable_options(prom: PromLike, variable: Variable) -> list[str]:
    """The values a query variable offers now (``label_values(metric, label)``);
    a custom variable's own list."""
    if variable.type != "query":
        return list(variable.options)
    match = _LABEL_VALUES.match(variable.query)
    if match is None:
        return list(variable.options)
    metric, label = match.group(1) or f'{{{match.group(2)}!=""}}', match.group(2)
    result = prom.query(f"group by ({label}) ({metric})")
    return sorted({r["metric"].get(label, "") for r in result} - {""})


def legend(target: Target, labels: dict[str, str]) -> str:
    """Grafana's legend: ``{{label}}`` replaced; without a format, the series' labels."""
    if target.legend and target.legend != "__auto":
        return re.sub(
            r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), target.legend
        ).strip()
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    name = labels.get("__name__", "")
    if not shown:
        return name or target.expr
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}"


def _points(values: list[list[Any]]) -> list[tuple[float, float]]:
    out = []
    for t, v in values:
        number = float(v)
        if not math.isnan(number):
            out.append((float(t), number))
    return out


def _error(target: Target, exc: Exception) -> str:
    return f"{target.ref_id}: {str(exc).split(': ', 1)[-1]}"


def fetch_panel(
    prom: PromLike, panel: Panel, when: Timing, values: dict[str, str] | None = None
) -> PanelData:
    data = PanelData(panel.id, start=when.start, end=when.end)
    for target in panel.targets:
        if target.hidden:
            continue
        expr = substitute(target.expr, when, values)
        try:
            if target.instant:
                result = prom.query(expr)
            else:
                result = prom.query_range(expr, when.start, when.end, when.step)
        except PromError as exc:
            data.errors.append(_error(target, exc))
            continue
        if target.table:
            _add_rows(data, result)
            continue
        for item in result:
            labels = item.get("metric", {})
            values_ = item.get("values") or ([item["value"]] if "value" in item else [])
            data.series.append(Series(legend(target, labels), labels, _points(values_)))
    return data


def _add_rows(data: PanelData, result: list[dict[str, Any]]) -> None:
    """Grafana's table format: a column per label (Time first), then Value."""
    if not result:
        return  # no columns either: the table says No data
    labels = sorted({k for item in result for k in item.get("metric", {})} - {"__name__"})
    columns = ["Time", *labels, "Value"]
    if not data.columns:
        data.columns = columns
    for item in result:
        t, v = item.get("value", (0, "NaN"))
        data.rows.append([float(t), *(item["metric"].get(k, "") for k in labels), float(v)])


def fetch(
    prom: PromLike,
    dashboard: Dashboard,
    selection: Selection,
    now: float,
    max_points: int = MAX_POINTS,
    options: dict[str, list[str]] | None = None,
) -> dict[int, PanelData]:
    """Every panel's data, keyed by panel id (panels that query nothing left out)."""
    when = timing(selection.range_s, now, max_points)
    options = options if options is not None else {}
    values = {}
    for variable in dashboard.variables:
        if variable.name not in options:
            try:
                options[variable.name] = variable_options(prom, variable)
            except PromError:
                options[variable.name] = []
        chosen = selection.values.get(variable.name, ALL)
        values[variable.name] = variable_value(variable, chosen, options[variable.name])
    return {
        panel.id: fetch_panel(prom, panel, when, values)
        for panel in dashboard.panels
        if panel.queries
    }


def expressions(
    dashboard: Dashboard,
    selection: Selection,
    now: float = 0.0,
    options: dict[str, list[str]] | None = None,
) -> list[tuple[str, str]]:
    """(kind, expr) of every panel query ``fetch`` sends for ``selection`` (the
    recording the tests use is made of these), ``options`` as the variables offered."""
    when = timing(selection.range_s, now)
    values = {
        v.name: variable_value(
            v, selection.values.get(v.name, ALL), (options or {}).get(v.name, [])
        )
        for v in dashboard.variables
    }
    out = []
    for panel in dashboard.panels:
        if not panel.queries:
            continue
        for target in panel.targets:
            if not target.hidden:
                kind = "query" if target.instant else "query_range"
                out.append((kind, substitute(target.expr, when, values)))
    return out
