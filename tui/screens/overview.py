"""Overview: every target, the SLO panel, the alerts."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from ocean.observe import HealthView
from tui.screens.base import OceanScreen
from tui.widgets.health import AlertsTable, ServicesTable, SloPanel, TargetsTable


class OverviewScreen(OceanScreen):
    def compose_body(self) -> ComposeResult:
        with Horizontal(id="overview-top"):
            with Vertical(id="targets-box", classes="box"):
                yield Static("Services", classes="box-title", id="services-title")
                yield ServicesTable(id="services")
                yield Static("Prometheus targets", classes="box-title")
                yield TargetsTable(id="targets")
            with Vertical(id="slo-box", classes="box"):
                yield Static("SLOs (monitoring/slo.yaml), last 15 min", classes="box-title")
                yield SloPanel(id="slos")
        with Vertical(id="alerts-box", classes="box"):
            yield Static("Alerts", classes="box-title", id="alerts-title")
            yield AlertsTable(id="alerts")

    def show_health(self, view: HealthView) -> None:
        super().show_health(view)
        services = self.console.services
        self.query_one(ServicesTable).show(services)
        healthy = sum(s.healthy for s in services)
        self.query_one("#services-title", Static).update(
            f"Services: {healthy}/{len(services)} healthy"
            + (f", live color {self.console.runtime.live_color()}" if services else "")
        )
        self.query_one(TargetsTable).show(view.targets)
        self.query_one(SloPanel).show(view.slos)
        self.query_one(AlertsTable).show(view.alerts)
        firing = sum(a.state == "firing" for a in view.alerts)
        notes = self.console.notifications
        self.query_one("#alerts-title", Static).update(
            f"Alerts: {firing} firing, {len(view.alerts) - firing} pending"
            + (f" ({notes})" if notes else "")
        )
