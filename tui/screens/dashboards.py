"""Dashboards: the Grafana dashboards of monitoring/dashboards/, drawn live.

The same JSON Grafana provisions, read by ``ocean.dashboards``; the queries run in a
thread worker and the next refresh is armed only when one has ended (dolphie's poll),
at the dashboard's own refresh interval, and only while this screen is shown.
"""

from __future__ import annotations

import contextlib
import time

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.scalar import Scalar, Unit
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Select, Static

from ocean.dashboards import query
from ocean.dashboards.model import ALL, Dashboard, Selection, load_all, parse_range
from ocean.observe import HealthView
from tui.messages import DashboardFetched
from tui.screens.base import OceanScreen
from tui.widgets.banner import Banner
from tui.widgets.dashboard import PanelWidget, RowTitle, panel_widget

RANGES = ("5m", "15m", "1h", "3h", "6h", "12h", "24h", "2d", "7d")
GRID_COLUMNS = 24
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
        self.fetching = False
        self.last_seconds = 0.0  # how long the last refresh's queries took
        self._timer: Timer | None = None
        self._panels: dict[int, PanelWidget] = {}
        # Lines below the first screenful, not mounted yet, and what holds their place.
        self._later: tuple[Widget, list[Widget]] | None = None
        # Born with the app's stylesheet current. Textual (8.2) restyles the whole app
        # twice on the first switch to a mode whose screen is new (its switch_mode and
        # _init_mode each see the new screen's count at -1): ≈ 0.1 s of the first
        # paint's CPU for nothing, since this screen's widgets are styled as they mount.
        # A private attribute: if a Textual release renames it, this does nothing.
        with contextlib.suppress(AttributeError, RuntimeError):  # Runtime: no app
            self._css_update_count = self.app._css_update_count

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
        """Lay the dashboard's panels out: a line per grid row, widths in grid units.
        Lines below the first screenful are mounted once the first data is drawn."""
        body = self.query_one("#dash-body", VerticalScroll)
        self._panels = {}
        lines: dict[int, list] = {}
        for panel in self.dashboard.panels:
            lines.setdefault(panel.y, []).append(panel)
        widgets: list[Widget] = []
        heights: list[int] = []
        for _, panels in sorted(lines.items()):
            if len(panels) == 1 and panels[0].type == "row":
                widgets.append(RowTitle(panels[0]))
                heights.append(1)
                continue
            children: list[Widget] = []
            x = 0
            for panel in sorted(panels, key=lambda p: p.x):
                if panel.x > x:  # a gap in the grid stays a gap
                    children.append(_gap(panel.x - x))
                widget = panel_widget(panel)
                widget.styles.width = _fr(panel.w)
                children.append(widget)
                if isinstance(widget, PanelWidget):
                    self._panels[panel.id] = widget
                x = panel.x + panel.w
            if x < GRID_COLUMNS:  # a short line keeps Grafana's widths
                children.append(_gap(GRID_COLUMNS - x))
            line = Horizontal(*children, classes="dash-line")
            height = max(round(max(p.h for p in panels) * LINES_PER_GRID_UNIT), 4)
            line.styles.height = height
            widgets.append(line)
            heights.append(height)
        # The lines a screen can show now; the rest, mounted once the first data is
        # drawn, hold their place meanwhile (one blank widget of their height, so the
        # scroll bar is right from the first paint).
        now = 0
        top = 0
        while now < len(widgets) and top < self.app.size.height:
            top += heights[now]
            now += 1
        later = widgets[now:]
        if later:
            spacer = Widget(classes="dash-later")
            spacer.styles.height = sum(heights[now:])
            self._later = (spacer, later)
            widgets = [*widgets[:now], spacer]
        else:
            self._later = None
        with self.app.batch_update():
            body.remove_children()
            body.mount_all(widgets)
            # The variables' Selects come with the first fetch, which brings their
            # options: made once with them rather than made and then given new ones.
            if [s.variable for s in self.variable_selects()] != self._wanted():
                self.query_one("#dash-variables", Horizontal).remove_children()
        self.refresh_now()

    def _mount_later(self, later: tuple[Widget, list[Widget]]) -> None:
        """The lines below the first screenful, in place of their spacer."""
        if self._later is not later:
            return  # mounted already, or another dashboard is shown
        self._later = None
        spacer, widgets = later
        with self.app.batch_update():
            self.query_one("#dash-body", VerticalScroll).mount_all(widgets, before=spacer)
            spacer.remove()

    def _variables(self) -> None:
        """A Select per variable the operator can choose (All first when allowed), made
        with its options; the same Selects get new options only when the variable's
        values change (set_options recomposes a Select's list)."""
        box = self.query_one("#dash-variables", Horizontal)
        wanted = [v for v in self.dashboard.variables if v.selectable]
        choices = []
        for variable in wanted:
            label = variable.label
            options = [(f"{label}: All", ALL)] if variable.include_all else []
            values = self.options.get(variable.name, variable.options)
            options += [(f"{label}: {o}", o) for o in values]
            current = self.selection.values.get(variable.name, ALL)
            if current not in [v for _, v in options]:
                options.append((f"{label}: {current}", current))
            choices.append((variable, options, current))
        selects = self.variable_selects()
        if [s.variable for s in selects] != [v.name for v in wanted]:
            with self.app.batch_update():
                box.remove_children()
                new = []
                for variable, options, current in choices:
                    select = VariableSelect(variable.name, options, current)
                    select.border_title = variable.label
                    new.append(select)
                box.mount_all(new)
            return
        for (_, options, current), select in zip(choices, selects, strict=True):
            with select.prevent(Select.Changed):
                if options != select.choices:
                    select.choices = options
                    select.set_options(options)
                if select.value != current:
                    select.value = current

    def _wanted(self) -> list[str]:
        return [v.name for v in self.dashboard.variables if v.selectable]

    def variable_selects(self) -> list[VariableSelect]:
        return list(self.query_one("#dash-variables", Horizontal).query(VariableSelect))

    # -- the poll -------------------------------------------------------------------

    def refresh_now(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.generation += 1
        self.fetching = True
        self.fetch(self.generation, self.dashboard, Selection(**vars(self.selection)))

    @work(thread=True, exclusive=True, group="dashboard")
    def fetch(self, generation: int, dashboard: Dashboard, selection: Selection) -> None:
        started = time.monotonic()
        options: dict[str, list[str]] = {}
        try:
            data = query.fetch(
                self.console.prometheus, dashboard, selection, self.clock(), options=options
            )
        except Exception as exc:  # a bug: say so in every panel rather than crash the UI
            failed = f"{type(exc).__name__}: {exc}"
            data = {p.id: query.PanelData(p.id, errors=[failed]) for p in dashboard.panels}
        self.post_message(DashboardFetched(generation, data, options, time.monotonic() - started))

    def on_dashboard_fetched(self, message: DashboardFetched) -> None:
        if message.generation != self.generation:
            return  # an answer for a dashboard or selection no longer shown
        self.fetching = False
        self.refreshes += 1
        for panel_id, data in message.data.items():
            widget = self._panels.get(panel_id)
            if widget is not None:
                widget.show(data)
        if self._later is not None:
            self.call_after_refresh(self._mount_later, self._later)
        if message.options != self.options or self._wanted() != [
            s.variable for s in self.variable_selects()
        ]:
            self.options = message.options
            self._variables()
        self.last_seconds = message.seconds
        errors = sum(bool(d.error) for d in message.data.values())
        at = time.strftime("%H:%M:%S", time.gmtime(self.clock()))
        self.query_one("#dash-status", Static).update(
            f"{len(message.data)} panels"
            + (f", {errors} with errors" if errors else "")
            + f" · {at} UTC · every {self.dashboard.refresh or '30s'}"
        )
        if self.is_current:  # re-armed only now: fetches never pile up
            self._timer = self.set_timer(self.dashboard.refresh_s, self.refresh_now)

    def show_health(self, view: HealthView) -> None:
        if self.query(Banner):  # a poll can land between the switch and compose
            super().show_health(view)

    def health_failed(self, error: str, retry_in: float) -> None:
        if self.query(Banner):
            super().health_failed(error, retry_in)

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
        elif isinstance(event.select, VariableSelect):
            name = event.select.variable
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


class VariableSelect(Select):
    """A template variable's values (no id: dashboards may share variable names)."""

    def __init__(self, variable: str, options: list[tuple[str, str]], value: str) -> None:
        super().__init__(
            options, value=value, allow_blank=False, classes="dash-variable", prompt=variable
        )
        self.variable = variable
        self.choices = options  # the options it was given last


def _fr(units: int) -> Scalar:
    return Scalar(float(units), Unit.FRACTION, Unit.WIDTH)


def _gap(units: int) -> Static:
    gap = Static(classes="dash-gap")
    gap.styles.width = _fr(units)
    return gap


def _range_label(seconds: float) -> str:
    for size, suffix in ((86400, "d"), (3600, "h"), (60, "m")):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{suffix}"
    return f"{int(seconds)}s"


def _ranges(dashboard: Dashboard) -> list[str]:
    own = _range_label(dashboard.range_s)
    return sorted({*RANGES, own}, key=parse_range)
