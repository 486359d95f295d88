"""Deploy: each color's version, readiness and live numbers; the history; deploy,
promote and roll back, with the running deploy's Steps streaming into the log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ocean import environments_apply, guardrails
from ocean.model import Step
from ocean.observe import HealthView, color_stats
from ocean.procedures import deploy as deploys
from ocean.views import deploy as views
from tui.messages import ProcedureDone, StepPosted
from tui.screens.base import OceanScreen
from tui.screens.confirm import Ask, Confirm, TypeToConfirm
from tui.widgets.step_log import StepLog

STATUS_EVERY_S = 5.0


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


class DeployScreen(OceanScreen):
    BINDINGS = [
        Binding("d", "deploy", "Deploy idle color", id="deploy.deploy"),
        Binding("p", "promote", "Promote", id="deploy.promote"),
        Binding("r", "rollback", "Roll back", id="deploy.rollback"),
        Binding("s", "refresh", "Refresh", id="deploy.refresh"),
    ]
    MUTATING = frozenset({"deploy", "promote", "rollback"})

    def __init__(self) -> None:
        super().__init__()
        self.report: dict | None = None
        self.running = False
        self.status_pending = False  # one status load at a time (each takes the deploy lock)
        self._status_at = 0.0

    def compose_body(self) -> ComposeResult:
        with Vertical(classes="box", id="colors-box"):
            yield Static("Colors", classes="box-title", id="colors-title")
            yield DataTable(id="colors")
        with Vertical(classes="box", id="history-box"):
            yield Static("History (newest first)", classes="box-title")
            yield DataTable(id="history")
        with Vertical(classes="box", id="deploy-log-box"):
            yield Static("Deploy log", classes="box-title", id="analysis")
            yield StepLog(id="deploy-log")

    def on_mount(self) -> None:
        colors = self.query_one("#colors", DataTable)
        colors.add_columns("color", "live", "ready", "version", "req/s", "errors", "p99")
        history = self.query_one("#history", DataTable)
        history.add_columns("ended", "kind", "color", "version", "outcome", "took", "reason")
        colors.cursor_type = history.cursor_type = "row"

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def show_health(self, view: HealthView) -> None:
        super().show_health(view)
        if not self.running and time.monotonic() - self._status_at > STATUS_EVERY_S:
            self.action_refresh()

    # -- status -------------------------------------------------------------------------

    def action_refresh(self) -> None:
        if self.status_pending:
            return
        self.status_pending = True
        self._status_at = time.monotonic()
        console = self.console

        def load() -> tuple[views.DeployStatus, dict]:
            view = views.status(console.runtime)
            try:
                stats = color_stats(console.prometheus, console.slos)
            except Exception:  # Prometheus down: the banner says so; colors still show
                stats = {}
            return view, stats

        console.run_call(self, "deploy-status", load)

    def show_status(self, view: views.DeployStatus, stats: dict) -> None:
        self.report = view.report
        for step in view.recovered:  # a dead deploy settled by this look
            self.query_one(StepLog).add_step(step)
        colors = self.query_one("#colors", DataTable)
        colors.clear()
        for row in view.colors:
            s = stats.get(row.color, {})
            colors.add_row(
                Text(row.color, style=f"bold {row.color}"),
                Text("live", style="green") if row.live else "",
                "yes" if row.ready else Text("no", style="grey50"),
                row.version,
                "-" if s.get("rps") is None else f"{s['rps']:.1f}",
                _pct(s.get("error_ratio")),
                _ms(s.get("p99")),
                key=row.color,
            )
        said = [view.open_deploy] if view.open_deploy else []
        title = "; ".join([f"Colors: {view.live} is live", *said, *view.notices])
        self.query_one("#colors-title", Static).update(title)
        history = self.query_one("#history", DataTable)
        history.clear()
        for entry in view.history:
            history.add_row(
                entry.ended,
                entry.kind,
                entry.color,
                entry.version,
                Text(entry.outcome, style="green" if entry.succeeded else "red"),
                entry.took,
                entry.reason,
            )

    # -- actions ------------------------------------------------------------------------

    def _idle(self) -> str:
        live = self.report["live"] if self.report else self.console.runtime.live_color()
        return deploys.other(live)

    def action_deploy(self) -> None:
        idle = self._idle()

        def version_given(version: str | None) -> None:
            if not version:
                return
            self.app.push_screen(
                Confirm(f"Deploy {version} to {idle}? (traffic moves after the analysis)"),
                lambda yes: (
                    yes
                    and self._start(
                        "deploy",
                        lambda: guardrails.deploy(
                            self.console.runtime, self._options(idle, version), via="console"
                        ),
                    )
                ),
            )

        self.app.push_screen(
            Ask(f"Version to deploy to {idle} (git ref or directory)", "HEAD"), version_given
        )

    def action_promote(self) -> None:
        runtime = self.console.runtime
        self._confirmed(
            "Promote the deploy waiting for promotion?",
            lambda confirm: guardrails.promote(runtime, confirm_env=confirm, via="console"),
            "promote",
        )

    def _options(self, color: str, version: str) -> deploys.DeployOptions:
        """The environment's deploy settings, then the console's own (--analysis-window)."""
        env = self.console.runtime.settings.env
        timings = {**environments_apply.deploy_settings(env), **self.console.deploy_defaults}
        return deploys.DeployOptions(color=color, version=version, **timings)

    def action_rollback(self) -> None:
        runtime = self.console.runtime
        self._confirmed(
            f"Roll back: send all traffic to {self._idle()}?",
            lambda confirm: guardrails.rollback(runtime, confirm, via="console"),
            "rollback",
        )

    def _confirmed(
        self, question: str, steps: Callable[[str], Iterator[Step]], source: str
    ) -> None:
        """Ask ``question``, then start ``steps(confirm_env)``: where the environment asks
        for confirmations, the operator types its name, and that typed name is the one
        the guard rail needs."""
        env = self.console.runtime.settings.env

        def answered(yes: bool | None) -> None:
            confirm = env.name if env.confirm_destructive else ""
            if yes:
                self._start(source, lambda: steps(confirm))

        if env.confirm_destructive:
            self.app.push_screen(TypeToConfirm(f"{question} ({env.name})", env.name), answered)
        else:
            self.app.push_screen(Confirm(question), answered)

    def _start(self, source: str, steps) -> None:
        if self.running:
            self.notify("a procedure is already running here", severity="warning")
            return
        self.running = True
        log = self.query_one(StepLog)
        log.add_note(f"— {source} —")
        self.console.run_procedure(self, source, steps)

    # -- messages -------------------------------------------------------------------------

    def on_step_posted(self, message: StepPosted) -> None:
        self.query_one(StepLog).add_step(message.step)
        data = message.step.data
        if message.step.name in ("analysing", "analysis", "pre-promotion analysis") and data:
            requests = data.get("requests", 0)
            relative = data.get("relative") or {}
            probes = (
                f"; probes {relative.get('new_median_ms')} ms new vs "
                f"{relative.get('old_median_ms')} ms old ({relative.get('verdict')})"
                if relative.get("new_probes")
                else ""
            )
            self.query_one("#analysis", Static).update(
                f"Deploy log: analysis {data.get('color')}: {requests:.0f} requests, "
                f"errors {_pct(data.get('error_ratio'))}, p99 {_ms(data.get('p99_seconds'))}"
                f"{probes}"
            )

    def on_procedure_done(self, message: ProcedureDone) -> None:
        if message.source == "deploy-status":
            self.status_pending = False
            if message.error:
                self.query_one(StepLog).add_error(message.error)
            else:
                self.show_status(*message.result)  # type: ignore[misc]
            return
        self.running = False
        log = self.query_one(StepLog)
        if message.error:
            log.add_error(message.error)
        else:
            log.add_note(f"{message.source} done")
        self.action_refresh()
