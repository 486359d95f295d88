"""Load tests: pick a scenario and its parameters, watch rps, latency and errors live,
see the verdict per SLO, and compare with an earlier run.

Through the task's door (issue 23): the fields are `invoke loadtest`'s flags, checked
by the same function (a blank field is the scenario's default, shown as the field's
placeholder), and the comparison is `loadtest-report --compare`'s report."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Sparkline, Static

from ocean.errors import OceanError
from ocean.loadtest import results
from ocean.loadtest.scenarios import SCENARIOS
from ocean.procedures import loadtest as loadtests
from ocean.views import loadtest as views
from tui.messages import ProcedureDone, StepPosted
from tui.screens.base import OceanScreen
from tui.widgets.step_log import StepLog


class LoadTestScreen(OceanScreen):
    BINDINGS = [
        Binding("r", "run", "Run", id="loadtest.run"),
        Binding("c", "compare", "Compare with previous", id="loadtest.compare"),
        Binding("s", "refresh", "Refresh", id="loadtest.refresh"),
    ]
    MUTATING = frozenset({"run"})

    def __init__(self) -> None:
        super().__init__()
        self.running = False
        self.rps: list[float] = []
        self.p99: list[float] = []

    def compose_body(self) -> ComposeResult:
        with Horizontal(classes="box", id="loadtest-form"):
            yield Select(
                [(name, name) for name in SCENARIOS],
                value="smoke",
                id="scenario",
                allow_blank=False,
            )
            # Blank: the scenario's default, which the placeholder shows.
            yield Input(id="vus")
            yield Input(id="duration")
            yield Input(id="rate")
        with Horizontal(id="loadtest-live"):
            with Vertical(classes="box"):
                yield Static("rps", classes="box-title", id="rps-title")
                yield Sparkline([], id="rps")
            with Vertical(classes="box"):
                yield Static("p99", classes="box-title", id="p99-title")
                yield Sparkline([], id="p99")
        with Vertical(classes="box", id="verdicts-box"):
            yield Static("Verdicts", classes="box-title", id="verdicts-title")
            yield DataTable(id="verdicts")
        with Vertical(classes="box", id="loadtest-log-box"):
            yield StepLog(id="loadtest-log")

    def on_mount(self) -> None:
        table = self.query_one("#verdicts", DataTable)
        table.add_columns("SLO", "from", "measured", "limit", "verdict")
        self.show_defaults("smoke")

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "scenario" and isinstance(event.value, str):
            self.show_defaults(event.value)

    def show_defaults(self, scenario: str) -> None:
        known = SCENARIOS[scenario]
        self.query_one("#vus", Input).placeholder = f"VUs: {known.vus}"
        self.query_one("#duration", Input).placeholder = f"duration: {known.duration_s:g}s"
        rate = "-" if known.rate is None else f"{known.rate}/s"
        self.query_one("#rate", Input).placeholder = f"rate: {rate}"

    def action_refresh(self) -> None:
        settings = self.console.runtime.settings
        self.console.run_call(self, "runs", lambda: results.run_ids(settings))

    def action_run(self) -> None:
        if self.running:
            self.notify("a load test is already running", severity="warning")
            return
        runtime = self.console.runtime
        try:
            opts = loadtests.options(
                runtime,
                str(self.query_one("#scenario", Select).value),
                vus=self.query_one("#vus", Input).value.strip(),
                duration=self.query_one("#duration", Input).value.strip(),
                rate=self.query_one("#rate", Input).value.strip(),
            )
        except OceanError as exc:
            self.notify(str(exc), severity="error")
            return
        self.running = True
        self.rps, self.p99 = [], []
        log = self.query_one(StepLog)
        rate = f" at {opts.rate}/s" if opts.rate else ""
        log.add_note(f"— loadtest {opts.scenario}, {opts.vus} VUs{rate}, {opts.duration_s:.0f}s —")
        self.console.run_procedure(self, "loadtest", lambda: loadtests.loadtest(runtime, opts))

    def action_compare(self) -> None:
        runtime = self.console.runtime
        self.console.run_call(self, "compare", lambda: loadtests.compare_latest(runtime))

    def on_step_posted(self, message: StepPosted) -> None:
        step, data = message.step, message.step.data
        if step.name == "progress":
            self.rps.append(float(data.get("rps") or 0))
            self.query_one("#rps", Sparkline).data = self.rps
            self.query_one("#rps-title", Static).update(
                f"rps {self.rps[-1]:.0f}, {data.get('requests', 0):,} requests, "
                f"{data.get('errors', 0)} errors"
            )
            p99 = data.get("server_p99_ms") or data.get("client_p99_ms")
            if p99 is not None:
                self.p99.append(float(p99))
                self.query_one("#p99", Sparkline).data = self.p99
                self.query_one("#p99-title", Static).update(f"p99 {p99:.0f} ms (shop)")
            return  # the sparklines say it; the log keeps the milestones
        self.query_one(StepLog).add_step(step)
        if step.name == "loadtest done" and isinstance(data.get("verdicts"), list):
            self.show_verdicts(data["verdicts"])
            self.show_outcome(data)

    def show_verdicts(self, verdicts: list[dict]) -> None:
        table = self.query_one("#verdicts", DataTable)
        table.clear(columns=True)
        table.add_columns("SLO", "from", "measured", "limit", "verdict")
        for row in views.verdict_rows(verdicts):
            word = f"{row.word} ({row.excused})" if row.excused else row.word
            table.add_row(row.slo, row.source, row.measured, row.limit, word)

    def show_outcome(self, data: dict) -> None:
        """The title says how the run ended and which side limited it."""
        limited = data.get("limited_by") or "nothing"
        self.query_one("#verdicts-title", Static).update(
            f"Verdicts: {data.get('headline', '')}; limited by {limited}: "
            f"{data.get('limit_detail', '')}"
        )

    def show_comparison(self, report: dict) -> None:
        shown = views.comparison(report)
        table = self.query_one("#verdicts", DataTable)
        table.clear(columns=True)
        table.add_columns("metric", "earlier", "latest", "change", "")
        for row in shown.rows:
            flag = "REGRESSION" if row.regression else ""
            table.add_row(row.metric, row.base, row.run, row.change, flag)
        log = self.query_one(StepLog)
        for note in shown.notes:
            log.add_note(note)
        self.query_one("#verdicts-title", Static).update(
            f"Latest run against the one before: {shown.summary}"
        )

    def on_procedure_done(self, message: ProcedureDone) -> None:
        log = self.query_one(StepLog)
        if message.source == "runs":
            if not message.error:
                ids = message.result or []
                self.query_one("#verdicts-title", Static).update(
                    f"Verdicts ({len(ids)} earlier runs; c compares the last two)"
                )
            return
        if message.source == "compare":
            if message.error:
                log.add_error(message.error)
            else:
                self.show_comparison(message.result)  # type: ignore[arg-type]
            return
        self.running = False
        log.add_error(message.error) if message.error else log.add_note("load test done")
