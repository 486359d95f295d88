"""Overview widgets: targets, the SLO panel, alerts. Each is a pure rendering of the
``ocean.observe`` dataclasses it is given (dolphie's panels-as-functions)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Sparkline, Static

from ocean.model import ServiceStatus
from ocean.observe import AlertRow, SloRow, TargetRow

STATE_STYLE = {"up": "green", "down": "bold red", "flapping": "yellow", "unknown": "grey50"}
SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}


class ServicesTable(DataTable):
    """The stack's services as the runtime sees them: state, pid, health, restarts."""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("service", "state", "pid", "health", "restarts")

    def show(self, services: list[ServiceStatus]) -> None:
        self.clear()
        for s in services:
            health = (
                Text("healthy", style="green")
                if s.healthy
                else Text(s.health_detail[:40], style="bold red")
            )
            self.add_row(s.name, s.state, str(s.pid or "-"), health, str(s.restarts))


class TargetsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("job", "instance", "state", "last scrape", "error")

    def show(self, rows: list[TargetRow]) -> None:
        self.clear()
        for r in rows:
            self.add_row(
                r.job,
                r.instance,
                Text(r.state, style=STATE_STYLE.get(r.state, "")),
                r.last_scrape,
                r.error[:60],
                key=f"{r.job}/{r.instance}",
            )

    def states(self) -> dict[str, str]:
        """instance key → state, as shown (tests read it)."""
        return {str(key.value): str(self.get_row(key)[2]) for key in self.rows}


class SloLine(Horizontal):
    def __init__(self, key: str) -> None:
        super().__init__(id=f"slo-{key}", classes="slo-line")

    def compose(self) -> ComposeResult:
        yield Static(classes="slo-label")
        yield Static(classes="slo-value")
        yield Static(classes="slo-objective")
        yield Sparkline([], classes="slo-spark")

    def show(self, row: SloRow) -> None:
        self.query_one(".slo-label", Static).update(row.label)
        style = "grey50" if row.ok is None else ("green" if row.ok else "bold red")
        self.query_one(".slo-value", Static).update(Text(row.text(), style=style))
        self.query_one(".slo-objective", Static).update(Text(row.objective, style="grey50"))
        self.query_one(".slo-spark", Sparkline).data = row.history or [0.0]


class SloPanel(Vertical):
    """SLOs from monitoring/slo.yaml: value now, objective, the last 15 minutes."""

    def show(self, rows: list[SloRow]) -> None:
        for row in rows:
            found = self.query(f"#slo-{row.key}")
            if not found:
                line = SloLine(row.key)
                self.mount(line)
                self.call_after_refresh(line.show, row)
            else:
                found.first(SloLine).show(row)


class AlertsTable(DataTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("severity", "alert", "state", "since", "summary", "runbook")

    def show(self, rows: list[AlertRow]) -> None:
        self.clear()
        for r in rows:
            self.add_row(
                Text(r.severity, style=SEVERITY_STYLE.get(r.severity, "")),
                r.name,
                r.state,
                r.since,
                r.summary,
                r.runbook,
            )
