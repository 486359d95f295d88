"""Backups: list, create, verify, and restore behind a typed-id confirmation."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ocean import guardrails
from ocean.durations import age
from ocean.procedures import backup as backups
from tui.messages import ProcedureDone, StepPosted
from tui.screens.base import OceanScreen
from tui.screens.confirm import Ask, TypeToConfirm
from tui.widgets.step_log import StepLog


def _size(n: float | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class BackupsScreen(OceanScreen):
    BINDINGS = [
        Binding("b", "backup", "Back up now", id="backups.backup"),
        Binding("v", "verify", "Verify selected", id="backups.verify"),
        Binding("R", "restore", "Restore selected", id="backups.restore"),
        Binding("s", "refresh", "Refresh", id="backups.refresh"),
    ]
    MUTATING = frozenset({"backup", "verify", "restore"})

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict] = []
        self.running = False

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="box", id="backups-box"):
            yield Static("Backup sets", classes="box-title", id="backups-title")
            yield DataTable(id="backups")
        with Vertical(classes="box", id="backup-log-box"):
            yield Static("Backup log", classes="box-title")
            yield StepLog(id="backup-log")

    def on_mount(self) -> None:
        table = self.query_one("#backups", DataTable)
        table.cursor_type = "row"
        table.add_columns("id", "label", "age", "size", "encrypted", "orders", "verified")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def action_refresh(self) -> None:
        self.console.run_call(self, "list", lambda: backups.list_backups(self.console.runtime))

    def selected(self) -> str | None:
        table = self.query_one("#backups", DataTable)
        if not self.rows or table.cursor_row is None or table.cursor_row >= len(self.rows):
            return None
        return self.rows[table.cursor_row]["id"]

    def action_backup(self) -> None:
        def labelled(label: str | None) -> None:
            if label is not None:
                self._start("backup", lambda: backups.backup(self.console.runtime, label))

        self.app.push_screen(Ask("Label for this backup (optional)", ""), labelled)

    def action_verify(self) -> None:
        backup_id = self.selected()
        if backup_id is None:
            self.notify("select a backup first", severity="warning")
            return
        self._start("verify", lambda: backups.verify(self.console.runtime, backup_id))

    def action_restore(self) -> None:
        backup_id = self.selected()
        if backup_id is None:
            self.notify("select a backup first", severity="warning")
            return
        runtime = self.console.runtime
        env = runtime.settings.env
        # Where the environment asks for confirmations, the user types its name too.
        expected = f"{env.name} {backup_id}" if env.confirm_destructive else backup_id
        confirm = env.name if env.confirm_destructive else ""
        self.app.push_screen(
            TypeToConfirm(
                f"Restore {backup_id} in {env.name}? A safety backup is taken first; "
                "writes stop meanwhile.",
                expected,
            ),
            lambda yes: (
                yes
                and self._start(
                    "restore",
                    lambda: guardrails.restore(runtime, backup_id, True, confirm, via="console"),
                )
            ),
        )

    def _start(self, source: str, steps) -> None:
        if self.running:
            self.notify("a backup procedure is already running", severity="warning")
            return
        self.running = True
        self.query_one(StepLog).add_note(f"— {source} —")
        self.console.run_procedure(self, source, steps)

    def on_step_posted(self, message: StepPosted) -> None:
        self.query_one(StepLog).add_step(message.step)

    def on_procedure_done(self, message: ProcedureDone) -> None:
        if message.source == "list":
            if message.error:
                self.query_one(StepLog).add_error(message.error)
            else:
                self.show_rows(message.result)  # type: ignore[arg-type]
            return
        self.running = False
        log = self.query_one(StepLog)
        log.add_error(message.error) if message.error else log.add_note(f"{message.source} done")
        self.action_refresh()

    def show_rows(self, rows: list[dict]) -> None:
        self.rows = list(reversed(rows))  # newest first
        table = self.query_one("#backups", DataTable)
        table.clear()
        for r in self.rows:
            verified = r.get("verified") or {}
            status = (
                verified.get("status", "never") if isinstance(verified, dict) else str(verified)
            )
            table.add_row(
                r["id"],
                r.get("label", "") or "",
                age(r.get("age_s")),
                _size(r.get("size")),
                "yes" if r.get("encrypted") else Text("no", style="yellow"),
                "-" if r.get("orders") is None else f"{r['orders']:,}",
                Text(status, style="green" if status == "ok" else "yellow"),
            )
        newest = self.rows[0] if self.rows else None
        when = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(newest["created"]))
            if newest and "created" in newest
            else "never"
        )
        self.query_one("#backups-title", Static).update(
            f"Backup sets: {len(self.rows)}, newest {when}"
        )
