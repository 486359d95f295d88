"""The Alerts screen (9): per receiver the last delivery and failures, silence and
unsilence from the console, and the drill, against a real Alertmanager (Debian's
binary, the stack's rendered config: tests/alerting_support.py) and the alert inbox
(the real service where the runtime has it, else the stand-in there). Prometheus is
not running: the listing names it and still shows what Alertmanager holds.

The snapshot uses a recorded fetch (fixed alerts, silences and receivers, one fixed
instant), so it is the same every run.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import Input

from ocean import audit
from ocean.alerting.api import AlertmanagerApi
from ocean.alerting.deliveries import Receiver
from ocean.config import PortPlan, Settings
from ocean.runtime.local import LocalRuntime
from tests.alerting_support import rendered_runtime, with_inbox
from tests.helpers import free_port_base
from tests.tui.recorded import RecordedPrometheus
from tests.tui.test_console import SIZE, _still, console, settle
from tui.app import OceanConsole
from tui.screens.alerts import AlertsScreen
from tui.screens.confirm import Confirm
from tui.screens.silence import SilenceDialog
from tui.widgets.alerting import ReceiversTable
from tui.widgets.step_log import StepLog

pytestmark = pytest.mark.anyio
live = pytest.mark.skipif(
    shutil.which("prometheus-alertmanager") is None, reason="prometheus-alertmanager missing"
)


async def fetched(pilot, app: OceanConsole, more: int = 1) -> AlertsScreen:
    """The Alerts screen once ``more`` fetches beyond the current count have ended."""
    screen = app.screen
    assert isinstance(screen, AlertsScreen)
    wanted = screen.fetches + more
    for _ in range(200):
        if screen.fetches >= wanted:
            break
        await pilot.pause(0.05)
    assert screen.fetches >= wanted, "the Alerts screen's poll did not end"
    await pilot.pause(0.1)
    return screen


async def open_alerts(pilot, app: OceanConsole) -> AlertsScreen:
    await settle(pilot, app)
    await pilot.press("9")
    await pilot.pause()
    return await fetched(pilot, app)


def log_text(screen: AlertsScreen) -> str:
    return "\n".join(str(line.text) for line in screen.query_one(StepLog).lines)


async def until_idle(pilot, app: OceanConsole, screen: AlertsScreen, timeout: float = 60) -> None:
    """Until the screen's procedure (silence, drill …) has ended."""
    deadline = time.monotonic() + timeout
    while screen.running and time.monotonic() < deadline:
        await pilot.pause(0.1)
    assert not screen.running, log_text(screen)
    await pilot.pause(0.1)


# -- recorded: the snapshot and what the receivers panel says ----------------------------

AT = 1796569200.0  # the recorded fetch's instant


def recorded_fetch(watch) -> tuple:
    listing = {
        "alerts": [
            {
                "name": "TargetDown",
                "state": "firing",
                "severity": "critical",
                "for_s": 312.0,
                "receivers": ["pager"],
                "silenced_by": [],
                "inhibited_by": [],
                "drill": False,
            },
            {
                "name": "RedisReplicaDown",
                "state": "firing",
                "severity": "warning",
                "for_s": 95.0,
                "receivers": ["chat"],
                "silenced_by": ["6f0c2b1e-aaaa-4bbb-8ccc-000000000001"],
                "inhibited_by": [],
                "drill": False,
            },
        ],
        "silences": [
            {
                "id": "6f0c2b1e-aaaa-4bbb-8ccc-000000000001",
                "matchers": 'alertname="RedisReplicaDown"',
                "ends_in_s": 7080.0,
                "created_by": "ops",
                "comment": "replica rebuild",
            }
        ],
        "counts": {"firing": 2, "pending": 0, "silenced": 1, "inhibited": 0},
        "problems": [],
    }
    receivers = [
        Receiver(
            "chat",
            ("slack",),
            "inbox",
            AT - 42,
            "firing RedisReplicaDown (slack #ocean-alerts)",
            3,
            0,
            0,
            (),
        ),
        Receiver(
            "deadman",
            ("webhook",),
            "inbox",
            AT - 5,
            "firing Watchdog (webhook /webhook/watchdog)",
            61,
            2,
            7,
            ("pager",),
        ),
        Receiver(
            "email",
            ("email",),
            "alertmanager",
            None,
            "",
            4,
            0,
            0,
            (),
            "no delivery seen since the console started",
        ),
        Receiver(
            "pager",
            ("webhook",),
            "inbox",
            None,
            "",
            0,
            2,
            7,
            ("deadman",),
            "nothing in the inbox",
        ),
    ]
    return listing, receivers, [], AT


