"""`down` and `up` around a deploy (issue 25, High 3), without a stack: the deploy lock
and journal on disk, a stand-in runtime, real processes holding the lock.

The live-stack attack is tests/integration/test_down_during_deploy.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from ocean.model import Build
from ocean.procedures import deploy as deploys
from ocean.procedures import interlock
from ocean.rollout.journal import Journal, live_after


def drive(steps):
    """Every step of a generator, and what it returned."""
    done = []
    while True:
        try:
            done.append(next(steps))
        except StopIteration as stop:
            return done, stop.value


class Stopped:
    """A runtime whose stack is down: nothing runs, nginx's upstream names ``upstream``."""

    name = "fake"

    def __init__(self, state_dir: Path, upstream: str = "green") -> None:
        self.settings = SimpleNamespace(state_dir=state_dir, env_name="dev")
        self.upstream = upstream
        self.acted: list[str] = []

    def running(self) -> set[str]:
        return set()

    def live_color(self) -> str:
        return self.upstream

    def color_ready(self, color: str) -> bool:
        return False

    def color_build(self, color: str) -> Build:
        return Build(id=f"build-{color}", version="v", label=f"v-{color}", python="")

    def start_color(self, *args):  # settling with the stack down failed halfway here
        self.acted.append("start_color")
        raise AssertionError("recover must not act on a stack that is down")
        yield  # pragma: no cover

    switch = stop_color = start_color


def open_deploy(state_dir: Path, step: str, **extra) -> dict:
    journal = Journal(state_dir)
    record = journal.open({"kind": "deploy", "color": "green", "from": "blue", "version": "HEAD"})
    journal.step(record, step)
    if extra:
        journal.update(record, **extra)
    return record


@pytest.mark.parametrize(
    ("kind", "step", "live"),
    [
        ("deploy", "preflight", "blue"),
        ("deploy", "switch", "blue"),
        ("deploy", "analysis", "blue"),  # traffic moved, nothing decided: the old color
        ("deploy", "rollback", "blue"),
        ("deploy", "promoted", "green"),
        ("deploy", "scale-down", "green"),
        ("rollback", "switch", "green"),  # a rollback's color is its target
    ],
)
def test_the_journal_names_the_color_a_settled_deploy_leaves_live(kind, step, live):
    assert live_after({"kind": kind, "color": "green", "from": "blue", "step": step}) == live


def test_holder_names_the_deploy_holding_the_lock_and_creates_nothing(tmp_path: Path):
    journal = Journal(tmp_path)
    assert journal.holder() is None
    assert not (tmp_path / "deploy").exists()  # a look creates no lock file
    with journal.lock("deploy green HEAD"):
        assert journal.holder() == (
            journal.lock_path.read_text().strip(),
            os.getpid(),
        )
        assert journal.holder()[0].startswith("deploy green HEAD, pid")
    assert journal.holder() is None


def test_down_creates_nothing_where_no_deploy_ever_ran(tmp_path: Path):
    steps, held = drive(interlock.hold_off_deploys(Stopped(tmp_path), force=False))
    held.close()
    assert steps == [] and list(tmp_path.iterdir()) == []


def test_down_refuses_while_a_deploy_holds_the_lock(tmp_path: Path):
    journal = Journal(tmp_path)
    with journal.lock("deploy green HEAD"):
        with pytest.raises(interlock.DeployRunning) as refused:
            drive(interlock.hold_off_deploys(Stopped(tmp_path), force=False))
        message = str(refused.value)
        assert "a deploy is running (deploy green HEAD, pid" in message
        assert "--force" in message and "\n" not in message
        # --force cannot Ctrl-C its own process (the console running both): refused too
        with pytest.raises(interlock.DeployRunning, match="cannot be interrupted from here"):
            drive(interlock.hold_off_deploys(Stopped(tmp_path), force=True))


HOLDER = """
import signal, sys, time
from pathlib import Path
from ocean.interrupts import restore_ctrl_c
from ocean.rollout.journal import Journal

restore_ctrl_c()  # as every task does at start (tasks.py)
journal = Journal(Path(sys.argv[1]))
with journal.lock("deploy green HEAD"):
    record = journal.open({"kind": "deploy", "color": "green", "from": "blue", "version": "x"})
    journal.step(record, "analysis")
    print("holding", flush=True)
    try:
        time.sleep(60)
    except KeyboardInterrupt:  # what the deploy does on Ctrl-C: roll back, close
        time.sleep(0.5)
        journal.close(record, "rolled_back", "interrupted (Ctrl-C)")
"""


def test_down_force_interrupts_the_deploy_and_waits_for_its_rollback(tmp_path: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(HOLDER), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        steps, held = drive(interlock.hold_off_deploys(Stopped(tmp_path), force=True))
        try:
            # down holds the lock now: no deploy can start while the stack stops
            assert Journal(tmp_path).holder()[0].startswith("down, pid")
        finally:
            held.close()
        assert holder.wait(timeout=30) == 0
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert time.monotonic() - started < 30
    assert [s.name for s in steps] == ["interrupt deploy", "deploy interrupted"]
    assert f"pid {holder.pid}" in steps[0].detail
    assert steps[1].detail == "rolled_back: interrupted (Ctrl-C)"
    assert Journal(tmp_path).read() is None


def test_deploy_status_on_a_stopped_stack_says_what_up_will_do(tmp_path: Path):
    """The deploy died at its analysis and the stack went down: deploy-status settles
    nothing (that needs the stack) and says which color `up` brings back."""
    open_deploy(tmp_path, "analysis")
    runtime = Stopped(tmp_path, upstream="green")
    report, steps = deploys.status(runtime)
    assert steps == [] and runtime.acted == []
    assert report["open"]["step"] == "analysis"
    assert "`invoke up` brings blue back live" in report["unsettled"]
    # and a deploy started meanwhile refuses in one line instead of failing halfway
    with pytest.raises(deploys.StackDown, match="the stack is down"):
        list(deploys.recover(runtime, Journal(tmp_path), refuse_paused=True))


def test_up_starts_the_color_the_journal_leaves_live(tmp_path: Path):
    runtime = Stopped(tmp_path, upstream="green")  # the upstream already names green
    assert interlock.live_for_up(runtime) == "green"  # no journal: the upstream's
    open_deploy(tmp_path, "analysis")
    assert interlock.live_for_up(runtime) == "blue"  # not promoted: blue stays live
    Journal(tmp_path).path.unlink()
    open_deploy(tmp_path, "promoted")
    assert interlock.live_for_up(runtime) == "green"


def test_up_leaves_a_paused_or_running_deploy_alone(tmp_path: Path):
    runtime = Stopped(tmp_path, upstream="blue")
    open_deploy(tmp_path, "preview", paused=True)  # awaits `promote` or `rollback`
    assert interlock.unsettled(runtime) is None
    Journal(tmp_path).path.unlink()
    open_deploy(tmp_path, "promoted")
    with Journal(tmp_path).lock("deploy green HEAD"):  # its process is alive
        assert interlock.unsettled(runtime) is None
    assert interlock.unsettled(runtime)["step"] == "promoted"


def test_a_stack_gone_under_a_task_is_a_one_line_error(tmp_path: Path):
    """What the deploy met when `down` stopped supervisord under it: a 132-line
    SupervisorUnavailable traceback, since it was no OceanError."""
    from ocean.errors import OceanError
    from ocean.runtime.supervisor import Supervisor

    with pytest.raises(OceanError) as gone:
        Supervisor(tmp_path / "supervisor.sock").processes()
    assert "the stack is not running" in str(gone.value) and "\n" not in str(gone.value)
