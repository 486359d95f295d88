"""Audit: who did what to this stack, when, and how it ended (``<state>/audit.jsonl``).

Read-only: refused, started, succeeded and failed destructive actions, from the command
line and the console alike (ocean.audit, ocean.guardrails). Newest first.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ocean import audit
from tui.messages import ProcedureDone
from tui.screens.base import OceanScreen

SHOWN = 200
STYLE = {"refused": "yellow", "failed": "red", "succeeded": "green", "started": "cyan"}


class AuditScreen(OceanScreen):
    BINDINGS = [Binding("s", "refresh", "Refresh", id="audit.refresh")]

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict] = []

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="box", id="audit-box"):
            yield Static("Audit log", classes="box-title", id="audit-title")
            yield DataTable(id="audit")

    def on_mount(self) -> None:
        table = self.query_one("#audit", DataTable)
        table.cursor_type = "row"
        table.add_columns("at (UTC)", "env", "who", "via", "action", "outcome", "detail")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def action_refresh(self) -> None:
        settings = self.console.runtime.settings
        self.console.run_call(self, "audit", lambda: audit.read(settings, SHOWN))

    def on_procedure_done(self, message: ProcedureDone) -> None:
        title = self.query_one("#audit-title", Static)
        where = audit.path(self.console.runtime.settings)
        if message.error:
            title.update(f"Audit log: [red]{message.error}[/]")
            return
        self.entries = list(reversed(message.result or []))
        table = self.query_one("#audit", DataTable)
        table.clear()
        for entry in self.entries:
            outcome = entry.get("outcome", "?")
            table.add_row(
                entry.get("at", "").replace("T", " ").rstrip("Z"),
                entry.get("env", ""),
                entry.get("who", ""),
                entry.get("via", ""),
                entry.get("action", ""),
                Text(outcome, style=STYLE.get(outcome, "")),
                entry.get("detail", ""),
            )
        count = len(self.entries)
        env = self.console.runtime.settings.env_name
        title.update(f"Audit log of {env} ({count} entr{'y' if count == 1 else 'ies'}, {where})")