@pytest.fixture
def recorded_app(tmp_path: Path) -> Iterator[OceanConsole]:
    runtime = LocalRuntime(Settings(state_dir=tmp_path / "state", ports=PortPlan(free_port_base())))
    app = console(runtime, refresh=0.2)
    app.alerts_fetch = recorded_fetch  # one instant for every fetch: ages as of then
    yield app


async def test_the_receivers_panel_says_where_each_figure_comes_from(recorded_app):
    app = recorded_app
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_alerts(pilot, app)
        table = screen.query_one(ReceiversTable)
        rows = {
            str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)] for i in range(4)
        }
        assert rows["deadman"][2] == "14:59:55 (5s ago)"  # AT - 5 s, UTC
        assert rows["deadman"][5] == "2 (7 tries)"
        assert rows["deadman"][6] == "inbox; failed per webhook, with pager"
        assert rows["email"][2] == "none seen" and rows["email"][4] == "4"
        assert rows["email"][6] == "Alertmanager per email"
        title = str(screen.query_one("#receivers-title").render())
        assert "failures at deadman, pager" in title


async def test_readonly_hides_and_refuses_silence_unsilence_and_the_drill(tmp_path: Path):
    runtime = LocalRuntime(Settings(state_dir=tmp_path / "state", ports=PortPlan(free_port_base())))
    app = console(runtime, refresh=0.2, readonly=True)
    app.alerts_fetch = recorded_fetch
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_alerts(pilot, app)
        shown = {key for key, b in screen.active_bindings.items() if b.enabled}
        assert "s" in shown and not {"x", "u", "d"} & shown
        await pilot.press("x", "d")
        await pilot.pause()
        assert app.screen is screen and not screen.running  # no dialog, nothing started
        titles = {c.title for c in app.get_system_commands(screen)}
        assert "Alerts and receivers" in titles and "Run the alert drill" not in titles


async def test_the_poll_runs_only_while_shown_and_a_refresh_adds_no_second_timer(recorded_app):
    calls = []

    def counted(watch):
        calls.append(time.monotonic())
        return recorded_fetch(watch)

    app = recorded_app  # refresh 0.2 s
    app.alerts_fetch = counted
    async with app.run_test(size=SIZE) as pilot:
        await open_alerts(pilot, app)
        before, started = len(calls), time.monotonic()
        for _ in range(5):  # refreshes on top of the armed poll
            await pilot.press("s")
        await pilot.pause(1.0)
        made, elapsed = len(calls) - before, time.monotonic() - started
        # One chain: a poll per 0.2 s, plus the five refreshes (and slack for timing).
        # Each refresh re-arming a timer of its own would make six chains: ≈ 6× as many.
        assert made <= 5 + elapsed / 0.2 + 3, (made, elapsed)
        await pilot.press("1")
        await pilot.pause(0.5)
        stopped = len(calls)
        await pilot.pause(1.0)
        assert len(calls) <= stopped + 1  # away from the screen: no more polls


def test_alerts_screen_snapshot(snap_compare, recorded_app):
    async def run_before(pilot) -> None:
        await open_alerts(pilot, recorded_app)
        await recorded_app.workers.wait_for_complete()
        _still(recorded_app)
        await pilot.pause(0.1)

    assert snap_compare(recorded_app, terminal_size=SIZE, run_before=run_before)


# -- live: a real Alertmanager and the alert inbox --------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    runtime = rendered_runtime(tmp_path_factory.mktemp("console-alerts"))
    with with_inbox(runtime):
        yield runtime


def _post(runtime: LocalRuntime, labels: dict, ended: bool = False) -> None:
    body = [{"labels": labels, **({"endsAt": "2000-01-01T00:00:00Z"} if ended else {})}]
    with AlertmanagerApi(runtime) as alertmanager:
        alertmanager.post_alerts(body)


def _silences(runtime: LocalRuntime, state: str = "active") -> list[dict]:
    with AlertmanagerApi(runtime) as alertmanager:
        return [s for s in alertmanager.silences() if s["status"]["state"] == state]


async def _select_alert(pilot, app: OceanConsole, name: str) -> AlertsScreen:
    """Open the Alerts screen and put the cursor on ``name`` once Alertmanager has it."""
    screen = await open_alerts(pilot, app)
    for _ in range(40):
        names = [r["name"] for r in (screen.listing or {}).get("alerts", [])]
        if name in names:
            break
        await fetched(pilot, app)
    screen.query_one("#alert-list").move_cursor(row=names.index(name))
    await pilot.pause()
    return screen


