"""The console driven by Pilot: navigation, read-only mode, confirmations, Steps in the
log pane, the unreachable-Prometheus banner with backoff, the poll that never piles up,
and a snapshot of each screen.

Prometheus answers from a recording of a real one (tests/tui/recorded.py) so that
snapshots are stable; the banner test talks to a real closed port; the live test
(tests/integration/test_console_live.py) runs against a real stack.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from ocean.config import PortPlan, Settings
from ocean.procedures import stack
from ocean.prom import Prometheus
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base
from tests.tui.recorded import RecordedPrometheus
from tui.app import MAX_BACKOFF_S, OceanConsole
from tui.screens.backups import BackupsScreen
from tui.screens.confirm import Ask, TypeToConfirm
from tui.screens.deploy import DeployScreen
from tui.screens.help import HelpScreen
from tui.screens.loadtest import LoadTestScreen
from tui.screens.logs import LogsScreen
from tui.screens.overview import OverviewScreen
from tui.screens.validate import ValidateScreen
from tui.widgets.health import AlertsTable, SloPanel, TargetsTable
from tui.widgets.step_log import StepLog

SIZE = (140, 44)
pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(tmp_path: Path) -> LocalRuntime:
    """A runtime whose stack is not running: screens show an empty, idle stack."""
    return LocalRuntime(Settings(state_dir=tmp_path / "state", ports=PortPlan(free_port_base())))


def console(runtime: LocalRuntime, prom=None, **kwargs) -> OceanConsole:
    return OceanConsole(runtime, prom or RecordedPrometheus(), **kwargs)


async def settle(pilot, app: OceanConsole, polls: int = 1) -> None:
    for _ in range(100):
        if app.polls >= polls:
            break
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.pause(0.1)


# -- behaviour ------------------------------------------------------------------------------


async def test_overview_shows_targets_slos_and_alerts(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        states = app.screen.query_one(TargetsTable).states()
        recorded = RecordedPrometheus().data["targets"]
        assert len(states) == len(recorded) and set(states.values()) == {"up"}
        lines = app.screen.query_one(SloPanel).query(".slo-line")
        assert len(lines) == 8  # six from Prometheus rules, two from the last browser run
        alerts = app.screen.query_one(AlertsTable)
        severities = [str(alerts.get_row_at(i)[0]) for i in range(alerts.row_count)]
        assert severities == sorted(severities, key=["critical", "warning", "info"].index)


async def test_number_keys_switch_screens_and_help_lists_keys(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        for key, screen in (
            ("2", DeployScreen),
            ("3", BackupsScreen),
            ("4", LoadTestScreen),
            ("5", ValidateScreen),
            ("6", LogsScreen),
            ("1", OverviewScreen),
        ):
            await pilot.press(key)
            await pilot.pause()
            assert isinstance(app.screen, screen), key
        await pilot.press("2")
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = app.screen.query_one("#help-keys")
        described = {str(keys.get_row_at(i)[1]) for i in range(keys.row_count)}
        assert {"Deploy idle color", "Roll back", "Overview", "Help"} <= described


async def test_readonly_hides_and_refuses_every_action_that_changes_the_stack(runtime):
    app = console(runtime, readonly=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await pilot.pause()
        footer_keys = {key for key, active in app.screen.active_bindings.items() if active.enabled}
        assert "d" not in footer_keys and "r" not in footer_keys and "s" in footer_keys
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, DeployScreen)  # no dialog opened
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Deploy status" in titles and "Roll back" not in titles
        assert "Back up now" not in titles and "Run a load test" not in titles


async def test_restore_confirmation_refuses_a_wrong_id(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        answers = []
        await app.push_screen(TypeToConfirm("Restore 20261128-1?", "20261128-1"), answers.append)
        await pilot.pause()
        await pilot.press(*"20261128-2", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TypeToConfirm) and answers == []
        assert "is not 20261128-1" in str(app.screen.query_one("#refusal").render())
        await pilot.press(*"20261128-1", "enter")
        await pilot.pause()
        assert answers == [True]


async def test_a_procedures_steps_appear_in_the_log_pane(runtime):
    """A real procedure (`down` of a stack that is not running) through the worker."""
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await pilot.pause()
        screen = app.screen
        screen._start("down", lambda: stack.down(runtime))
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        text = "\n".join(str(line.text) for line in screen.query_one(StepLog).lines)
        assert "stop nothing running" in text and "down done" in text


async def test_deploy_asks_for_the_version_first(runtime):
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2", "d")
        await pilot.pause()
        assert isinstance(app.screen, Ask)
        assert "to green" in str(app.screen.query_one("#question").render())
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, DeployScreen)


async def test_unreachable_prometheus_shows_a_banner_and_backs_off(runtime):
    from tests.integration.shop_support import free_port  # a port nothing listens on

    prom = Prometheus(f"http://127.0.0.1:{free_port()}", timeout=0.5)
    # A 5 s refresh: the retry after the first failure comes 10 s later, so a slow
    # machine cannot see a second failure before the first is judged (two CPU hogs did).
    app = console(runtime, prom, refresh=5.0)
    async with app.run_test(size=SIZE) as pilot:
        started = time.monotonic()
        while app.polls < 1 and time.monotonic() - started < 30:
            await pilot.pause(0.05)
        await pilot.pause(0.1)
        banner = app.screen.query_one("#banner")
        assert banner.has_class("visible")
        assert "Prometheus unreachable" in str(banner.render())
        assert app.screen.has_class("stale")
        assert app.health_error[1] == 10.0  # refresh × 2 after the first failure
        app.failures = 4  # as after four more failures: the next wait is capped
        app.poll()
        while app.polls < 2 and time.monotonic() - started < 60:
            await pilot.pause(0.05)
        assert app.health_error[1] == MAX_BACKOFF_S  # not 5 s × 2**5
    prom.close()  # after the app's exit: a poll still due must not meet a closed client


async def test_the_poll_never_piles_up(runtime):
    """A fetch slower than the refresh: the next one starts only after it ends."""
    slow = RecordedPrometheus(delay=0.3)
    app = console(runtime, slow, refresh=0.05)
    async with app.run_test(size=SIZE) as pilot:
        # Waits for the calls rather than a fixed time: under two CPU hogs 2 s held only 2.
        started = time.monotonic()
        while slow.calls < 5 and time.monotonic() - started < 30:
            await pilot.pause(0.05)
        elapsed = time.monotonic() - started
        assert slow.calls >= 5, "the poll stopped re-arming"
        assert slow.max_in_flight == 1
        # One after another: each call takes 0.3 s and waits 0.05 s before the next (the
        # first may have started before the clock): a busier machine only means fewer.
        assert slow.calls <= elapsed / 0.35 + 2


async def test_a_poll_result_that_arrives_after_the_exit_is_dropped(runtime):
    """A busy machine can deliver a poll's result after the app popped its screens (CI
    under two CPU hogs: ScreenStackError from the alerts tests); nothing is painted."""
    app = console(runtime, refresh=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
    painted = []
    app._paint(painted.append)
    assert painted == []


# -- snapshots ------------------------------------------------------------------------------


def _still(app: OceanConsole) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False


@pytest.fixture
def snapshot_app(runtime) -> Iterator[OceanConsole]:
    yield console(runtime, refresh=0.2)


@pytest.mark.parametrize("key", ["1", "2", "3", "4", "5", "6"])
def test_screen_snapshots(snap_compare, snapshot_app, key):
    async def run_before(pilot) -> None:
        # Two polls: DataTable settles its column widths on the refresh after the first.
        await settle(pilot, snapshot_app, polls=2)
        await pilot.press(key)
        await pilot.pause(0.3)
        await snapshot_app.workers.wait_for_complete()
        _still(snapshot_app)
        await pilot.pause(0.1)

    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=run_before)


async def test_deploy_screen_says_what_deploy_status_says(runtime):
    """The open deploy and a deploy the stack being down left unsettled, in the words of
    `invoke deploy-status` (ocean/views/deploy.py renders both)."""
    from ocean.views import deploy as deploy_views

    journal = runtime.settings.state_dir / "deploy" / "journal.json"
    journal.parent.mkdir(parents=True)
    record = {"kind": "deploy", "color": "green", "from": "blue", "version": "HEAD"}
    journal.write_text(json.dumps({**record, "step": "preview", "pid": 1, "steps": []}))
    app = console(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2")
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        title = str(app.screen.query_one("#colors-title").render())
    task = deploy_views.status(runtime)
    assert task.open_deploy == "open deploy of green: at preview"
    assert task.notices and task.notices[0].startswith("an interrupted deploy of green")
    assert title == "; ".join(["Colors: blue is live", task.open_deploy, *task.notices])
