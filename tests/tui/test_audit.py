"""The console and the audit log: the Audit screen (7) lists refusals and actions newest
first, and a rollback or a promote from the console in prod asks for the environment's
name and is audited as coming from the console."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from ocean import audit, environments
from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base
from tests.tui.recorded import RecordedPrometheus
from tests.tui.test_console import SIZE, settle
from tui.app import OceanConsole
from tui.screens.audit import AuditScreen
from tui.screens.confirm import TypeToConfirm
from tui.widgets.step_log import StepLog

pytestmark = pytest.mark.anyio


def runtime_in(tmp_path: Path, name: str) -> LocalRuntime:
    env = environments.load(name, REPO_ROOT)
    ports = PortPlan(free_port_base())
    return LocalRuntime(Settings(state_dir=tmp_path / "state", ports=ports, environment=env))


async def shown(pilot, app: OceanConsole) -> list[tuple[str, ...]]:
    await pilot.pause(0.2)
    await app.workers.wait_for_complete()
    await pilot.pause(0.1)
    table = app.screen.query_one("#audit", DataTable)
    return [tuple(str(cell) for cell in table.get_row_at(i)) for i in range(table.row_count)]


async def test_audit_screen_lists_entries_newest_first_and_refreshes(tmp_path: Path):
    runtime = runtime_in(tmp_path, "prod")
    settings = runtime.settings
    audit.record(settings, "restore", "refused", {"id": "b1"}, "restore in prod needs …")
    started = audit.record(settings, "down --purge", "started")
    audit.record(settings, "down --purge", "succeeded", action_id=started["id"])
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("7")
        rows = await shown(pilot, app)
        assert isinstance(app.screen, AuditScreen)
        assert [(r[1], r[4], r[5]) for r in rows] == [
            ("prod", "down --purge", "succeeded"),
            ("prod", "down --purge", "started"),
            ("prod", "restore", "refused"),
        ]
        audit.record(settings, "rollback", "refused")
        await pilot.press("s")
        rows = await shown(pilot, app)
        assert len(rows) == 4 and rows[0][4:6] == ("rollback", "refused")


@pytest.mark.parametrize(
    ("key", "action", "said"),
    [
        ("r", "rollback", "nothing to roll back to"),  # no deploy yet: the procedure says so
        # Promote goes through the guard rail too (issue 23), no longer straight to the
        # procedure, which asked for no name and audited nothing.
        ("p", "promote", "no deploy awaits promotion"),
    ],
)
async def test_a_console_action_that_moves_traffic_in_prod_asks_for_the_environment_and_is_audited(
    tmp_path, key: str, action: str, said: str
):
    runtime = runtime_in(tmp_path, "prod")
    # A stack's state dir (with none, the action is refused before anything is audited).
    runtime.settings.state_dir.mkdir()
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("2", key)
        await pilot.pause(0.2)
        assert isinstance(app.screen, TypeToConfirm) and app.screen.expected == "prod"
        await pilot.press(*"prod", "enter")
        await pilot.pause(0.2)
        await app.workers.wait_for_complete()
        await pilot.pause(0.2)
        log = "\n".join(str(line.text) for line in app.screen.query_one(StepLog).lines)
        assert said in log
    entries = audit.read(runtime.settings)
    assert [(e["action"], e["outcome"], e["via"]) for e in entries] == [
        (action, "started", "console"),
        (action, "failed", "console"),
    ]
    assert entries[0]["args"]["confirm_env"] == "prod"


def header_text(app: OceanConsole) -> str:
    return str(app.screen.query_one("HeaderTitle").render())  # by type name: not exported


async def test_the_header_names_the_environment_and_runtime(tmp_path: Path):
    """Every screen's header says which stack the console drives: prod never looks like
    dev. The SLO objectives shown are the environment's (staging: 99.5 %)."""
    for name, readonly, expected in (
        ("prod", False, "prod · local runtime"),
        ("staging", True, "staging · local runtime · read-only"),
    ):
        app = OceanConsole(
            runtime_in(tmp_path / name, name), RecordedPrometheus(), readonly=readonly
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, app)
            assert expected in header_text(app)
            await pilot.press("2")
            await pilot.pause(0.1)
            assert expected in header_text(app)  # the Deploy screen's header too
        objective = app.slos.availability.objective
        assert objective == (99.5 if name == "staging" else 99.9)
