"""The console's load test goes through the task's door (issue 23): the options are
checked by the same function as `invoke loadtest`'s (the scenario's defaults, the same
ceilings), and the comparison is `loadtest-report --compare`'s report, whose error
rates count as regressions only beyond the SLO's error budget.

No k6 runs here: the procedure the screen starts is replaced by one that records the
options it was given.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Select

from ocean.config import REPO_ROOT, PortPlan, Settings
from ocean.loadtest import results
from ocean.loadtest.scenarios import SCENARIOS, LoadOptions, options
from ocean.model import Step, StepStatus
from ocean.procedures import loadtest as loadtests
from ocean.runtime.local import LocalRuntime
from tests.helpers import free_port_base, run_cli
from tests.tui.recorded import RecordedPrometheus
from tests.tui.test_console import SIZE, settle
from tui.app import OceanConsole
from tui.screens.loadtest import LoadTestScreen

pytestmark = pytest.mark.anyio


@pytest.fixture
def runtime(tmp_path: Path) -> LocalRuntime:
    return LocalRuntime(Settings(state_dir=tmp_path / "state", ports=PortPlan(free_port_base())))


@pytest.fixture
def started(monkeypatch) -> list[LoadOptions]:
    """The options of every load test the console starts (none runs)."""
    runs: list[LoadOptions] = []

    def recorded(runtime, opts: LoadOptions):
        runs.append(opts)
        yield Step("loadtest done", StepStatus.OK, "recorded, not run")

    monkeypatch.setattr(loadtests, "loadtest", recorded)
    return runs


async def _screen(pilot, app: OceanConsole) -> LoadTestScreen:
    await settle(pilot, app)
    await pilot.press("4")
    await pilot.pause()
    assert isinstance(app.screen, LoadTestScreen)
    return app.screen


def _fill(screen: LoadTestScreen, scenario: str, **fields: str) -> None:
    screen.query_one("#scenario", Select).value = scenario
    for name in ("vus", "duration", "rate"):
        screen.query_one(f"#{name}", Input).value = fields.get(name, "")


@pytest.mark.parametrize(
    ("scenario", "fields"),
    [
        ("smoke", {"vus": "20001"}),  # over MAX_VUS
        ("browsing", {"duration": "2h"}),  # over MAX_DURATION_S
        ("database", {"duration": "soon"}),
        ("smoke", {"duration": "0"}),  # a duration asked for, not left out
        ("stress", {"rate": "100001"}),  # over MAX_RATE
        ("smoke", {"rate": "5"}),  # smoke is not rate-driven
    ],
)
async def test_the_console_refuses_what_the_task_refuses(runtime, started, scenario, fields):
    # What `invoke loadtest` says, word for word, for the same request.
    flags = [f"--{name}={value}" for name, value in fields.items()]
    task = run_cli(
        "loadtest",
        f"--scenario={scenario}",
        *flags,
        state_dir=runtime.settings.state_dir,
        port_base=runtime.settings.ports.base,
    )
    assert task.returncode == 1 and task.stderr.startswith("error: --")
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _screen(pilot, app)
        said: list[str] = []
        screen.notify = lambda message, **_: said.append(str(message))  # type: ignore[method-assign]
        _fill(screen, scenario, **fields)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert said == [task.stderr.strip().removeprefix("error: ")]
        assert started == [] and not screen.running


@pytest.mark.parametrize("scenario", ["smoke", "stress", "performance"])
async def test_blank_fields_take_the_scenarios_defaults(runtime, started, scenario):
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _screen(pilot, app)
        _fill(screen, scenario)
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        # As `invoke loadtest --scenario SCENARIO` with no other flag: stress at its 800/s,
        # performance with the browser journeys.
        assert started == [options(scenario, runtime.url("nginx"))]
        known = SCENARIOS[scenario]
        assert (started[0].vus, started[0].duration_s) == (known.vus, known.duration_s)
        assert started[0].rate == known.rate


async def test_a_zero_is_the_default_as_the_tasks_flag_default_is(runtime, started):
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _screen(pilot, app)
        _fill(screen, "cache", vus="0", rate="0")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert [opts.vus for opts in started] == [SCENARIOS["cache"].vus]


async def test_given_fields_are_read_as_the_task_reads_its_flags(runtime, started):
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _screen(pilot, app)
        _fill(screen, "stress", vus="50", duration="1m30s", rate="120")
        await pilot.press("r")
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert started == [options("stress", runtime.url("nginx"), 50, "1m30s", 120)]


# -- the comparison: the task's report, with the SLO's error budget ----------------------


def _repo_with_availability(tmp_path: Path, objective: float) -> Path:
    """This repository, but for slo.yaml's availability objective (its error budget)."""
    root = tmp_path / "repo"
    root.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name not in ("monitoring", ".git", ".venv"):
            (root / entry.name).symlink_to(entry)
    (root / "monitoring").mkdir()
    for entry in (REPO_ROOT / "monitoring").iterdir():
        if entry.name != "slo.yaml":
            (root / "monitoring" / entry.name).symlink_to(entry)
    slo_yaml = (REPO_ROOT / "monitoring/slo.yaml").read_text()
    assert "availability:\n    objective: 99.9\n" in slo_yaml
    (root / "monitoring/slo.yaml").write_text(
        slo_yaml.replace(
            "availability:\n    objective: 99.9\n", f"availability:\n    objective: {objective}\n"
        )
    )
    return root


def _save_run(settings: Settings, run_id: str, failed: float) -> None:
    client = {"requests": 10000, "rps": 100.0, "failed_rate": failed, "p99_ms": 50.0}
    server = {"requests": 10000, "error_ratio": failed, "p99_ms": 45.0}
    run = results.LoadResult(
        run_id, "smoke", {"vus": 2}, 0.0, 10.0, 0, "completed", client, server, []
    )
    run_dir = results.runs_dir(settings) / run_id
    run_dir.mkdir(parents=True)
    (run_dir / "result.json").write_text(json.dumps(run.as_dict()))


@pytest.mark.parametrize(
    ("later", "flagged"),
    [
        # A 1% error budget: 0.2% → 0.5% failed is 150% worse, yet within the budget.
        (0.005, False),
        # 0.2% → 3%: beyond the budget, a regression for the task and the console alike.
        (0.03, True),
    ],
)
async def test_compare_counts_error_rates_within_the_error_budget_as_the_task_does(
    tmp_path, later, flagged
):
    root = _repo_with_availability(tmp_path, 99.0)
    settings = Settings(tmp_path / "state", PortPlan(free_port_base()), repo_root=root)
    runtime = LocalRuntime(settings)
    _save_run(settings, "20261201-100000-smoke-aaaa", 0.002)
    _save_run(settings, "20261201-110000-smoke-bbbb", later)
    task = loadtests.report(runtime, None, "20261201-100000-smoke-aaaa")  # loadtest-report
    assert ("failed rate" in task["regressions"]) is flagged, task["regressions"]
    app = OceanConsole(runtime, RecordedPrometheus())
    async with app.run_test(size=SIZE) as pilot:
        screen = await _screen(pilot, app)
        await pilot.press("c")
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = screen.query_one("#verdicts", DataTable)
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
    assert [row[0] for row in rows] == [row["metric"] for row in task["rows"]]
    assert bool({row[0]: row[4] for row in rows}["failed rate"]) is flagged
    assert [row[0] for row in rows if row[4]] == task["regressions"]
