"""Grafana dashboard JSON as the console and `invoke dashboards` read it.

The same files Grafana provisions (monitoring/dashboards/*.json): panels in their grid
order (rows and the panels of collapsed rows included), each panel's targets, units
and thresholds, the dashboard's time range and template variables. How Grafana turns
a panel into queries is in ``query.py``; nothing here talks to Prometheus.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ocean.config import REPO_ROOT
from ocean.durations import parse_duration
from ocean.errors import OceanError

DASHBOARD_DIR = REPO_ROOT / "monitoring" / "dashboards"

# Panel types the console draws; anything else shows its title and "open in Grafana".
DRAWN = frozenset({"row", "timeseries", "graph", "stat", "gauge", "bargauge", "table", "text"})


@dataclass(frozen=True)
class Target:
    ref_id: str
    expr: str
    legend: str = ""
    instant: bool = False  # an instant query (Grafana's "Instant", or format=table)
    table: bool = False  # format=table: one row per series, labels as columns
    hidden: bool = False


@dataclass(frozen=True)
class Threshold:
    color: str
    value: float | None  # None: the base step (-∞)


@dataclass(frozen=True)
class Panel:
    id: int
    type: str
    title: str
    x: int
    y: int
    w: int
    h: int
    targets: tuple[Target, ...] = ()
    unit: str = ""
    decimals: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    thresholds: tuple[Threshold, ...] = ()
    description: str = ""
    content: str = ""  # text panels: their markdown
    calc: str = "lastNotNull"  # stat, gauge: how a series becomes one number
    row: str = ""  # the title of the row the panel sits in

    @property
    def drawn(self) -> bool:
        return self.type in DRAWN

    @property
    def queries(self) -> bool:
        return self.type not in ("row", "text") and self.drawn and bool(self.targets)


@dataclass(frozen=True)
class Variable:
    """A template variable: ``query`` (label_values(metric, label) or a PromQL query),
    ``custom`` (comma-separated values), ``interval`` or ``constant``."""

    name: str
    type: str
    query: str = ""
    options: tuple[str, ...] = ()
    include_all: bool = False
    all_value: str = ""
    multi: bool = False
    current: str = ""
    label: str = ""

    @property
    def selectable(self) -> bool:
        return self.type in ("query", "custom", "interval")


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    path: Path
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-1h"
    time_to: str = "now"
    refresh: str = "30s"

    @property
    def name(self) -> str:
        """The file's stem: what `invoke dashboards snapshot NAME` takes."""
        return self.path.stem

    @property
    def range_s(self) -> float:
        return relative_seconds(self.time_from) - relative_seconds(self.time_to)

    @property
    def refresh_s(self) -> float:
        try:
            return parse_duration(self.refresh, "refresh") if self.refresh else 30.0
        except OceanError:
            return 30.0

    def panel(self, panel_id: int) -> Panel:
        return next(p for p in self.panels if p.id == panel_id)


