"""Alerts (key 9): firing and pending alerts with their receivers, the silences, and per
receiver the last delivery and the failures (issue 20); silence, unsilence and the
delivery drill from here.

The screen polls in a thread worker while it is shown, re-arming its timer only after
a fetch has ended (dolphie's pattern, as the app's own poll). The fetch is
``ocean.procedures.alerts``: the listing `invoke alerts` prints and
``deliveries`` (ocean/alerting/deliveries.py), whose watch keeps what earlier polls read.
Silences go through ``ocean.guardrails`` (audited, ``via=console``), as the tasks' do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import suppress

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Static

from ocean import guardrails
from ocean.alerting.deliveries import DeliveryWatch
from ocean.errors import OceanError
from ocean.model import Step, StepStatus
from ocean.procedures import alerts
from ocean.runtime.base import Runtime
from tui.messages import AlertsFetched, ProcedureDone, StepPosted
from tui.screens.base import OceanScreen
from tui.screens.confirm import Confirm
from tui.screens.silence import SilenceDialog
from tui.widgets.alerting import AlertListTable, ReceiversTable, SilencesTable
from tui.widgets.step_log import StepLog

# (listing or None, receivers, problems, when): what one poll gathers.
Fetched = tuple[dict | None, list, list[str], float]


def fetch(runtime: Runtime, watch: DeliveryWatch) -> Fetched:
    """The listing and each receiver's deliveries; what did not answer in ``problems``."""
    problems: list[str] = []
    try:
        listing: dict | None = alerts.listing(runtime)
        problems += listing["problems"]
    except OceanError as exc:
        listing = None
        problems.append(str(exc))
    try:
        receivers = alerts.deliveries(runtime, watch)
    except OceanError as exc:
        receivers = []
        problems.append(str(exc))
    return listing, receivers, list(dict.fromkeys(problems)), time.time()


