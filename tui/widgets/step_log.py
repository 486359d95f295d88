"""The log pane a procedure's Steps stream into."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog

from ocean.model import Step, StepStatus

MARK = {
    StepStatus.OK: ("✓", "green"),
    StepStatus.SKIPPED: ("·", "grey50"),
    StepStatus.INFO: ("…", "cyan"),
    StepStatus.FAILED: ("✗", "red"),
    StepStatus.INCONCLUSIVE: ("?", "yellow"),
}


class StepLog(RichLog):
    """Steps as the CLI prints them: mark, name, detail, seconds."""

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, **kwargs)

    def add_step(self, step: Step) -> None:
        mark, colour = MARK[step.status]
        line = Text()
        line.append(f"{mark} ", style=colour)
        line.append(step.name, style="bold")
        if step.detail:
            line.append(f" {step.detail}", style="grey70")
        if step.seconds is not None:
            line.append(f" {step.seconds:.2f}s", style="grey50")
        self.write(line)

    def add_error(self, error: str) -> None:
        self.write(Text(f"✗ {error}", style="bold red"))

    def add_note(self, note: str) -> None:
        self.write(Text(note, style="italic grey70"))
