"""Validate: run `invoke validate`'s checks; selecting a finding shows where and why."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ocean.model import Finding
from ocean.views import validation
from tui.messages import ProcedureDone
from tui.screens.base import OceanScreen

# The console's colours for a view's tone (ocean/views).
TONE = {"bad": "red", "warn": "yellow"}


class ValidateScreen(OceanScreen):
    BINDINGS = [Binding("v", "validate", "Run validation", id="validate.run")]

    def __init__(self) -> None:
        super().__init__()
        self.findings: list[Finding] = []

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="box", id="findings-box"):
            yield Static("Findings: press v to validate", classes="box-title", id="findings-title")
            yield DataTable(id="findings")
        with Vertical(classes="box", id="finding-box"):
            yield Static("", id="finding")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.cursor_type = "row"
        table.add_columns("severity", "check", "file:line", "message")

    def action_validate(self) -> None:
        root = self.console.runtime.settings.repo_root
        self.query_one("#findings-title", Static).update("Findings: validating…")
        self.console.run_call(self, "validate", lambda: validation.run(root))

    def on_procedure_done(self, message: ProcedureDone) -> None:
        title = self.query_one("#findings-title", Static)
        if message.error:
            title.update(f"[red]validation failed to run: {message.error}[/]")
            return
        report: validation.Validation = message.result  # type: ignore[assignment]
        self.findings = report.findings
        title.update(f"Findings: {report.summary()}")
        table = self.query_one(DataTable)
        table.clear()
        for i, f in enumerate(self.findings):
            table.add_row(
                Text(f.severity, style=TONE[validation.tone(f)]),
                f.check,
                f.where,
                f.message,
                key=str(i),
            )
        self.query_one("#finding", Static).update(
            "Select a finding for its file, line and fix." if self.findings else "Clean."
        )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key is None or event.row_key.value is None:
            return
        f = self.findings[int(event.row_key.value)]
        self.query_one("#finding", Static).update(
            Text.assemble(
                (f"{f.where}\n", "bold"),
                (f"{f.check} ({f.kind}, {f.severity})\n", "grey70"),
                f"{f.message}\n",
                (f"fix: {f.hint}" if f.hint else "", "cyan"),
            )
        )
