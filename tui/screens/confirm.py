"""Confirmations: a yes/no one, and one where the user types the thing's id."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static


class Confirm(ModalScreen[bool]):
    """Yes or no; dismisses with True only on yes."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog box"):
            yield Static(self.question, id="question")
            with Horizontal(classes="buttons"):
                yield Button("Yes", variant="warning", id="yes")
                yield Button("No", variant="primary", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_cancel(self) -> None:
        self.dismiss(False)


class TypeToConfirm(ModalScreen[bool]):
    """Proceeds only when the user types ``expected`` exactly (e.g. a backup id)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="confirm.cancel")]

    def __init__(self, question: str, expected: str) -> None:
        super().__init__()
        self.question = question
        self.expected = expected

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog box"):
            yield Static(self.question, id="question")
            yield Static(f"Type [b]{self.expected}[/b] to confirm, Escape to cancel.")
            yield Input(placeholder=self.expected, id="typed")
            yield Static("", id="refusal")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.expected:
            self.dismiss(True)
            return
        self.query_one("#refusal", Static).update(
            f"[red]'{event.value}' is not {self.expected}: nothing done.[/]"
        )
        event.input.value = ""

    def action_cancel(self) -> None:
        self.dismiss(False)


class Ask(ModalScreen[str | None]):
    """One line of input (a version, a label); None when cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ask.cancel")]

    def __init__(self, question: str, default: str = "") -> None:
        super().__init__()
        self.question = question
        self.default = default

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog box"):
            yield Static(self.question, id="question")
            yield Input(value=self.default, id="answer")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
