"""`?`: every key of the screen below and of the app, with what it does."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box", classes="box"):
            yield Static("Keys (ctrl+p: the command palette lists every task)", classes="box-title")
            yield DataTable(id="help-keys")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("key", "does", "where")
        below = self.app.screen_stack[-2] if len(self.app.screen_stack) > 1 else None
        seen = set()
        for where, bindings in (
            (
                type(below).__name__.removesuffix("Screen") if below else "",
                getattr(below, "BINDINGS", []),
            ),
            ("everywhere", self.app.BINDINGS),
        ):
            for b in bindings:
                if not isinstance(b, Binding) or b.key in seen:
                    continue
                if below is not None and where != "everywhere":
                    allowed = below.check_action(b.action.split("(")[0], ())
                    if allowed is False:
                        continue
                seen.add(b.key)
                table.add_row(b.key_display or b.key, b.description, where)
