"""Dashboards: the Grafana dashboards of monitoring/dashboards/, drawn live.

The same JSON Grafana provisions, read by ``ocean.dashboards``; the queries run in a
thread worker and the next refresh is armed only when one has ended (dolphie's poll),
at the dashboard's own refresh interval, and only while this screen is shown.
"""

from __future__ import annotations

import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.timer import Timer
from textual.widgets import Select, Static

from ocean.dashboards import query
from ocean.dashboards.model import ALL, Dashboard, Selection, load_all, parse_range
from tui.messages import DashboardFetched
from tui.screens.base import OceanScreen
from tui.widgets.dashboard import PanelWidget, RowTitle, panel_widget

RANGES = ("5m", "15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d")
LINES_PER_GRID_UNIT = 1.5  # a Grafana grid row is ~30 px; a terminal line ~20


class DashboardsScreen(OceanScreen):
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="dashboards.refresh"),
        Binding("t", "next_range", "Time range", id="dashboards.range"),
        Binding("n", "next_dashboard", "Next dashboard", id="dashboards.next"),
    ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dashboards: list[Dashboard] = load_all()
        self.dashboard: Dashboard = self.dashboards[0]
        self.selection = Selection.default(self.dashboard)
        self.options: dict[str, list[str]] = {}
        self.generation = 0  # bumped on every change of dashboard or selection
        self.refreshes = 0  # completed refreshes (tests and the benchmark count them)
        self._timer: Timer | None = None
        self._panels: dict[int, PanelWidget] = {}

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="dash-controls"):
            yield Select(
                [(d.title, d.name) for d in self.dashboards],
                value=self.dashboard.name,
                allow_blank=False,
                id="dash-select",
            )
            yield Select(
                [(r, r) for r in _ranges(self.dashboard)],
                value=_range_label(self.selection.range_s),
                allow_blank=False,
                id="dash-range",
            )
            yield Horizontal(id="dash-variables")
            yield Static("", id="dash-status")
        yield VerticalScroll(id="dash-body")

    def on_mount(self) -> None:
        self._build()

    def clock(self) -> float:
        """Now, for the queries' range (tests freeze it through the app's ``clock``)."""
        return getattr(self.app, "clock", time.time)()

    # -- layout -------------------------------------------------------------------

    def _build(self) -> None:
        """Lay the dashboard's panels out: a line per grid row, widths in grid units."""
        body = self.query_one("#dash-body", VerticalScroll)
        body.remove_children()
        self._panels = {}
        lines: dict[int, list] = {}
        for panel in self.dashboard.panels:
            lines.setdefault(panel.y, []).append(panel)
        for _, panels in sorted(lines.items()):
            if len(panels) == 1 and panels[0].type == "row":
                body.mount(RowTitle(panels[0]))
                continue
            line = Horizontal(classes="dash-line")
            line.styles.height = max(round(max(p.h for p in panels) * LINES_PER_GRID_UNIT), 4)
            body.mount(line)
            x = 0
            for panel in sorted(panels, key=lambda p: p.x):
                if panel.x > x:  # a gap in the grid stays a gap
                    gap = Static(classes="dash-gap")
                    gap.styles.width = f"{panel.x - x}fr"
                    line.mount(gap)
                widget = panel_widget(panel)
                widget.styles.width = f"{panel.w}fr"
                line.mount(widget)
                if isinstance(widget, PanelWidget):
                    self._panels[panel.id] = widget
                x = panel.x + panel.w
        self._variables()
        self.refresh_now()

    def _variables(self) -> None:
        box = self.query_one("#dash-variables", Horizontal)
        box.remove_children()
        for variable in self.dashboard.variables:
            if not variable.selectable:
                continue
            options = [("All", ALL)] if variable.include_all else []
            options += [(o, o) for o in self.options.get(variable.name, variable.options)]
            current = self.selection.values.get(variable.name, ALL)
            if current not in [v for _, v in options]:
                options.append((current, current))
            select = Select(
                options,
                value=current,
                allow_blank=False,
                id=f"var-{variable.name}",
                classes="dash-variable",
                prompt=variable.label,
            )
            select.border_title = variable.label
            box.mount(select)

    # -- the poll -------------------------------------------------------------------

    def refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.generation += 1
        self.fetch(self.generation, self.dashboard, Selection(**vars(self.selection)))

    @work(thread=True, exclusive=True, group="dashboard")
    def fetch(self, generation: int, dashboard: Dashboard, selection: Selection) -> None:
        started = time.monotonic()
        options: dict[str, list[str]] = {}
        data = query.fetch(
            self.console.prometheus, dashboard, selection, self.clock(), options=options
        )
        self.post_message(DashboardFetched(generation, data, options, time.monotonic() - started))

    def on_dashboard_fetched(self, message: DashboardFetched) -> None:
        if message.generation != self.generation:
            return  # an answer for a dashboard or selection no longer shown
        self.refreshes += 1
        for panel_id, data in message.data.items():
            widget = self._panels.get(panel_id)
            if widget is not None:
                widget.show(data)
        if message.options != self.options:
            self.options = message.options
            self._variables()
        errors = sum(bool(d.error) for d in message.data.values())
        self.query_one("#dash-status", Static).update(
            f"{len(message.data)} panels in {message.seconds:.2f} s"
            + (f", {errors} with errors" if errors else "")
            + f" · every {self.dashboard.refresh or '30s'}"
        )
        if self.is_current:  # re-armed only now: fetches never pile up
            self._timer = self.set_timer(self.dashboard.refresh_s, self.refresh_now)

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if self._timer is None and self.refreshes:
            self.refresh_now()

    # -- the operator's choices -------------------------------------------------------

    def on_select_changed(self, event: Select.Changed) -> None:
        select_id = event.select.id or ""
        if event.value is Select.BLANK:
            return
        if select_id == "dash-select" and event.value != self.dashboard.name:
            self._show(next(d for d in self.dashboards if d.name == event.value))
        elif select_id == "dash-range":
            seconds = parse_range(str(event.value))
            if seconds != self.selection.range_s:
                self.selection.range_s = seconds
                self.refresh_now()
        elif select_id.startswith("var-"):
            name = select_id.removeprefix("var-")
            if self.selection.values.get(name) != event.value:
                self.selection.values[name] = str(event.value)
                self.refresh_now()

    def _show(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard
        self.selection = Selection.default(dashboard)
        self.options = {}
        ranges = self.query_one("#dash-range", Select)
        ranges.set_options([(r, r) for r in _ranges(dashboard)])
        ranges.value = _range_label(self.selection.range_s)
        self._build()

    def action_refresh(self) -> None:
        self.refresh_now()

    def action_next_range(self) -> None:
        ranges = _ranges(self.dashboard)
        current = _range_label(self.selection.range_s)
        self.query_one("#dash-range", Select).value = ranges[
            (ranges.index(current) + 1) % len(ranges)
        ]

    def action_next_dashboard(self) -> None:
        index = self.dashboards.index(self.dashboard)
        self.query_one("#dash-select", Select).value = self.dashboards[
            (index + 1) % len(self.dashboards)
        ].name


def _range_label(seconds: float) -> str:
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{suffix}"
    return f"{int(seconds)}s"


def _ranges(dashboard: Dashboard) -> list[str]:
    own = _range_label(dashboard.range_s)
    return sorted({*RANGES, own}, key=parse_range)
