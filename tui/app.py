"""`ocean-tui`: the live operations console.

Health comes from Prometheus on a poll timer that is re-armed only after a fetch ends
(dolphie's pattern), so slow fetches never pile up; when a fetch fails the console
says so in a banner, keeps the last values greyed, and retries with backoff.
Procedures (deploy, backup, load test, validate) run in thread workers and post
their Steps as messages: the same generators `tasks.py` prints.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress

from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.worker import get_current_worker

from ocean import environments_apply, slo
from ocean.config import Settings
from ocean.durations import parse_duration
from ocean.errors import OceanError
from ocean.model import Step
from ocean.observe import HealthView, fetch
from ocean.prom import Alertmanager, PromError, Prometheus
from ocean.runtime import make_runtime
from ocean.runtime.base import Runtime
from tui.messages import HealthFailed, HealthUpdated, ProcedureDone, StepPosted
from tui.screens.alerts import AlertsScreen
from tui.screens.audit import AuditScreen
from tui.screens.backups import BackupsScreen
from tui.screens.dashboards import DashboardsScreen
from tui.screens.deploy import DeployScreen
from tui.screens.help import HelpScreen
from tui.screens.loadtest import LoadTestScreen
from tui.screens.logs import LogsScreen
from tui.screens.overview import OverviewScreen
from tui.screens.validate import ValidateScreen

MAX_BACKOFF_S = 30.0


class OceanConsole(App):
    CSS_PATH = "app.tcss"
    TITLE = "Ocean Ops"
    MODES = {
        "overview": OverviewScreen,
        "deploy": DeployScreen,
        "backups": BackupsScreen,
        "loadtest": LoadTestScreen,
        "validate": ValidateScreen,
        "logs": LogsScreen,
        "audit": AuditScreen,
        "dashboards": DashboardsScreen,
        "alerts": AlertsScreen,
    }
    DEFAULT_MODE = "overview"
    BINDINGS = [
        Binding("1", "switch_mode('overview')", "Overview", id="screen.overview"),
        Binding("2", "switch_mode('deploy')", "Deploy", id="screen.deploy"),
        Binding("3", "switch_mode('backups')", "Backups", id="screen.backups"),
        Binding("4", "switch_mode('loadtest')", "Load tests", id="screen.loadtest"),
        Binding("5", "switch_mode('validate')", "Validate", id="screen.validate"),
        Binding("6", "switch_mode('logs')", "Logs", id="screen.logs"),
        # Off the footer (it is full); `?` and the command palette list it.
        Binding("7", "switch_mode('audit')", "Audit log", id="screen.audit", show=False),
        Binding("8", "switch_mode('dashboards')", "Dashboards", id="screen.dashboards", show=False),
        Binding("9", "switch_mode('alerts')", "Alerts", id="screen.alerts", show=False),
        Binding("question_mark", "help", "Help", key_display="?", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(
        self,
        runtime: Runtime,
        prometheus: Prometheus,
        refresh: float = 2.0,
        readonly: bool = False,
        deploy_defaults: dict | None = None,
    ) -> None:
        super().__init__()
        # DeployOptions fields a deploy from the console uses (e.g. analysis_window).
        self.deploy_defaults = deploy_defaults or {}
        self.runtime = runtime
        self.prometheus = prometheus
        # The environment's objectives (slo.* overrides), as its alerts use them.
        self.slos = environments_apply.slos(slo.load(), runtime.settings.env)
        self.refresh_s = refresh
        self.readonly = readonly
        self.health: HealthView | None = None
        self.services: list = []  # ServiceStatus of each service, from the runtime
        self.health_error: tuple[str, float] | None = None
        self.failures = 0
        self.polls = 0  # completed fetches (tests and the benchmark count them)
        self.alertmanager: Alertmanager | None = None  # set by make_app
        self.notifications = ""  # Alertmanager's view: active/suppressed counts
        # The Alerts screen's fetch (tui/screens/alerts.py: fetch); tests put a recording.
        self.alerts_fetch: Callable | None = None
        # Which stack this is, always in sight: a prod console must not pass for dev.
        where = f"{runtime.settings.env_name} · {runtime.name} runtime"
        self.sub_title = f"{where} · read-only" if readonly else where

    # -- the poll loop ------------------------------------------------------------------

    def on_mount(self) -> None:
        self.poll()

    @work(thread=True, exclusive=True, group="poll")
    def poll(self) -> None:
        try:
            view = fetch(self.prometheus, self.slos)
        except PromError as exc:
            self.failures += 1
            retry = min(self.refresh_s * 2**self.failures, MAX_BACKOFF_S)
            self.post_message(HealthFailed(str(exc).split(": ", 1)[-1][:120], retry))
            return
        self.failures = 0
        try:
            services = self.runtime.status()
        except Exception:  # the runtime's view is extra: Prometheus' is the main one
            services = []
        if self.alertmanager is not None:
            try:
                held = self.alertmanager.alerts()
                suppressed = sum(a.get("status", {}).get("state") == "suppressed" for a in held)
                self.notifications = (
                    f"Alertmanager holds {len(held)}, {suppressed} silenced or inhibited"
                )
            except PromError:
                self.notifications = "Alertmanager unreachable"
        self.post_message(HealthUpdated(view, services))

    def on_health_updated(self, message: HealthUpdated) -> None:
        self.polls += 1
        self.health, self.health_error = message.view, None
        self.services = message.services
        self.set_timer(self.refresh_s, self.poll)  # re-armed only now: no pile-up
        self._paint(lambda screen: screen.show_health(message.view))

    def on_health_failed(self, message: HealthFailed) -> None:
        self.polls += 1
        self.health_error = (message.error, message.retry_in)
        self.set_timer(message.retry_in, self.poll)
        self._paint(lambda screen: screen.health_failed(message.error, message.retry_in))

    def _paint(self, paint: Callable[[Screen], None]) -> None:
        """Show the poll's result on the current screen, unless its widgets are not
        there (a screen still composing after a mode switch, or the app exiting: seen on
        a loaded machine). It shows the kept result when it resumes; the poll goes on
        (it is re-armed before this, so such a moment can no longer stop it)."""
        try:
            screen = self.screen
        except ScreenStackError:  # the app exited with this message still queued
            return
        if isinstance(screen, _health_screens()):
            with suppress(NoMatches):
                paint(screen)

    # -- procedures ---------------------------------------------------------------------

    def run_procedure(
        self, target: Screen, source: str, steps: Callable[[], Iterator[Step]]
    ) -> None:
        """Run a procedure in a thread; its Steps go to ``target`` as messages."""
        self._procedure(target, source, steps)

    @work(thread=True, group="procedures")
    def _procedure(self, target: Screen, source: str, steps: Callable[[], Iterator[Step]]):
        worker = get_current_worker()
        try:
            for step in steps():
                target.post_message(StepPosted(source, step))
                if worker.is_cancelled:
                    break
        except OceanError as exc:
            target.post_message(ProcedureDone(source, str(exc)))
            return
        except Exception as exc:  # a bug: say so in the pane rather than crash the UI
            target.post_message(ProcedureDone(source, f"{type(exc).__name__}: {exc}"))
            return
        target.post_message(ProcedureDone(source))

    def run_call(self, target: Screen, source: str, call: Callable[[], object]) -> None:
        """Run a blocking call (a list, a status) in a thread; the result comes back in
        ProcedureDone.result."""
        self._call(target, source, call)

    @work(thread=True, group="calls")
    def _call(self, target: Screen, source: str, call: Callable[[], object]) -> None:
        try:
            result = call()
        except (OceanError, PromError) as exc:
            target.post_message(ProcedureDone(source, str(exc)))
            return
        target.post_message(ProcedureDone(source, result=result))

    # -- commands -----------------------------------------------------------------------

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, mode, action, mutating in TASKS:
            if mutating and self.readonly:
                continue
            yield SystemCommand(title, help_text, self._task_callback(mode, action))

    def _task_callback(self, mode: str, action: str | None) -> Callable[[], None]:
        def run() -> None:
            self.switch_mode(mode)
            if action:
                self.call_after_refresh(self.screen.run_action, action)

        return run


# (palette title, help, screen, action on that screen or None, changes the stack)
TASKS = [
    ("Overview", "targets, SLOs and alerts (invoke status)", "overview", None, False),
    ("Deploy the idle color", "invoke deploy --color=IDLE", "deploy", "deploy", True),
    ("Promote the waiting deploy", "invoke promote", "deploy", "promote", True),
    ("Roll back", "invoke rollback", "deploy", "rollback", True),
    ("Deploy status", "invoke deploy-status", "deploy", "refresh", False),
    ("Back up now", "invoke backup", "backups", "backup", True),
    ("Verify a backup", "invoke backup-verify ID", "backups", "verify", True),
    ("Restore a backup", "invoke restore ID --yes", "backups", "restore", True),
    ("List backups", "invoke backups", "backups", "refresh", False),
    ("Run a load test", "invoke loadtest --scenario S", "loadtest", "run", True),
    ("Load test reports", "invoke loadtest-report", "loadtest", "refresh", False),
    ("Validate configs", "invoke validate", "validate", "validate", False),
    ("Service logs", "invoke logs SERVICE", "logs", None, False),
    ("Alerts and receivers", "invoke alerts; each receiver's deliveries", "alerts", None, False),
    ("Silence the selected alert", "invoke alerts.silence ALERT", "alerts", "silence", True),
    ("End the selected silence", "invoke alerts.unsilence ID", "alerts", "unsilence", True),
    ("Run the alert drill", "invoke alerts.drill", "alerts", "drill", True),
    (
        "Dashboards",
        "monitoring/dashboards/ drawn live (invoke dashboards snapshot NAME)",
        "dashboards",
        None,
        False,
    ),
    (
        "Audit log",
        "destructive actions and their outcomes (<state>/audit.jsonl)",
        "audit",
        "refresh",
        False,
    ),
]


def _health_screens() -> tuple[type, ...]:
    from tui.screens.base import OceanScreen

    return (OceanScreen,)


def make_app(
    runtime: Runtime | None = None,
    prometheus_url: str | None = None,
    refresh: float = 2.0,
    readonly: bool = False,
    prometheus: Prometheus | None = None,
    alertmanager_url: str | None = None,
    env: str = "",
) -> OceanConsole:
    """The console for ``runtime`` (default: OCEAN_ENV's), reading ``prometheus``."""
    runtime = runtime or make_runtime(settings=Settings.from_env(env_name=env))
    # The stack's credentials either way: a --prometheus URL of the same stack (its
    # nginx /prometheus/ path, say) takes them too.
    creds = {"auth": runtime.access().ops_auth, "verify": runtime.access().ssl_context()}
    prom = prometheus or (
        Prometheus(prometheus_url, **creds) if prometheus_url else Prometheus.of(runtime)
    )
    app = OceanConsole(runtime, prom, refresh=refresh, readonly=readonly)
    app.alertmanager = (
        Alertmanager(alertmanager_url, **creds) if alertmanager_url else Alertmanager.of(runtime)
    )
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ocean-tui",
        description="Ocean Ops live console: health, deploys, backups, load tests.",
    )
    parser.add_argument(
        "--env",
        default="",
        help="the environment: dev, staging, prod … (default OCEAN_ENV, else dev)",
    )
    parser.add_argument("--prometheus", help="Prometheus URL (default: the stack's)")
    parser.add_argument("--alertmanager", help="Alertmanager URL (default: the stack's)")
    parser.add_argument("--refresh", default="2s", help="poll interval, e.g. 2s (default)")
    parser.add_argument(
        "--readonly", action="store_true", help="hide every action that changes the stack"
    )
    parser.add_argument(
        "--analysis-window",
        default="",
        help="deploys from the console: analysis window (default: the environment's)",
    )
    args = parser.parse_args(argv)
    try:
        refresh = parse_duration(args.refresh, "refresh")
        if refresh < 0.5:
            raise OceanError("--refresh must be at least 0.5s")
        app = make_app(
            prometheus_url=args.prometheus,
            refresh=refresh,
            readonly=args.readonly,
            alertmanager_url=args.alertmanager,
            env=args.env,
        )
        if args.analysis_window:
            app.deploy_defaults["analysis_window"] = parse_duration(
                args.analysis_window, "analysis-window"
            )
    except OceanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