class AlertsScreen(OceanScreen):
    BINDINGS = [
        Binding("x", "silence", "Silence alert", id="alerts.silence"),
        Binding("u", "unsilence", "Unsilence", id="alerts.unsilence"),
        Binding("d", "drill", "Drill", id="alerts.drill"),
        Binding("s", "refresh", "Refresh", id="alerts.refresh"),
    ]
    MUTATING = frozenset({"silence", "unsilence", "drill"})

    def __init__(self) -> None:
        super().__init__()
        self.watch = DeliveryWatch()
        self.listing: dict | None = None
        self.receivers: list = []  # the last fetch's rows (ocean.alerting.deliveries)
        self.polling = False  # a fetch is running or its timer armed
        self.running = ""  # the action whose procedure runs ("" when none)
        self.fetches = 0  # completed fetches (tests wait for them)
        self._timer: Timer | None = None  # the one armed poll (a refresh must not add one)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="alerts-top"):
            with Vertical(classes="box", id="alert-list-box"):
                yield Static("Alerts", classes="box-title", id="alert-list-title")
                yield AlertListTable(id="alert-list")
            with Vertical(classes="box", id="silences-box"):
                yield Static("Silences", classes="box-title", id="silences-title")
                yield SilencesTable(id="silences")
        with Vertical(classes="box", id="receivers-box"):
            yield Static("Receivers", classes="box-title", id="receivers-title")
            yield ReceiversTable(id="receivers")
        with Vertical(classes="box", id="alerts-log-box"):
            yield Static("Silences and drills", classes="box-title", id="alerts-log-title")
            yield StepLog(id="alerts-log")

    # -- the poll (while shown; re-armed after each fetch) -----------------------------

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        if not self.polling:
            self.polling = True
            self.poll()

    def action_refresh(self) -> None:
        self.poll()

    @work(thread=True, exclusive=True, group="alerts-poll")
    def poll(self) -> None:
        source: Callable[[DeliveryWatch], Fetched] = self.console.alerts_fetch or (
            lambda watch: fetch(self.console.runtime, watch)
        )
        self.post_message(AlertsFetched(*source(self.watch)))

    def on_alerts_fetched(self, message: AlertsFetched) -> None:
        self.fetches += 1
        with suppress(NoMatches):  # the screen's widgets are going (the app exits)
            self.show_alerts(message)
        if self._timer is not None:
            self._timer.stop()  # a refresh's fetch ended too: still one timer, not two
            self._timer = None
        if self.is_current:
            self._timer = self.set_timer(self.console.refresh_s, self.poll)  # only now
        else:
            self.polling = False  # resumed later: the poll starts again

    def show_alerts(self, message: AlertsFetched) -> None:
        self.listing, self.receivers = message.listing, message.receivers
        problem = f" [red]({'; '.join(message.problems)[:160]})[/]" if message.problems else ""
        if message.listing is not None:
            counts = message.listing["counts"]
            self.query_one(AlertListTable).show(message.listing["alerts"])
            self.query_one(SilencesTable).show(message.listing["silences"])
            self.query_one("#alert-list-title", Static).update(
                f"Alerts: {counts['firing']} firing, {counts['pending']} pending, "
                f"{counts['silenced']} silenced, {counts['inhibited']} inhibited{problem}"
            )
            self.query_one("#silences-title", Static).update(
                f"Silences: {len(message.listing['silences'])} active or pending"
            )
        else:
            self.query_one("#alert-list-title", Static).update(f"Alerts{problem}")
        self.query_one(ReceiversTable).show(message.receivers, message.at)
        failing = [r.receiver for r in message.receivers if r.failed]
        self.query_one("#receivers-title", Static).update(
            f"Receivers: {len(message.receivers)}"
            + (f", [red]failures at {', '.join(failing)}[/]" if failing else "")
        )

    # -- actions ------------------------------------------------------------------------

    def selected_alert(self) -> str | None:
        row = self._selected(AlertListTable, "alerts")
        return row["name"] if row else None

    def selected_silence(self) -> dict | None:
        return self._selected(SilencesTable, "silences")

    def _selected(self, table_type: type, key: str) -> dict | None:
        """The listing's row under ``table_type``'s cursor (its rows are in order)."""
        rows = (self.listing or {}).get(key) or []
        row = self.query_one(table_type).cursor_row
        return rows[row] if rows and row is not None and row < len(rows) else None

    def action_silence(self) -> None:
        alert = self.selected_alert()
        if alert is None:
            self.notify("select an alert first", severity="warning")
            return
        runtime = self.console.runtime
        self.app.push_screen(
            SilenceDialog(alert, alerts.alert_rules(runtime)),
            lambda request: (
                request is not None
                and self._start(
                    "silence", lambda: guardrails.silence(runtime, request, via="console")
                )
            ),
        )

    def action_unsilence(self) -> None:
        silence = self.selected_silence()
        if silence is None:
            self.notify("select a silence first", severity="warning")
            return
        runtime, silence_id = self.console.runtime, silence["id"]
        self.app.push_screen(
            Confirm(f"End silence {silence_id} ({silence['matchers']}) now?"),
            lambda yes: (
                yes
                and self._start(
                    "unsilence", lambda: guardrails.unsilence(runtime, silence_id, via="console")
                )
            ),
        )

    def action_drill(self) -> None:
        runtime = self.console.runtime
        self.app.push_screen(
            Confirm(
                f"Run the delivery drill in {runtime.settings.env_name}? A synthetic alert "
                "goes to every route (a real pager or Slack gets it too), then resolves."
            ),
            lambda yes: yes and self._start("drill", lambda: alerts.drill(runtime)),
        )

    def _start(self, source: str, steps: Callable) -> None:
        if self.running:
            self.notify(f"{self.running} is still running", severity="warning")
            return
        self.running = source
        self.query_one(StepLog).add_note(f"— {source} —")
        self.console.run_procedure(self, source, steps)

    def on_step_posted(self, message: StepPosted) -> None:
        log = self.query_one(StepLog)
        step = message.step
        if step.name == "progress":
            self.query_one("#alerts-log-title", Static).update(f"Drill: {step.detail}")
        log.add_step(step)
        if message.source == "drill" and step.name == "drill":
            for line in route_lines(step):
                log.add_step(line)

    def on_procedure_done(self, message: ProcedureDone) -> None:
        self.running = ""
        log = self.query_one(StepLog)
        log.add_error(message.error) if message.error else log.add_note(f"{message.source} done")
        self.query_one("#alerts-log-title", Static).update("Silences and drills")
        self.poll()


def route_lines(verdict: Step) -> list[Step]:
    """The drill's result, one Step per route: delivered how and how fast, or why not."""
    lines = []
    for row in verdict.data.get("routes", []):
        if row["delivered"]:
            how = (row["kind"] or row["via"]) + (" over TLS" if row["tls"] else "")
            late = f", LATE (budget {row['budget_s']:g}s)" if row["late"] else ""
            detail = f"delivered via {how} in {row['latency_s']:.2f}s{late}"
            lines.append(Step(f"  {row['route']}", StepStatus.OK, detail))
        else:
            problem = row["problem"] or "not delivered"
            lines.append(Step(f"  {row['route']}", StepStatus.FAILED, problem))
    return lines