MAX_RANGE_S = 400 * 86400  # beyond any retention the environments set
_RELATIVE = re.compile(r"now(?:-(\d+)([smhdw]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def relative_seconds(value: str) -> float:
    """How far back a Grafana relative time is: "now-6h" → 21600, "now" → 0."""
    match = _RELATIVE.match(value.strip())
    if not match:
        raise OceanError(f"time {value!r}: only now and now-N[smhdw] are understood")
    if match.group(1) is None:
        return 0.0
    return float(int(match.group(1)) * _UNIT_S[match.group(2)])


def parse_range(value: str) -> float:
    """A --from / time-range choice in seconds: "1h", "now-1h", "90m"."""
    value = value.strip()
    if value.startswith("now"):
        seconds = relative_seconds(value)
    elif re.fullmatch(r"\d+[smhdw]", value):
        seconds = relative_seconds(f"now-{value}")
    else:
        seconds = parse_duration(value, "from")
    if seconds <= 0:
        raise OceanError(f"time range {value!r} must reach into the past")
    if seconds > MAX_RANGE_S:
        raise OceanError(f"time range {value!r}: at most 400d")
    return seconds


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _panel(raw: dict, row: str) -> Panel:
    defaults = raw.get("fieldConfig", {}).get("defaults", {})
    steps = defaults.get("thresholds", {}).get("steps", [])
    grid = raw.get("gridPos", {})
    targets = tuple(
        Target(
            ref_id=t.get("refId", "A"),
            expr=t.get("expr", ""),
            legend=t.get("legendFormat", "") or "",
            instant=bool(t.get("instant")) or t.get("format") == "table",
            table=t.get("format") == "table",
            hidden=bool(t.get("hide")),
        )
        for t in raw.get("targets", [])
        if t.get("expr")
    )
    calcs = raw.get("options", {}).get("reduceOptions", {}).get("calcs") or ["lastNotNull"]
    return Panel(
        id=int(raw.get("id", 0)),
        type=raw.get("type", ""),
        title=raw.get("title", ""),
        x=int(grid.get("x", 0)),
        y=int(grid.get("y", 0)),
        w=int(grid.get("w", 12)),
        h=int(grid.get("h", 8)),
        targets=targets,
        unit=defaults.get("unit", "") or "",
        decimals=defaults.get("decimals"),
        minimum=_number(defaults.get("min")),
        maximum=_number(defaults.get("max")),
        thresholds=tuple(
            Threshold(s.get("color", "green"), _number(s.get("value"))) for s in steps
        ),
        description=raw.get("description", "") or "",
        content=raw.get("options", {}).get("content", "") or raw.get("content", "") or "",
        calc=calcs[0],
        row=row,
    )


def _variable(raw: dict) -> Variable:
    query = raw.get("query", "")
    if isinstance(query, dict):
        query = query.get("query", "")
    current = raw.get("current", {}) or {}
    value = current.get("value", "")
    if isinstance(value, list):
        value = value[0] if value else ""
    options = tuple(
        o.get("value", "") for o in raw.get("options", []) if isinstance(o.get("value"), str)
    )
    if raw.get("type") in ("custom", "interval") and not options and query:
        options = tuple(v.strip() for v in str(query).split(",") if v.strip())
    return Variable(
        name=raw.get("name", ""),
        type=raw.get("type", ""),
        query=str(query or ""),
        options=options,
        include_all=bool(raw.get("includeAll")),
        all_value=raw.get("allValue") or "",
        multi=bool(raw.get("multi")),
        current=str(value or ""),
        label=raw.get("label", "") or raw.get("name", ""),
    )


def parse(raw: dict, path: Path) -> Dashboard:
    """A dashboard from Grafana's JSON model (panels in the order Grafana lays them out)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("panels", []), list):
        raise OceanError(f"{path}: not a Grafana dashboard")
    panels: list[Panel] = []
    top = sorted(
        raw.get("panels", []),
        key=lambda p: (p.get("gridPos", {}).get("y", 0), p.get("gridPos", {}).get("x", 0)),
    )
    row = ""
    for item in top:
        if item.get("type") == "row":
            row = item.get("title", "")
        panels.append(_panel(item, row))
        for nested in item.get("panels", []):  # a collapsed row keeps its panels inside
            panels.append(_panel(nested, row))
    time = raw.get("time", {}) or {}
    return Dashboard(
        uid=raw.get("uid", path.stem),
        title=raw.get("title", path.stem),
        path=path,
        panels=tuple(panels),
        variables=tuple(
            _variable(v)
            for v in raw.get("templating", {}).get("list", [])
            if v.get("type") != "datasource"
        ),
        time_from=time.get("from", "now-1h"),
        time_to=time.get("to", "now"),
        refresh=raw.get("refresh", "30s") or "",
    )


def load(path: Path) -> Dashboard:
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise OceanError(f"{path}: {exc}") from exc
    return parse(raw, path)


# The seed's order: the overview first; any other dashboard after these, by title.
ORDER = ("system-overview", "database-performance", "slo", "deploys")


def load_all(directory: Path = DASHBOARD_DIR) -> list[Dashboard]:
    """Every dashboard in ``directory``: the seed's in ORDER, then the rest by title."""
    return sorted(
        (load(p) for p in directory.glob("*.json")),
        key=lambda d: (ORDER.index(d.name) if d.name in ORDER else len(ORDER), d.title),
    )


def find(name: str, directory: Path = DASHBOARD_DIR) -> Dashboard:
    """A dashboard by file stem, uid or title (case-insensitive)."""
    wanted = name.strip().lower()
    dashboards = load_all(directory)
    for dashboard in dashboards:
        if wanted in (dashboard.name.lower(), dashboard.uid.lower(), dashboard.title.lower()):
            return dashboard
    names = ", ".join(d.name for d in dashboards)
    raise OceanError(f"no dashboard {name!r}: one of {names}")


@dataclass
class Selection:
    """What the operator chose: the time range and each variable's value."""

    range_s: float
    values: dict[str, str] = field(default_factory=dict)

    @classmethod
    def default(cls, dashboard: Dashboard) -> Selection:
        values = {}
        for variable in dashboard.variables:
            if variable.include_all and variable.current in ("", "$__all", "All"):
                values[variable.name] = ALL
            else:
                values[variable.name] = variable.current or (ALL if variable.include_all else "")
        return cls(dashboard.range_s, values)


ALL = "$__all"


def selection(dashboard: Dashboard, range_text: str = "", assignments: list[str] = ()) -> Selection:
    """A selection from the command line: ``--from 1h`` (default: the dashboard's own
    range) and ``--var NAME=VALUE`` (a variable's value; ``All`` for all of them)."""
    chosen = Selection.default(dashboard)
    if range_text:
        chosen.range_s = parse_range(range_text)
    names = {v.name for v in dashboard.variables}
    for assignment in assignments or ():
        name, sep, value = assignment.partition("=")
        if not sep or name.strip() not in names:
            known = ", ".join(sorted(names)) or "none"
            raise OceanError(
                f"--var {assignment!r}: NAME=VALUE with NAME one of {dashboard.name}'s "
                f"variables ({known})"
            )
        value = value.strip()
        chosen.values[name.strip()] = ALL if value in ("All", "$__all", "*") else value
    return chosen
