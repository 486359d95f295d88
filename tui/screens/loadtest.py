"""Load tests: pick a scenario and its parameters, watch rps, latency and errors live,
see the verdict per SLO, and compare with an earlier run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Sparkline, Static

from ocean.durations import parse_duration
from ocean.errors import OceanError
from ocean.loadtest import results
from ocean.loadtest.scenarios import SCENARIOS, LoadOptions, check_target
from ocean.procedures.loadtest import loadtest
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
            yield Input("10", placeholder="VUs", id="vus")
            yield Input("20s", placeholder="duration", id="duration")
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

    def action_refresh(self) -> None:
        settings = self.console.runtime.settings
        self.console.run_call(self, "runs", lambda: results.run_ids(settings))

    def action_run(self) -> None:
        if self.running:
            self.notify("a load test is already running", severity="warning")
            return
        try:
            opts = LoadOptions(
                scenario=str(self.query_one("#scenario", Select).value),
                vus=int(self.query_one("#vus", Input).value),
                duration_s=parse_duration(self.query_one("#duration", Input).value),
                target=check_target(self.console.runtime.url("nginx")),
            )
        except (OceanError, ValueError) as exc:
            self.notify(str(exc), severity="error")
            return
        self.running = True
        self.rps, self.p99 = [], []
        log = self.query_one(StepLog)
        log.add_note(f"— loadtest {opts.scenario}, {opts.vus} VUs, {opts.duration_s:.0f}s —")
        self.console.run_procedure(self, "loadtest", lambda: loadtest(self.console.runtime, opts))

    def action_compare(self) -> None:
        settings = self.console.runtime.settings

        def compare_last_two():
            ids = results.run_ids(settings)
            if len(ids) < 2:
                raise OceanError("compare needs two load test runs")
            return results.compare(results.load(settings, ids[-2]), results.load(settings, ids[-1]))

        self.console.run_call(self, "compare", compare_last_two)

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
        for v in verdicts:
            outcome = v.get("outcome") or results.Verdict(**v).outcome
            word = results.WORDS[outcome]
            if v.get("excused"):
                word = f"{word} ({v['excused']})"
            table.add_row(v["slo"], v["source"], v["measured"], v["limit"], word)

    def show_outcome(self, data: dict) -> None:
        """The title says how the run ended and which side limited it."""
        limited = data.get("limited_by") or "nothing"
        self.query_one("#verdicts-title", Static).update(
            f"Verdicts: {data.get('headline', '')}; limited by {limited}: "
            f"{data.get('limit_detail', '')}"
        )

    def show_comparison(self, rows: list[dict]) -> None:
        table = self.query_one("#verdicts", DataTable)
        table.clear(columns=True)
        table.add_columns("metric", "earlier", "latest", "change", "")
        for r in rows:
            change = "-" if r["change"] is None else f"{r['change']:+.0%}"
            table.add_row(
                r["metric"],
                str(r["base"]),
                str(r["run"]),
                change,
                "REGRESSION" if r["regression"] else "",
            )
        self.query_one("#verdicts-title", Static).update("Latest run against the one before")

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
