"""The silence dialog: duration and reason for the selected alert, checked exactly as
`alerts.silence` checks them (ocean.alerting.silences.check). Bad input shows one line
and sends nothing; the dialog stays open to correct it."""

from __future__ import annotations

from collections.abc import Mapping

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from ocean.alerting.silences import SilenceRequest, check
from ocean.errors import OceanError


class SilenceDialog(ModalScreen[SilenceRequest | None]):
    """Dismisses with the checked request, or None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="silence.cancel")]

    def __init__(self, alert: str, rules: Mapping[str, Mapping[str, str]]) -> None:
        super().__init__()
        self.alert = alert
        self.rules = rules

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog box", id="silence-box"):
            yield Static(
                f"Silence every [b]{self.alert}[/b] alert from now (audited)", id="question"
            )
            with Horizontal(classes="field"):
                yield Static("for", classes="field-label")
                yield Input(value="2h", placeholder="2h, 30m, 1h30m", id="for")
            with Horizontal(classes="field"):
                yield Static("reason", classes="field-label")
                yield Input(placeholder="why (shown with the silence)", id="reason")
            yield Static("", id="refusal")
            with Horizontal(classes="buttons"):
                yield Button("Silence", variant="warning", id="silence")
                yield Button("Cancel", variant="primary", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "silence":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        duration = self.query_one("#for", Input).value
        reason = self.query_one("#reason", Input).value
        try:
            request = check(self.alert, duration, reason, self.rules)
        except OceanError as exc:
            self.query_one("#refusal", Static).update(Text(str(exc), style="red"))
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
