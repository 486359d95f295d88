"""The Dashboards screen (key 8) driven by Pilot against a recorded Prometheus.

tests/tui/data/dashboards.json holds what a local stack under k6 load answered to
every query of the four dashboards with their default selection
(`python -m tests.tui.recorded --dashboards`); the clock is stopped at the moment it
was recorded, so the plots are what the live screen showed then. The live test is
tests/integration/test_dashboards_live.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Select, Static

from ocean.config import PortPlan, Settings
from ocean.dashboards import model
from ocean.dashboards.query import timing
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base
from tests.tui.recorded import RecordedPrometheus
from tui.app import OceanConsole
from tui.screens.dashboards import DashboardsScreen
from tui.widgets.dashboard import (
    StatPanel,
    TablePanel,
    TextPanel,
    TimeSeriesPanel,
)

SIZE = (160, 120)  # tall enough for a whole dashboard: every panel in the snapshot
pytestmark = pytest.mark.anyio


class Recorded(RecordedPrometheus):
    """The recording, also noting every query asked (to check the variables')."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    def query(self, expr: str):
        self.asked.append(expr)
        return super().query(expr)

    def query_range(self, expr: str, start: float, end: float, step: float):
        self.asked.append(expr)
        return super().query_range(expr, start, end, step)


@pytest.fixture
def runtime(tmp_path: Path) -> LocalRuntime:
    return LocalRuntime(Settings(state_dir=tmp_path / "state", ports=PortPlan(free_port_base())))


def console(runtime: LocalRuntime, prom: RecordedPrometheus | None = None) -> OceanConsole:
    prom = prom or Recorded()
    app = OceanConsole(runtime, prom, refresh=60)
    app.clock = lambda: prom.recorded_at  # the plots as they were when recorded
    return app


async def open_dashboard(pilot, app: OceanConsole, name: str) -> DashboardsScreen:
    await pilot.press("8")
    screen = app.screen
    assert isinstance(screen, DashboardsScreen)
    if screen.dashboard.name != name:
        screen.query_one("#dash-select", Select).value = name
    for _ in range(100):
        await pilot.pause(0.05)
        if screen.dashboard.name == name and screen.refreshes and not screen.fetching:
            break
    await app.workers.wait_for_complete()
    await pilot.pause(0.2)
    return screen


def test_the_recording_covers_every_query_of_every_dashboard():
    """A dashboard edited without a new recording would snapshot empty panels."""
    from ocean.dashboards import query

    prom = RecordedPrometheus()
    for dashboard in model.load_all():
        selection = model.Selection.default(dashboard)
        for kind, expr in query.expressions(dashboard, selection, prom.recorded_at):
            assert expr in prom.data[kind], f"{dashboard.name}: {expr} not recorded"


async def test_every_panel_of_the_overview_is_drawn_with_data(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_dashboard(pilot, app, "system-overview")
        panels = screen._panels
        wanted = [p for p in screen.dashboard.panels if p.type != "row"]
        assert sorted(panels) == sorted(p.id for p in wanted)
        kinds = {type(w) for w in panels.values()}
        assert {TimeSeriesPanel, StatPanel, TablePanel} <= kinds
        for widget in panels.values():
            assert widget.data is not None and not widget.data.error, widget.panel.title
        up = panels[9]
        assert isinstance(up, StatPanel)
        assert "up" in str(up.text) and "total" in str(up.text)
        assert any("total" in up.render_line(y).text for y in range(up.size.height))
        request_rate = panels[2].data
        assert request_rate.series and len(request_rate.series[0].points) > 5


async def test_lines_below_the_first_screenful_are_mounted_after_the_first_data(
    runtime, monkeypatch
):
    """A 50-line terminal shows the first lines at once; the others wait, as one blank
    of their height (the scroll bar is right from the start), until the data is drawn."""
    seen = []
    mount_later = DashboardsScreen._mount_later

    def spy(screen, later):
        spacer, lines = later
        mounted = [w for w in screen._panels.values() if w.is_mounted]
        seen.append((spacer.styles.height.value, len(lines), mounted))
        assert all(w.data is not None for w in mounted)  # drawn before the rest came
        mount_later(screen, later)

    monkeypatch.setattr(DashboardsScreen, "_mount_later", spy)
    app = console(runtime)
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_dashboard(pilot, app, "system-overview")
        [(spacer_height, lines, mounted)] = seen
        assert lines and 0 < len(mounted) < len(screen._panels)
        assert not screen.query(".dash-later")
        body = screen.query_one("#dash-body")
        rest = [w for w in body.children if w.region.y >= body.region.bottom]
        assert spacer_height == sum(w.outer_size.height for w in body.children[-lines:])
        assert rest
        for widget in screen._panels.values():
            assert widget.is_mounted and widget.data is not None, widget.panel.title


async def test_a_failing_query_shows_its_error_in_its_panel_only(runtime):
    prom = Recorded()
    dashboard = model.find("deploys")
    panel = dashboard.panel(7)  # p99 latency by color
    when = timing(dashboard.range_s, prom.recorded_at)
    from ocean.dashboards.query import substitute

    prom.errors[substitute(panel.targets[0].expr, when, {})] = (
        'bad_data: invalid parameter "query": 1:5: parse error'
    )
    app = console(runtime, prom)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_dashboard(pilot, app, "deploys")
        failed = screen._panels[7]  # the error line is the panel's first line
        assert "A: bad_data" in failed.error
        assert failed.render_line(0).text.startswith("A: bad_data")
        assert not screen._panels[8].data.error
        assert "1 with errors" in str(screen.query_one("#dash-status", Static).render())


async def test_a_variable_and_the_time_range_change_the_queries(runtime):
    prom = Recorded()
    app = console(runtime, prom)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_dashboard(pilot, app, "system-overview")
        colors = next(s for s in screen.variable_selects() if s.variable == "color")
        assert "green" in screen.options["color"]  # label_values(…, color), offered
        prom.asked.clear()
        colors.value = "green"
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        assert any('color=~"green"' in e for e in prom.asked)
        assert not any('color=~".*"' in e for e in prom.asked)
        prom.asked.clear()
        screen.query_one("#dash-range", Select).value = "6h"
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        # 6 h over 120 points: a 3-minute step, rates over step + scrape interval.
        assert any("[195s]" in e for e in prom.asked)


async def test_tables_and_text_panels(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_dashboard(pilot, app, "deploys")
        versions = screen._panels[3].query_one(DataTable)
        assert versions.row_count >= 1
        assert "version" in [str(c.label) for c in versions.columns.values()]
        screen = await open_dashboard(pilot, app, "slo")
        assert isinstance(screen._panels[15], TextPanel)


async def test_the_poll_is_rearmed_after_a_fetch_and_stops_off_screen(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_dashboard(pilot, app, "deploys")
        assert screen._timer is not None  # the next refresh, armed by the last one
        await pilot.press("1")
        await pilot.pause(0.1)
        assert screen._timer is None
        refreshes = screen.refreshes
        await pilot.press("8")
        await pilot.pause(0.3)
        await app.workers.wait_for_complete()
        await pilot.pause(0.1)
        assert screen.refreshes == refreshes + 1  # back on screen: refreshed at once


@pytest.mark.parametrize("name", ["system-overview", "database-performance", "slo", "deploys"])
def test_dashboard_snapshots(snap_compare, runtime, name):
    app = console(runtime)

    async def run_before(pilot) -> None:
        await open_dashboard(pilot, app, name)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_braille_lines_labels_and_threshold_rules():
    from tui.widgets.braille import Axes, Line, draw

    axes = Axes(0, 10, 0, 100, lambda v: f"{v:.0f}", [(0, "-10m"), (10, "now")], [(50, "red")])
    rows = draw([Line([(0, 0), (10, 100)], "green")], width=30, height=7, axes=axes)
    text = ["".join(t for t, _ in row) for row in rows]
    assert len(text) == 7 and all(len(line) == 30 for line in text)
    assert text[0].startswith("100┤") and text[5].startswith("  0┤")
    assert text[-1].rstrip().endswith("now") and "-10m" in text[-1]
    assert any(ord(c) > 0x2800 for c in text[0]) and any(ord(c) > 0x2800 for c in text[5])
    styles = {str(s.color.name) for row in rows for _, s in row if s is not None and s.color}
    assert {"green", "red"} <= styles


async def test_plots_are_drawn_once_per_refresh_not_per_repaint(runtime):
    app = console(runtime)
    app.refresh_s = 0.1  # health polls (and repaints) as fast as they come
    async with app.run_test(size=(160, 50)) as pilot:
        screen = await open_dashboard(pilot, app, "system-overview")
        plots = [p for p in screen.query(TimeSeriesPanel) if p.region.height]
        draws = [p.draws for p in plots]
        polls = app.polls
        while app.polls < polls + 5:
            await pilot.pause(0.05)
        assert plots and [p.draws for p in plots] == draws


async def test_the_logs_screen_follows_a_trace_id(runtime):
    from textual.widgets import Input, RichLog

    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    logs = runtime.settings.logs
    logs.mkdir(parents=True)
    (logs / "nginx-access.log").write_text(
        '127.0.0.1 - - [06/Dec/2026:14:27:09 +0000] "GET /api/products HTTP/2.0" 200 2 "-" '
        f'"k6" request_id={trace_id} trace_id={trace_id} cache=MISS rt=0.003 urt=0.003\n'
    )
    app = console(runtime)
    async with app.run_test(size=(140, 44)) as pilot:
        await pilot.press("6")
        field = app.screen.query_one("#filter", Input)
        field.value = trace_id.upper()
        await pilot.press("f", "enter")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        lines = [str(line.text) for line in app.screen.query_one(RichLog).lines]
        assert any(line.startswith("nginx") and trace_id in line for line in lines), lines
