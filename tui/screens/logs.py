"""Logs: tail one service's log, with a filter; a trace id as the filter follows that
request through nginx and both shop colors instead (`invoke logs --trace ID`)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, RichLog, Select
from textual.worker import get_current_worker

from ocean import tracelog
from ocean.procedures import stack
from ocean.services import SERVICES
from tui.screens.base import OceanScreen

TAIL_LINES = 200


class LogsScreen(OceanScreen):
    BINDINGS = [Binding("f", "focus_filter", "Filter", id="logs.filter")]

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="box", id="logs-box"):
            with Horizontal(id="logs-controls"):
                yield Select([(s.name, s.name) for s in SERVICES], prompt="service", id="service")
                yield Input(placeholder="filter (substring)", id="filter")
            yield RichLog(id="log-lines", wrap=False, markup=False, highlight=False)

    def action_focus_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._restart()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._restart()

    def _restart(self) -> None:
        needle = self.query_one("#filter", Input).value.strip()
        if tracelog.is_trace_id(needle):
            self.query_one("#log-lines", RichLog).clear()
            self.trace(needle)
            return
        service = self.query_one("#service", Select).value
        if service is Select.BLANK:
            return
        self.query_one("#log-lines", RichLog).clear()
        self.tail(str(service), needle)

    @work(thread=True, exclusive=True, group="logs")
    def trace(self, trace_id: str) -> None:
        log = self.query_one("#log-lines", RichLog)
        try:
            lines = [
                tracelog.format_line(line)
                for line in tracelog.trace(self.console.runtime, trace_id)
            ]
        except Exception as exc:
            lines = [f"error: {exc}"]
        for line in lines:
            self.app.call_from_thread(log.write, line)

    @work(thread=True, exclusive=True, group="logs")
    def tail(self, service: str, needle: str) -> None:
        worker = get_current_worker()
        log = self.query_one("#log-lines", RichLog)
        try:
            lines = stack.log_lines(
                self.console.runtime,
                service,
                TAIL_LINES,
                follow=True,
                stop=lambda: worker.is_cancelled,
            )
            for line in lines:
                if worker.is_cancelled:
                    return
                if not needle or needle in line:
                    self.app.call_from_thread(log.write, line)
        except Exception as exc:
            self.app.call_from_thread(log.write, f"error: {exc}")