@live
async def test_the_silence_dialog_refuses_bad_input_then_silences_through_the_audit(stack):
    runtime = stack
    labels = {"alertname": "TargetDown", "severity": "critical", "instance": "console:1"}
    _post(runtime, labels)
    before = len(_silences(runtime))
    app = OceanConsole(runtime, RecordedPrometheus(), refresh=0.5)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = await _select_alert(pilot, app, "TargetDown")
            await pilot.press("x")
            await pilot.pause()
            dialog = app.screen
            assert isinstance(dialog, SilenceDialog) and dialog.alert == "TargetDown"
            for duration, why in (
                ("-5m", "--for '-5m' is not a duration"),
                ("soon", "--for 'soon' is not a duration"),
                ("0s", "--for '0s': a silence must last a positive time"),
            ):
                dialog.query_one("#for", Input).value = duration
                dialog.query_one("#reason", Input).value = "disk swap"
                dialog.query_one("#reason", Input).focus()
                await pilot.press("enter")  # as a user submits the form
                await pilot.pause()
                refusal = str(dialog.query_one("#refusal").render())
                assert app.screen is dialog, duration  # still open: nothing sent
                assert refusal.startswith(why), refusal  # the task's own words
                assert "\n" not in refusal.strip()
            dialog.query_one("#for", Input).value = "2h"
            dialog.query_one("#reason", Input).value = ""
            await pilot.press("enter")
            await pilot.pause()
            assert "--reason is required" in str(dialog.query_one("#refusal").render())
            assert len(_silences(runtime)) == before  # no bad input reached Alertmanager

            dialog.query_one("#reason", Input).value = "disk swap from the console"
            await pilot.click("#silence")
            await pilot.pause()
            assert app.screen is screen
            await until_idle(pilot, app, screen)
            made = [s for s in _silences(runtime) if s["comment"] == "disk swap from the console"]
            assert len(made) == 1, log_text(screen)
            silence = made[0]
            ends, starts = silence["endsAt"], silence["startsAt"]
            assert silence["matchers"][0]["value"] == "TargetDown"
            assert ends > starts and silence["id"] in log_text(screen)
            entries = [e for e in audit.read(runtime.settings) if e["via"] == "console"]
            assert [(e["action"], e["outcome"]) for e in entries[-2:]] == [
                ("alerts silence", "started"),
                ("alerts silence", "succeeded"),
            ]
            assert entries[-1]["args"]["for_s"] == 7200

            # …and the silence listed on the screen ends from there too.
            for _ in range(40):
                listed = [s["id"] for s in (screen.listing or {}).get("silences", [])]
                if silence["id"] in listed:
                    break
                await fetched(pilot, app)
            screen.query_one("#silences").move_cursor(row=listed.index(silence["id"]))
            await pilot.press("u")
            await pilot.pause()
            assert isinstance(app.screen, Confirm)
            await pilot.click("#yes")
            await pilot.pause()
            await until_idle(pilot, app, screen)
            with AlertmanagerApi(runtime) as alertmanager:
                assert alertmanager.silence(silence["id"])["status"]["state"] == "expired"
            assert "unsilenced" in log_text(screen)
    finally:
        _post(runtime, labels, ended=True)
        for s in _silences(runtime):
            if s["comment"] == "disk swap from the console":
                AlertmanagerApi(runtime).expire_silence(s["id"])


@live
async def test_the_drill_from_the_console_shows_progress_and_each_route(stack):
    runtime = stack
    app = OceanConsole(runtime, RecordedPrometheus(), refresh=0.5)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_alerts(pilot, app)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, Confirm)
        started = time.time()
        await pilot.click("#yes")
        await pilot.pause()
        await until_idle(pilot, app, screen)
        text = log_text(screen)
        assert "every route delivered" in text, text
        for route in ("deadman", "pager", "email", "chat"):
            assert re.search(rf"✓ +{route} delivered via [\w ]+ in [\d.]+s", text), (route, text)
        assert "waiting for" in text or "injected" in text  # progress shown while it ran
        # The receivers panel: each receiver's last delivery is now the drill's, from
        # the inbox (the poll after the drill has read it).
        await fetched(pilot, app, more=2)
        table = screen.query_one(ReceiversTable)
        rows = {
            str(table.get_row_at(i)[0]): [str(c) for c in table.get_row_at(i)]
            for i in range(table.row_count)
        }
        assert set(rows) == {"deadman", "pager", "email", "chat"}
        for name, row in rows.items():
            assert row[2] != "none seen" and int(row[4]) >= 1, (name, row)
            assert row[6].startswith("inbox"), (name, row)
        assert "Watchdog" in rows["deadman"][3]  # the only alert routed there
        # (another receiver's last message may be a resolved notice of an earlier test)
        assert all(r.last_at >= started for r in screen.receivers), screen.receivers
